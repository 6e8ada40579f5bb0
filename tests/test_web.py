from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Site, csrf_of


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


def test_navigation_lists_every_module_and_unbuilt_ones_say_so(browser: TestClient) -> None:
    _login(browser, "vic", PASSWORD)
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
    refused = browser.post(
        "/admin/users", data={"username": "badop", "role": "operator", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "bound to an operator" in refused.text
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


def test_vendored_assets_are_served(browser: TestClient) -> None:
    for path in ("/static/vendor/echarts/echarts.min.js", "/static/vendor/htmx/htmx.min.js"):
        response = browser.get(path)
        assert response.status_code == 200
        assert len(response.content) > 10_000


def test_pages_and_the_api_cannot_be_framed_by_other_sites(browser: TestClient) -> None:
    for path in ("/login", "/api/v1/health", "/static/js/text.js"):
        response = browser.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'", path
        assert response.headers["x-content-type-options"] == "nosniff", path
