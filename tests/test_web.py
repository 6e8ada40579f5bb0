from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from telereg.core import accounts
from telereg.core.db import dispose_engines, session_scope
from telereg.core.models import AuditEntry
from telereg.core.settings import SECRET_FIELDS, Settings, load_settings
from tests.conftest import PASSWORD, ROOT, Site, csrf_of, make_site


@pytest.fixture
def browser(site: Site) -> TestClient:
    return TestClient(site.client.app, follow_redirects=True)


def _login(client: TestClient, username: str, password: str, next_url: str = "/") -> object:
    page = client.get(f"/login?next={next_url}")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": next_url,
        },
    )


def test_pages_need_a_login_and_come_back_after_it(browser: TestClient) -> None:
    page = browser.get("/admin/audit")
    assert page.url.path == "/login"
    assert "登录" in page.text
    response = _login(browser, "ada", PASSWORD, "/admin/audit")
    assert response.url.path == "/admin/audit"
    assert "审计日志" in response.text


def test_home_is_chinese_by_default_and_english_on_request(browser: TestClient) -> None:
    home = _login(browser, "ann", PASSWORD)
    assert "系统状态" in home.text
    assert "总览" in home.text
    english = browser.get("/lang/en?next=/")
    assert "System status" in english.text
    assert "Overview" in english.text
    assert "系统状态" not in english.text
    back = browser.get("/lang/zh_CN?next=/")
    assert "系统状态" in back.text


def test_language_links_come_back_to_the_same_filtered_page(browser: TestClient) -> None:
    _login(browser, "ann", PASSWORD)
    page = browser.get("/data/submissions", params={"status": "rejected", "error": SPOOF}).text
    assert 'href="/lang/en?next=/data/submissions%3Fstatus%3Drejected"' in page
    english = browser.get("/lang/en?next=/data/submissions%3Fstatus%3Drejected")
    assert english.url.path == "/data/submissions"
    assert english.url.params["status"] == "rejected"


def test_navigation_lists_every_module_and_unbuilt_ones_say_so(browser: TestClient) -> None:
    _login(browser, "ann", PASSWORD)
    home = browser.get("/lang/en?next=/").text
    for title in (
        "Build-out",
        "Epidemic support",
        "Interconnection",
        "Identifier resolution",
        "Service quality",
        "Security",
        "Anti-fraud",
        "App governance",
    ):
        assert title in home
    page = browser.get("/modules/epidemic")
    assert page.status_code == 200
    assert "not available yet" in page.text
    assert browser.get("/modules/nothing").status_code == 404


def _sidebar(html: str) -> dict[str, str]:
    """The sidebar's links: href → text."""
    nav = html[html.index('<nav class="sidebar"') : html.index("</nav>", html.index("sidebar"))]
    return dict(re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav))


@pytest.mark.parametrize(
    ("username", "shown", "hidden"),
    [
        ("ann", {"/buildout": "Build-out", "/fraud": "Anti-fraud"}, set()),
        ("olu", {"/fraud": "Anti-fraud"}, {"/buildout", "/fraud/liaison"}),
        ("lee", {"/fraud/liaison": "Anti-fraud"}, {"/buildout", "/fraud", "/data/submissions"}),
    ],
)
def test_each_role_is_led_to_the_pages_it_may_open(
    site: Site, username: str, shown: dict[str, str], hidden: set[str]
) -> None:
    client = TestClient(site.client.app, follow_redirects=True)
    site.login(client, username, PASSWORD)
    home = client.get("/lang/en?next=/").text
    links = _sidebar(home)
    assert ('id="stat-submissions"' in home) == (username != "lee"), "no submissions to count"
    for href, title in shown.items():
        assert links.get(href) == title, (username, links)
        assert client.get(href).status_code == 200, (username, href)
    assert not hidden & set(links), (username, links)
    assert "/modules/epidemic" in links, "modules not built yet stay listed for everyone"
    entered = client.get("/modules/fraud")
    assert entered.url.path == next(h for h in shown if h.startswith("/fraud"))
    if username == "olu":
        assert 'href="/fraud/cases"' not in client.get("/fraud").text, "the queue is not theirs"
        assert client.get("/fraud/liaison").status_code == 403, "nor the agencies' page"
    # Region boundaries draw every role's maps; they are not a build-out secret.
    assert client.get("/api/v1/buildout/map/city").status_code == 200


def test_the_home_page_counts_open_cases_for_roles_that_read_cases(site: Site) -> None:
    for username, counted in (("ann", True), ("lee", True), ("olu", True), ("vic", False)):
        client = TestClient(site.client.app, follow_redirects=True)
        site.login(client, username, PASSWORD)
        assert ('id="stat-cases"' in client.get("/").text) == counted, username


def test_wrong_password_is_refused_in_the_users_language(browser: TestClient) -> None:
    response = _login(browser, "ann", "not the password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    browser.get("/lang/en?next=/login")
    response = _login(browser, "ann", "not the password")
    assert "Wrong username or password" in response.text


def test_login_without_csrf_token_is_refused(browser: TestClient) -> None:
    browser.get("/login")
    response = browser.post("/login", data={"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert "表单已过期" in response.text


def test_lockout_after_repeated_failures(browser: TestClient, site: Site) -> None:
    for _ in range(site.settings.login_max_failures):
        _login(browser, "ann", "wrong password")
    response = _login(browser, "ann", PASSWORD)
    assert response.status_code == 401
    assert "登录失败次数过多" in response.text


def test_logout_needs_csrf_and_ends_the_session(browser: TestClient) -> None:
    home = _login(browser, "ann", PASSWORD)
    assert browser.post("/logout").status_code == 403
    browser.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert browser.get("/").url.path == "/login"


def test_open_redirects_are_refused(browser: TestClient) -> None:
    response = _login(browser, "ann", PASSWORD, "https://evil.example/")
    assert response.url.path == "/"
    switched = browser.get("/lang/en?next=//evil.example/", follow_redirects=False)
    assert switched.headers["location"] == "/"


def test_non_admins_cannot_open_admin_pages(browser: TestClient) -> None:
    _login(browser, "ann", PASSWORD)
    page = browser.get("/admin/users")
    assert page.status_code == 403
    assert "无权访问" in page.text
    assert "你的角色（分析员）无权打开此页面" in page.text
    assert "users.manage" not in page.text


def test_admin_adds_and_disables_a_user_in_the_web(browser: TestClient) -> None:
    _login(browser, "ada", PASSWORD)
    users = browser.get("/admin/users")
    token = csrf_of(users.text)
    created = browser.post(
        "/admin/users",
        data={"username": "newop", "role": "operator", "operator": "CUCC", "csrf_token": token},
    )
    assert created.status_code == 201
    assert 'id="new-password"' in created.text
    sent = {"username": "badop", "display_name": "Bad Op", "role": "operator", "agency": "HEALTH"}
    refused = browser.post("/admin/users", data={**sent, "csrf_token": token})
    assert refused.status_code == 422
    assert "运营商用户必须绑定一个运营商（--operator）" in refused.text
    form = refused.text.split('action="/admin/users"', 1)[1]
    assert 'value="badop"' in form, "the form comes back as it was sent"
    assert 'value="Bad Op"' in form
    assert '<option value="operator" selected>' in form
    assert '<option value="HEALTH" selected>' in form
    browser.post("/admin/users/newop/disable", data={"csrf_token": token, "reason": "test"})
    audit = browser.get("/admin/audit?action=users.").text
    assert "users.disable" in audit
    assert "users.add" in audit


def test_unknown_page_is_an_html_error_in_the_users_language(browser: TestClient) -> None:
    _login(browser, "ann", PASSWORD)
    page = browser.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text
    assert "没有这个页面" in page.text
    assert "Not Found" not in page.text
    assert 'class="sidebar"' in page.text, "still signed in: the menu and modules are there"
    # A malformed address names the field and the value in the reader's words, not the
    # framework's (a long run of digits, perhaps a number, is not echoed whole).
    # An address whose parts do not parse names no page.
    unparsed = browser.get("/data/submissions/xyz")
    assert unparsed.status_code == 404
    assert "没有这个页面" in unparsed.text
    for huge in ("/data/submissions/99999999999999999999", "/fraud/cases/99999999999999999999"):
        assert browser.get(huge).status_code == 404, "a number no record can have"
    bad = browser.get("/data/submissions?page=13800138000abc")
    assert bad.status_code == 422
    assert "page：取值无效（138****8000abc）" in bad.text
    assert "Input should be" not in bad.text
    english = browser.get("/lang/en", params={"next": "/data/submissions?page=x"})
    assert "page: not a valid value (x)" in english.text


def test_an_empty_submission_list_says_whether_its_filters_left_nothing(
    browser: TestClient,
) -> None:
    _login(browser, "ann", PASSWORD)
    browser.get("/lang/en?next=/")
    assert "No submissions yet." in browser.get("/data/submissions").text
    filtered = browser.get("/data/submissions", params={"status": "rejected"}).text
    assert "No submission matches these filters." in filtered
    assert "No submissions yet." not in filtered, "there may be submissions, of another status"


def test_vendored_assets_are_served(browser: TestClient) -> None:
    for path in (
        "/static/vendor/echarts/echarts.min.js",
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
    ):
        response = browser.get(path)
        assert response.status_code == 200
        assert len(response.content) > 10_000
    # The API documentation loads its scripts from here, not from a CDN.
    docs = browser.get("/api/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn." not in docs


def test_pages_and_the_api_cannot_be_framed_by_other_sites(browser: TestClient) -> None:
    for path in ("/login", "/api/v1/health", "/static/js/text.js", "/data/submissions"):
        response = browser.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert "object-src 'none'" in policy, path
        assert "script-src 'self' 'unsafe-inline';" in policy, "no script from elsewhere"
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
        # Pages and answers hold subscribers' data: no cache keeps them; static files may.
        kept = response.headers.get("cache-control", "")
        assert (kept == "no-store") is (not path.startswith("/static/")), (path, kept)


def _copy(browser: TestClient) -> TestClient:
    """Another browser holding a copy of ``browser``'s session cookie."""
    return TestClient(
        browser.app,
        cookies={"telereg_session": browser.cookies["telereg_session"]},
        follow_redirects=True,
    )


def _end_by_logout(browser: TestClient, site: Site) -> None:
    del site
    browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/").text)})


def _end_by_disabling(browser: TestClient, site: Site) -> None:
    del browser
    with session_scope(site.settings) as s:
        accounts.disable_user(s, principal=ROOT, username="ann", reason="left")
        accounts.enable_user(s, principal=ROOT, username="ann", reason="came back")


def _end_by_new_password(browser: TestClient, site: Site) -> None:
    del browser
    with session_scope(site.settings) as s:
        accounts.set_password(s, principal=ROOT, username="ann", password=PASSWORD)


@pytest.mark.parametrize("end", [_end_by_logout, _end_by_disabling, _end_by_new_password])
def test_a_copied_session_cookie_stops_working_when_sessions_end(
    browser: TestClient, site: Site, end: Callable[[TestClient, Site], None]
) -> None:
    _login(browser, "ann", PASSWORD)
    copy = _copy(browser)
    assert copy.get("/").url.path == "/"
    assert copy.get("/api/v1/me").json()["username"] == "ann"
    end(browser, site)
    assert copy.get("/").url.path == "/login"
    assert copy.get("/api/v1/me").status_code == 401
    again = _login(TestClient(browser.app, follow_redirects=True), "ann", PASSWORD)
    assert again.url.path == "/", "a new sign-in works"


def test_logout_is_audited(browser: TestClient, site: Site) -> None:
    home = _login(browser, "ann", PASSWORD)
    browser.post("/logout", data={"csrf_token": csrf_of(home.text)})
    with session_scope(site.settings) as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "ann")).all()
    assert "auth.logout" in actions


def test_a_client_with_too_many_failed_logins_is_held_back(settings: Settings) -> None:
    site = make_site(settings.model_copy(update={"login_client_max_failures": 3}))
    browser = TestClient(site.client.app, follow_redirects=True)
    for username in ("ann", "vic", "nobody"):
        assert _login(browser, username, "guess-123456").status_code == 401
    held = _login(browser, "ann", PASSWORD)
    assert held.status_code == 429
    assert "来自您网络地址的登录失败次数过多" in held.text
    assert browser.get("/").url.path == "/login", "not signed in"
    browser.get("/lang/en?next=/login")
    assert "from your network address" in _login(browser, "ann", PASSWORD).text
    with session_scope(site.settings) as s:
        throttled = s.scalars(select(AuditEntry).where(AuditEntry.action == "auth.throttled")).all()
    assert [e.client for e in throttled] == ["testclient"]


SPOOF = "Your account is suspended. Call 0351-1234567 to restore it"


def test_pages_show_only_their_own_error_messages(browser: TestClient) -> None:
    _login(browser, "ann", PASSWORD)
    spoofed = browser.get("/buildout/obstacles", params={"error": SPOOF})
    assert spoofed.status_code == 200
    assert "0351-1234567" not in spoofed.text
    assert 'class="error"' not in spoofed.text
    known = browser.get("/buildout/obstacles?error=forbidden")
    assert "您无权执行此操作" in known.text
    # The anti-fraud queue: neither its error nor the name of a package that was "made".
    cases = browser.get("/fraud/cases", params={"error": SPOOF, "made": SPOOF})
    assert cases.status_code == 200
    assert "0351-1234567" not in cases.text
    assert 'role="alert"' not in cases.text
    assert 'class="ok"' not in cases.text


def test_session_cookie_is_secure_in_production(tmp_path: Path) -> None:
    keys = {name: secrets.token_urlsafe(32) for name in SECRET_FIELDS}
    settings = load_settings(data_dir=tmp_path / "var", environment="production", **keys)
    assert settings.secure_cookies
    site = make_site(settings)
    # Browsers keep a Secure cookie only over HTTPS, so this one goes through HTTPS.
    browser = TestClient(site.client.app, base_url="https://testserver", follow_redirects=False)
    page = browser.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    signed_in = browser.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert signed_in.status_code == 303
    cookies = signed_in.headers.get_list("set-cookie")
    assert cookies
    assert all("; secure" in c.lower() for c in cookies)
    dispose_engines()


def test_refused_steps_are_sent_back_as_codes_the_pages_know() -> None:
    from telereg.core.errors import AuditLogError, ConflictError, SignatureError
    from telereg.web.deps import form_error_code
    from telereg.web.terms import FORM_ERRORS

    assert form_error_code(SignatureError("a note with 0351-1234567")) == "invalid-input"
    assert form_error_code(ConflictError("no")) == "conflict"
    assert form_error_code(AuditLogError("no")) == "error"
    assert {"invalid-input", "conflict", "error"} <= set(FORM_ERRORS)


def test_fraud_lists_before_any_scan_and_for_roles_that_may_not_read_lines(
    browser: TestClient, site: Site
) -> None:
    _login(browser, "ann", PASSWORD)
    nothing = browser.get("/fraud/suspects.csv")
    assert nothing.status_code == 404
    assert "尚未进行反诈扫描" in nothing.text, "the reason, in the page's language"
    assert browser.get("/fraud/suspects.csv", params={"period": "2021-13"}).status_code == 422
    api = site.client.get("/api/v1/fraud/suspects", headers=site.as_role("analyst"))
    assert api.status_code == 404
    assert "no fraud scan yet" in api.json()["detail"], "the API keeps English"
    assert "尚未进行反诈扫描" in api.json()["message"], "and says it in the site's language"
    blocked = site.client.get("/api/v1/fraud/domains/blocked", headers=site.as_role("operator"))
    assert blocked.json() == {"total": 0, "domains": []}
    viewer = TestClient(site.client.app, follow_redirects=True)
    _login(viewer, "vic", PASSWORD)
    assert viewer.get("/fraud/suspects.csv", params={"period": "2021-11"}).status_code == 403
    assert viewer.get("/fraud").status_code == 403
    assert 'href="/fraud"' not in viewer.get("/").text, "no link to a page it may not open"
    assert 'href="/fraud"' in browser.get("/").text, "an analyst's link"
    refused = site.client.get(
        "/api/v1/fraud/suspects?period=2021-11", headers=site.as_role("viewer")
    )
    assert refused.status_code == 403


def test_the_build_out_page_links_the_obstacle_cases_only_for_who_may_open_them(
    browser: TestClient, site: Site
) -> None:
    _login(browser, "vic", PASSWORD)
    assert browser.get("/buildout/obstacles").status_code == 403
    assert 'href="/buildout/obstacles"' not in browser.get("/buildout").text
    analyst = TestClient(site.client.app, follow_redirects=True)
    _login(analyst, "ann", PASSWORD)
    assert 'href="/buildout/obstacles"' in analyst.get("/buildout").text


def test_a_dashboard_without_data_says_why_in_the_readers_language(
    browser: TestClient, site: Site
) -> None:
    _login(browser, "ann", PASSWORD)
    chinese = browser.get("/api/v1/buildout/coverage").json()
    assert chinese["detail"] == "no site data yet; ingest the operators' sites first"
    assert chinese["message"] == "还没有站址数据；请先导入运营商的站址"
    browser.get("/lang/en?next=/")
    english = browser.get("/api/v1/buildout/coverage").json()
    assert english["message"] == english["detail"]
    page = browser.get("/buildout").text
    assert "body.message || body.detail" in page, "the page shows the message, not the detail"


def test_the_audit_page_finds_what_was_done_to_one_object(browser: TestClient, site: Site) -> None:
    from telereg.core import audit

    with session_scope(site.settings) as s:
        audit.record(s, actor="ann", action="cases.x.in_review", objects=["case:77"], reason="r1")
        audit.record(s, actor="bob", action="fraud.handover", objects=["case:770", "agency:P"])
        audit.record(s, actor="ann", action="cases.x.closed", objects=["case:77"], reason="r2")
    _login(browser, "ada", PASSWORD)
    page = browser.get("/admin/audit", params={"object": "case:77"}).text
    assert 'value="case:77"' in page, "the filter stays in its field"
    assert "cases.x.in_review" in page
    assert "cases.x.closed" in page
    assert "fraud.handover" not in page, "case:770 is another case"


def test_the_audit_page_says_what_each_action_did(browser: TestClient, site: Site) -> None:
    from telereg.core import audit

    actions = ["cases.fraud_suspect.in_review", "cases.site_obstacle.open", "job.failed"]
    actions += ["privacy.reidentify", "x.new"]
    with session_scope(site.settings) as s:
        for action in actions:
            audit.record(s, actor="ann", action=action)
    _login(browser, "ada", PASSWORD)
    page = browser.get("/admin/audit", params={"actor": "ann"}).text
    for shown in ("涉诈案件流转至研判中", "站址受阻案件立案", "任务失败", "号码还原"):
        assert shown in page
    assert '<code class="meta">x.new</code>' in page, "an unknown action shows its code"
    assert all(f">{action}</code>" in page for action in actions), "the code stays beside it"
    english = browser.get("/lang/en", params={"next": "/admin/audit?actor=ann"}).text
    assert "fraud case moved to in review" in english
    assert "number re-identified" in english


def test_the_audit_log_downloads_as_csv_and_the_download_is_logged(
    browser: TestClient, site: Site
) -> None:
    import csv
    import io

    from telereg.core import audit

    with session_scope(site.settings) as s:
        audit.record(
            s, actor="ann", action="cases.x.open", objects=["case:5"], reason="=HYPERLINK()"
        )
        audit.record(s, actor="bob", action="users.add", objects=["user:c"])
        audit.record(s, actor="ann", action="cases.x.closed", objects=["case:5"], detail={"n": 1})
    _login(browser, "ada", PASSWORD)
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    page = browser.get("/admin/audit", params={"actor": "ann", "from": today, "to": today}).text
    assert f'name="from" value="{today}"' in page, "the days stay in their fields"
    link = re.search(r'id="audit-csv" href="([^"]+)"', page)
    assert link, "the page offers its entries as CSV"
    response = browser.get(link.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert rows[0][:4] == ["#", "时间（UTC）", "操作人", "操作"]
    assert [r[3] for r in rows[1:]] == ["cases.x.open", "cases.x.closed"], "oldest first"
    assert rows[1][5] == "'=HYPERLINK()", "a formula is neutralised"
    assert rows[2][6] == '{"n": 1}'
    with session_scope(site.settings) as s:
        (export,), _ = audit.entries(s, action=audit.EXPORTED)
        assert export.actor == "ada"
        assert export.detail["entries"] == 2
        assert export.detail["filters"]["actor"] == "ann"
        assert f"audit-{export.id}.csv" in response.headers["content-disposition"]


def test_the_audit_download_is_refused_without_the_permission_or_a_real_day(
    browser: TestClient, site: Site
) -> None:
    from telereg.core import audit

    _login(browser, "ann", PASSWORD)
    assert browser.get("/admin/audit.csv").status_code == 403
    browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/").text)})
    _login(browser, "ada", PASSWORD)
    refused = browser.get("/admin/audit.csv", params={"to": "2026-02-31"})
    assert refused.status_code in (400, 422)
    assert "2026-02-31" in refused.text
    assert browser.get("/admin/audit", params={"from": "30.11.2026"}).status_code == 422
    with session_scope(site.settings) as s:
        assert audit.entries(s, action=audit.EXPORTED)[1] == 0, "no export was recorded"


def test_a_case_page_shows_its_evidence_as_a_suspects_page_does(
    browser: TestClient, site: Site
) -> None:
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework

    evidence = {"callees": 1082.0, "other_province_share": 0.739, "calls_per_day": 45.917}
    identity = {"first_day_away": 1.0, "imei_identities": 2.0}
    with session_scope(site.settings) as s:
        opened = cases.open_cases(
            s,
            principal=ROOT,
            workflow=casework.WORKFLOW,
            new=[
                cases.NewCase(
                    "sim_box:l1",
                    "SIM box suspect",
                    {"type": "sim_box", "line": "l1", "evidence": evidence},
                ),
                cases.NewCase(
                    "identity:l2",
                    "holder not the user",
                    {"type": "identity", "line": "l2", "evidence": identity},
                ),
            ],
        )
        sim_box, holder = (c.id for c in opened)

    def shown(case_id: int) -> str:
        page = browser.get(f"/fraud/cases/{case_id}").text
        return page.split('id="case-evidence">', 1)[1].split("</td>", 1)[0]

    _login(browser, "ann", PASSWORD)
    figures = shown(sim_box)
    assert "1,082" in figures, "a count with its thousands separator"
    assert "73.9%" in figures, "a share as a percentage"
    assert "45.92" in figures
    assert "是" in shown(holder), "a flag as yes, not 1"
    browser.get("/lang/en?next=/")
    assert "used away from its registration city on day one yes" in shown(holder)


def test_lists_in_chinese_pages_are_separated_by_the_enumeration_comma(
    browser: TestClient, site: Site
) -> None:
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework

    seen = {"type": "sim_box", "line": "l3", "period": "2021-11", "seen_in": ["2021-10", "2021-11"]}
    with session_scope(site.settings) as s:
        new = [cases.NewCase("sim_box:l3", "SIM box suspect", seen)]
        (case,) = cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=new)
        case_id = case.id
    _login(browser, "ann", PASSWORD)
    assert "2021-10、2021-11" in browser.get(f"/fraud/cases/{case_id}").text
    assert "2021-10、2021-11" in browser.get("/fraud/cases").text
    assert "7、8、9" in browser.get("/modules/service").text, "the mission's work items"
    browser.get("/lang/en?next=/")
    assert "2021-10, 2021-11" in browser.get(f"/fraud/cases/{case_id}").text
    assert "7, 8, 9" in browser.get("/modules/service").text
