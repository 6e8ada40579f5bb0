from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from telereg.app import create_app
from telereg.core import accounts
from telereg.core.db import session_scope
from telereg.core.permissions import ROLE_PERMISSIONS, Permission, Role
from telereg.core.settings import Settings, load_settings
from tests.conftest import ROOT, Site, make_site

PUBLIC_PATHS = {"/api/v1/health", "/login", "/lang/{language}", "/api/docs"}


def _declared(route: APIRoute) -> set[str]:
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission is not None:
            found.add(str(permission))
        stack.extend(dependant.dependencies)
    return found


def test_every_endpoint_declares_its_permission(settings: Settings) -> None:
    app = create_app(settings)
    undeclared = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        if isinstance(route, APIRoute):
            declared = _declared(route)
            if not declared:
                undeclared.append(f"{sorted(route.methods)} {route.path}")
            if "public" in declared:
                assert route.path in PUBLIC_PATHS, f"{route.path} is public but not listed"
    assert not undeclared, f"routes without a permission: {undeclared}"


# (method, path, json body, permission that admits the call)
CALLS: list[tuple[str, str, dict[str, Any] | None, Permission | None]] = [
    ("GET", "/api/v1/status", None, Permission.STATUS_READ),
    ("GET", "/api/v1/users", None, Permission.USERS_READ),
    ("POST", "/api/v1/users", {"username": "newbie", "role": "viewer"}, Permission.USERS_MANAGE),
    ("POST", "/api/v1/users/leaver/disable", {"reason": "test"}, Permission.USERS_MANAGE),
    ("GET", "/api/v1/audit", None, Permission.AUDIT_READ),
    ("GET", "/api/v1/operators", None, Permission.REFERENCE_READ),
    (
        "POST",
        "/api/v1/operators",
        {"code": "NEWOP", "name": "新运营商"},
        Permission.REFERENCE_MANAGE,
    ),
    ("GET", "/api/v1/agencies", None, Permission.REFERENCE_READ),
    (
        "POST",
        "/api/v1/agencies",
        {"code": "NEWAG", "name": "新单位", "kind": "police"},
        Permission.REFERENCE_MANAGE,
    ),
    (
        "POST",
        "/api/v1/privacy/reidentify",
        {"token": "ab" * 16, "reason": "police case 2021-17"},
        Permission.PRIVACY_REIDENTIFY,
    ),
    (
        "POST",
        "/api/v1/privacy/approvals",
        {"case_id": 999999, "reason": "police case 2021-17"},
        Permission.PRIVACY_REIDENTIFY,
    ),
    ("GET", "/api/v1/privacy/approvals", None, Permission.PRIVACY_REIDENTIFY),
    (
        "POST",
        "/api/v1/privacy/approvals/999999/decision",
        {"decision": "approved", "note": "checked"},
        Permission.PRIVACY_APPROVE,
    ),
    (
        "POST",
        "/api/v1/privacy/approvals/999999/withdrawal",
        {"note": "no longer needed"},
        Permission.PRIVACY_REIDENTIFY,
    ),
    ("GET", "/api/v1/fraud/cases", None, Permission.CASES_READ_ASSIGNED),
    ("GET", "/api/v1/fraud/cases/999999", None, Permission.CASES_READ_ASSIGNED),
    ("GET", "/api/v1/fraud/handovers", None, Permission.CASES_READ_ASSIGNED),
    ("POST", "/api/v1/fraud/scans?period=2021-11", None, Permission.ANALYSIS_RUN),
    ("GET", "/api/v1/jobs", None, Permission.ANALYSIS_RUN),
    ("GET", "/api/v1/jobs/999999", None, Permission.ANALYSIS_RUN),
    ("POST", "/api/v1/jobs/999999/cancel", None, Permission.ANALYSIS_RUN),
    (
        "POST",
        "/api/v1/fraud/cases/moves",
        {"cases": [999999], "to": "in_review", "note": "x"},
        Permission.CASES_MANAGE,
    ),
    (
        "POST",
        "/api/v1/fraud/cases/999999/moves",
        {"to": "in_review", "note": "x"},
        Permission.CASES_MANAGE,
    ),
    (
        "POST",
        "/api/v1/fraud/cases/999999/disposal",
        {"disposal": "no_action", "note": "x"},
        Permission.CASES_REPORT_OUTCOME,
    ),
    (
        "POST",
        "/api/v1/fraud/handovers",
        {"cases": [999999], "agency": "POLICE-AF", "note": "x"},
        Permission.CASES_MANAGE,
    ),
    ("GET", "/api/v1/me", None, None),
]


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = make_site(load_settings(data_dir=tmp_path_factory.mktemp("api") / "var"))
    with session_scope(site.settings) as s:
        accounts.create_user(s, principal=ROOT, username="leaver", role="viewer")
    return site


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path", "body", "permission"), CALLS)
def test_each_role_is_refused_what_it_may_not_do(
    shared_site: Site,
    role: Role,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    permission: Permission | None,
) -> None:
    site = shared_site
    response = site.client.request(method, path, json=body, headers=site.as_role(role.value))
    allowed = permission is None or permission in ROLE_PERMISSIONS[role]
    if allowed:
        # Reidentifying an unknown token, moving a case that does not exist or scanning a
        # month with no data is allowed but finds nothing.
        finds_nothing = path.endswith("reidentify") or "999999" in path or "/fraud/scans" in path
        finds_nothing |= path.endswith("/fraud/handovers") and method == "POST"
        finds_nothing |= path.endswith("/fraud/cases/moves")
        finds_nothing |= path.endswith("/privacy/approvals") and method == "POST"
        expected = {404} if finds_nothing else {200, 201}
        assert response.status_code in expected, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert permission.value in response.json()["detail"]


def test_anonymous_calls_are_refused(shared_site: Site) -> None:
    for method, path, body, _ in CALLS:
        response = shared_site.client.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    assert shared_site.client.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer trg_nonsense", "unknown API token"),
        ("Bearer garbage", "malformed"),
        ("Basic dXNlcjpwYXNz", "Bearer"),
        ("Bearer ", "Bearer"),
    ],
)
def test_invalid_tokens(shared_site: Site, header: str, message: str) -> None:
    response = shared_site.client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    problem = response.json()
    assert message in problem["detail"]
    assert problem["status"] == 401
    assert problem["type"].startswith("urn:telereg:problem:")


def test_revoked_token_is_refused(site: Site) -> None:
    admin = site.as_role("admin")
    issued = site.client.post("/api/v1/users/vic/tokens", json={"label": "x"}, headers=admin)
    assert issued.status_code == 201
    token = issued.json()["token"]
    me = site.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "vic"
    revoked = site.client.delete(f"/api/v1/tokens/{issued.json()['id']}", headers=admin)
    assert revoked.json()["revoked_at"]
    again = site.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
    assert "revoked" in again.json()["detail"]


def test_token_listing_never_shows_tokens(site: Site) -> None:
    listed = site.client.get("/api/v1/users/vic/tokens", headers=site.as_role("admin")).json()
    assert listed
    assert all("token" not in t for t in listed)
    assert site.tokens["viewer"] not in str(listed)


def test_malformed_json(shared_site: Site) -> None:
    response = shared_site.client.post(
        "/api/v1/users",
        content=b'{"username": "x", ',
        headers={**shared_site.as_role("admin"), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in response.json()["detail"]


def test_invalid_fields_name_the_field(shared_site: Site) -> None:
    response = shared_site.client.post(
        "/api/v1/users",
        json={"username": "ok-name", "role": "king"},
        headers=shared_site.as_role("admin"),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "role: not a valid value (king)"
    assert body["message"] == "role：取值无效（king）", "in the site.s language"
    assert body["errors"] == [
        {"location": "body.role", "type": "enum", "problem": body["errors"][0]["problem"]}
    ]
    assert "admin" in body["errors"][0]["problem"], "programs get the parser's own words"
    missing = shared_site.client.post(
        "/api/v1/users", json={"role": "viewer"}, headers=shared_site.as_role("admin")
    )
    assert missing.json()["detail"] == "username: missing"
    assert missing.json()["errors"][0]["type"] == "missing"
    short = shared_site.client.post(
        "/api/v1/users",
        json={"username": "short-pw", "role": "viewer", "password": "tiny-pw"},
        headers=shared_site.as_role("admin"),
    )
    assert short.status_code == 422
    assert "tiny-pw" not in short.text, "a password is never repeated"
    assert short.json()["detail"] == "password: not a valid value"


def test_a_number_too_long_for_a_record_names_none(shared_site: Site) -> None:
    huge = "99999999999999999999"
    for address in (
        f"/api/v1/submissions/{huge}",
        f"/api/v1/jobs/{huge}",
        f"/api/v1/fraud/cases/{huge}",
    ):
        response = shared_site.client.get(address, headers=shared_site.as_role("admin"))
        assert response.status_code == 422, (address, response.text)
        assert response.json()["errors"][0]["location"].startswith("path.")


def test_unknown_route(shared_site: Site) -> None:
    response = shared_site.client.get("/api/v1/nowhere", headers=shared_site.as_role("admin"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_oversize_body_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("big") / "var", max_request_bytes=4096
    )
    site = make_site(settings)
    big = {"username": "x" * 10_000, "role": "viewer"}
    response = site.client.post("/api/v1/users", json=big, headers=site.as_role("admin"))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:telereg:problem:payload-too-large"
    assert response.json()["message"] == "请求正文超过 4096 字节"

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"x" * 1000

    streamed = site.client.post(
        "/api/v1/users",
        content=chunks(),
        headers={**site.as_role("admin"), "content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_conflict_and_not_found(shared_site: Site) -> None:
    admin = shared_site.as_role("admin")
    dup = shared_site.client.post(
        "/api/v1/users", json={"username": "ann", "role": "viewer"}, headers=admin
    )
    assert dup.status_code == 409
    missing = shared_site.client.post("/api/v1/users/ghost/disable", json={}, headers=admin)
    assert missing.status_code == 404


def test_session_cookie_calls_need_the_csrf_header(site: Site) -> None:
    client = TestClient(site.client.app)
    site.login(client, "ada", "correct horse battery staple")
    assert client.get("/api/v1/me").json()["username"] == "ada"
    body = {"username": "newbie", "role": "viewer"}
    refused = client.post("/api/v1/users", json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    page = client.get("/")
    from tests.conftest import csrf_of

    accepted = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf_of(page.text)})
    assert accepted.status_code == 201


def test_created_user_password_is_shown_once(site: Site) -> None:
    admin = site.as_role("admin")
    created = site.client.post(
        "/api/v1/users", json={"username": "fresh", "role": "viewer"}, headers=admin
    )
    assert created.json()["password"]
    listed = site.client.get("/api/v1/users", headers=admin).text
    assert created.json()["password"] not in listed


def _in_vault(site: Site, *values: str) -> list[str]:
    """The tokens of ``values``, stored in the vault as an ingest stores them."""
    import pyarrow as pa

    from telereg.core.privacy import IdentifierKind, Vault, pseudonymise

    tokens = [pseudonymise(v, site.settings.secret("pseudonym_key")) for v in values]
    pairs = pa.table({"token": tokens, "clear": list(values)})
    Vault.of(site.settings).store(pairs, IdentifierKind.PHONE)
    return tokens


def _audit(site: Site, action: str = "", **filters: str) -> list[dict[str, Any]]:
    """The entries of ``action`` (all: ""), newest first, read through the API."""
    found = site.client.get(
        "/api/v1/audit",
        params={"limit": 1000, "action": action, **filters},
        headers=site.as_role("admin"),
    )
    assert found.status_code == 200, found.text
    return [e for e in found.json()["entries"] if e["action"] == action or not action]


def test_reidentify_through_the_api_is_audited(site: Site) -> None:
    (token,) = _in_vault(site, "13812341234")
    analyst = site.as_role("analyst")
    no_reason = site.client.post(
        "/api/v1/privacy/reidentify", json={"token": token, "reason": ""}, headers=analyst
    )
    assert no_reason.status_code == 422
    # A download's row token is not the lake's: said so, not just "not a valid value".
    row_token = site.client.post(
        "/api/v1/privacy/reidentify",
        json={"token": "r" + token[1:], "reason": "case 2021-17"},
        headers=analyst,
    )
    assert row_token.status_code == 422
    assert "not a lake token" in row_token.json()["detail"]
    # A short Chinese reason is enough, as on the web (a Chinese character counts as two).
    ok = site.client.post(
        "/api/v1/privacy/reidentify",
        json={"token": token, "reason": "查案件号"},
        headers=analyst,
    )
    assert ok.json()["value"] == "13812341234"
    log = site.client.get(
        "/api/v1/audit?action=privacy.reidentify&actor=ann", headers=site.as_role("admin")
    ).json()
    assert [e["action"] for e in log["entries"]] == [
        "privacy.reidentify",
        "privacy.reidentify_refused",
    ]
    assert log["entries"][0]["reason"] == "查案件号"
    # Who looked at this number: the entries naming its token, whatever their action.
    about = site.client.get(
        "/api/v1/audit", params={"object": f"token:{token}"}, headers=site.as_role("admin")
    ).json()
    assert [e["action"] for e in about["entries"]] == [
        "privacy.reidentify",
        "privacy.reidentify_refused",
    ]
    other = site.client.get(
        "/api/v1/audit", params={"object": f"token:{token[:-1]}"}, headers=site.as_role("admin")
    ).json()
    assert other["total"] == 0, "a whole object, not a prefix"


def test_a_refused_reidentification_is_answered_and_audited(site: Site) -> None:
    (token,) = _in_vault(site, "13812341234")
    attempts = [
        ("viewer", token, "curious about it", 403, "forbidden"),
        ("analyst", token, "aaaaa", 422, "invalid-input"),
        ("analyst", token, "test1", 422, "invalid-input"),
        ("analyst", token, "测试测", 422, "invalid-input"),
        ("analyst", "00" * 16, "police case 2021-17", 404, "not-found"),
    ]
    for role, asked, reason, status, _ in attempts:
        answer = site.client.post(
            "/api/v1/privacy/reidentify",
            json={"token": asked, "reason": reason},
            headers=site.as_role(role),
        )
        assert answer.status_code == status, answer.text
        assert "13812341234" not in answer.text
    said = site.client.post(
        "/api/v1/privacy/reidentify",
        json={"token": token, "reason": "asdf"},
        headers=site.as_role("analyst"),
    ).json()
    assert "at least 6 different letters" in said["detail"], "the rule is told"
    refused = _audit(site, action="privacy.reidentify_refused")[::-1][: len(attempts)]
    assert [(e["actor"], e["objects"], e["reason"], e["detail"]["refused"]) for e in refused] == [
        ({"viewer": "vic", "analyst": "ann"}[role], [f"token:{asked}"], reason, code)
        for role, asked, reason, _, code in attempts
    ], "each refusal is committed although the request failed"
    assert _audit(site, action="privacy.reidentify") == []


def _case_of_lines(site: Site, reference: str, *values: str) -> int:
    """A SIM-box case in review whose line, holder and holder's other lines are ``values``
    (a line, an ID number, more lines), stored in the vault."""
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework

    line, holder, *lines = _in_vault(site, *values)
    subject = {
        "type": "sim_box",
        "line": line,
        "id_number": holder,
        "lines": lines,
        "period": "2021-11",
        "operator": "CMCC",
    }
    with session_scope(site.settings) as s:
        new = cases.NewCase(f"sim_box:{reference}", "SIM box suspect", subject)
        (case,) = cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=[new])
        cases.move(
            s, principal=ROOT, workflow=casework.WORKFLOW, case_id=case.id, to="in_review", note="n"
        )
        return case.id


def test_reveals_beyond_the_daily_limit_are_refused_with_429(tmp_path: Path) -> None:
    site = make_site(load_settings(data_dir=tmp_path / "var", reidentify_daily_limit=4))
    (token,) = _in_vault(site, "13812341234")
    case = _case_of_lines(
        site, "limit", "13900000001", "140102198001010011", "13900000002", "13900000003"
    )
    analyst, admin = site.as_role("analyst"), site.as_role("admin")

    def reveal(headers: dict[str, str]) -> Any:
        return site.client.post(
            "/api/v1/privacy/reidentify",
            json={"token": token, "reason": "police case 2021-17"},
            headers=headers,
        )

    assert reveal(analyst).status_code == 200
    # The hand-over would reveal 4 values (the line, its holder, two more lines): 1 + 4 > 4.
    handover = {
        "cases": [case],
        "agency": "POLICE-AF",
        "note": "for the police",
        "reveal_reason": "police request JQ-1",
    }
    refused = site.client.post("/api/v1/fraud/handovers", json=handover, headers=analyst)
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("limit-reached")
    assert (
        "1 clear values revealed in the last 24 hours, at most 4 allowed, 4 more asked"
        in (refused.json()["detail"])
    )
    detail = site.client.get(f"/api/v1/fraud/cases/{case}", headers=admin).json()
    assert detail["status"] == "in_review", "nothing moved"
    (entry,) = _audit(site, action="privacy.reidentify_refused")
    assert (entry["actor"], entry["detail"]["refused"]) == ("ann", "limit-reached")
    assert entry["objects"] == [f"case:{case}", "agency:POLICE-AF"]
    # Another user has a limit of its own: the hand-over's 4 values fill it, each audited.
    made = site.client.post("/api/v1/fraud/handovers", json=handover, headers=admin)
    assert made.status_code == 200, made.text
    assert len(_audit(site, action="privacy.reidentify", actor="ada")) == 4
    over = reveal(admin)
    assert over.status_code == 429, over.text
    assert over.json()["message"] != "", "said to a person too"
    assert [e["detail"]["refused"] for e in _audit(site, action="privacy.reidentify_refused")] == [
        "limit-reached",
        "limit-reached",
    ]


def _reveal(site: Site, role: str, token: str, reason: str, case: int | None = None) -> Any:
    body: dict[str, Any] = {"token": token, "reason": reason}
    if case is not None:
        body["case_id"] = case
    return site.client.post("/api/v1/privacy/reidentify", json=body, headers=site.as_role(role))


def test_a_reveal_for_a_case_is_in_the_cases_history(site: Site) -> None:
    case = _case_of_lines(site, "looked", "13900000001", "140102198001010011", "13900000002")
    detail = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("analyst"))
    line, holder = detail.json()["subject"]["line"], detail.json()["subject"]["id_number"]
    (stranger,) = _in_vault(site, "13812341234")

    # Two values of the case with one reason: one step of its history, counting both.
    for token in (line, holder):
        shown = _reveal(site, "analyst", token, "police request JQ-3", case)
        assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == "140102198001010011"
    # A value the case does not name, or a case that does not exist: refused, audited.
    other = _reveal(site, "analyst", stranger, "police request JQ-3", case)
    assert other.status_code == 422, other.text
    assert f"case {case} is not about this value" in other.json()["detail"]
    assert "13812341234" not in other.text
    assert _reveal(site, "analyst", line, "police request JQ-3", 99999).status_code == 404
    # A role without the permission learns nothing of the case either.
    assert _reveal(site, "viewer", line, "police request JQ-3", case).status_code == 403

    done = _audit(site, action="privacy.reidentify")[::-1]
    assert [e["objects"] for e in done] == [
        [f"token:{line}", f"case:{case}"],
        [f"token:{holder}", f"case:{case}"],
    ]
    refused = _audit(site, action="privacy.reidentify_refused")[::-1]
    assert [(e["objects"], e["detail"]["refused"]) for e in refused] == [
        ([f"token:{stranger}", f"case:{case}"], "invalid-input"),
        ([f"token:{line}", "case:99999"], "not-found"),
        ([f"token:{line}", f"case:{case}"], "forbidden"),
    ]
    history = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("analyst"))
    looked = [h for h in history.json()["history"] if h["step"] == "reidentified"]
    assert [(h["actor"], h["note"], h["values"]) for h in looked] == [
        ("ann", "police request JQ-3", 2)
    ]
    # The agency the case is handed to sees its own part of the history, not the
    # administration's looks.
    handed = site.client.post(
        "/api/v1/fraud/handovers",
        json={"cases": [case], "agency": "POLICE-AF", "note": "for the police"},
        headers=site.as_role("analyst"),
    )
    assert handed.status_code == 200, handed.text
    theirs = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("liaison"))
    assert theirs.status_code == 200, theirs.text
    assert [h["step"] for h in theirs.json()["history"]] == ["referred"]


def test_an_installation_can_require_a_case_for_every_reveal(tmp_path: Path) -> None:
    site = make_site(load_settings(data_dir=tmp_path / "var", reidentify_requires_case=True))
    case = _case_of_lines(site, "required", "13900000001", "140102198001010011")
    line = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("analyst")).json()[
        "subject"
    ]["line"]
    without = _reveal(site, "analyst", line, "police request JQ-4")
    assert without.status_code == 422, without.text
    assert "name the case this re-identification is for" in without.json()["detail"]
    assert "13900000001" not in without.text
    assert _reveal(site, "analyst", line, "police request JQ-4", case).json()["value"] == (
        "13900000001"
    )
    # A hand-over names its cases, so its clear values need nothing more.
    handed = site.client.post(
        "/api/v1/fraud/handovers",
        json={
            "cases": [case],
            "agency": "POLICE-AF",
            "note": "for the police",
            "reveal_reason": "police request JQ-4",
        },
        headers=site.as_role("analyst"),
    )
    assert handed.status_code == 200, handed.text
    objects = [e["objects"] for e in _audit(site, action="privacy.reidentify")[::-1]]
    assert objects == [[f"token:{line}", f"case:{case}"]] * 2 + [[objects[2][0], f"case:{case}"]], (
        "the hand-over's values name the case too"
    )
    (refused,) = _audit(site, action="privacy.reidentify_refused")
    assert refused["objects"] == [f"token:{line}"]


def test_numbers_in_notes_and_reasons_are_masked_where_they_are_kept(site: Site) -> None:
    import io
    import json
    import zipfile

    phone, id_number = "13812345678", "140102198407078571"
    said = f"victim called from {phone}, ID {id_number}"
    masked = "victim called from 138****5678, ID 140***********8571"
    case = _case_of_lines(site, "notes", "13900000001", "140102198001010011")
    client, analyst, liaison = site.client, site.as_role("analyst"), site.as_role("liaison")
    moves = f"/api/v1/fraud/cases/{case}/moves"
    closed_case = _case_of_lines(site, "closed", "13900000004", "140102198001010022")
    closed = client.post(
        f"/api/v1/fraud/cases/{closed_case}/moves",
        json={"to": "closed", "note": said},
        headers=analyst,
    )
    assert closed.status_code == 200, closed.text
    handover = {"cases": [case], "agency": "POLICE-AF", "note": f"hand-over: {said}"}
    made = client.post(
        "/api/v1/fraud/handovers",
        json={**handover, "reveal_reason": f"police request about {phone}"},
        headers=analyst,
    )
    assert made.status_code == 200, made.text
    with zipfile.ZipFile(io.BytesIO(made.content)) as package:
        manifest = json.loads(package.read("manifest.json"))
    assert manifest["note"] == f"hand-over: {masked}"
    assert manifest["reveal_reason"] == "police request about 138****5678"
    withdrawn = client.post(
        moves, json={"to": "in_review", "note": f"withdrawn: {said}"}, headers=analyst
    )
    assert withdrawn.status_code == 200, withdrawn.text
    again = client.post("/api/v1/fraud/handovers", json=handover, headers=analyst)
    assert again.status_code == 200, again.text
    disposed = client.post(
        f"/api/v1/fraud/cases/{case}/disposal",
        json={"disposal": "no_action", "note": f"disposal: {said}"},
        headers=liaison,
    )
    assert disposed.status_code == 200, disposed.text
    refused = client.post(
        "/api/v1/privacy/reidentify",
        json={"token": "00" * 16, "reason": f"the caller {phone}"},
        headers=analyst,
    )
    assert refused.status_code == 404
    history = client.get(f"/api/v1/fraud/cases/{case}", headers=analyst).json()["history"]
    notes = [step["note"] for step in history]
    assert f"withdrawn: {masked}" in notes
    assert f"no_action: disposal: {masked}" in notes
    assert notes.count(f"hand-over: {masked}") == 2
    closing = client.get(f"/api/v1/fraud/cases/{closed_case}", headers=analyst).json()
    assert closing["history"][-1]["note"] == masked
    log = _audit(site)
    reasons = {e["reason"] for e in log}
    assert {masked, f"withdrawn: {masked}", "police request about 138****5678"} <= reasons
    assert "the caller 138****5678" in reasons, "a refused attempt's reason too"
    kept = json.dumps(log, ensure_ascii=False) + json.dumps(history, ensure_ascii=False)
    kept += json.dumps(closing, ensure_ascii=False)
    assert phone not in kept
    assert id_number not in kept


def _handover_by_api(site: Site, case: int) -> str:
    """The name of the package of ``case``, handed over to POLICE-AF by the admin."""
    made = site.client.post(
        "/api/v1/fraud/handovers",
        json={"cases": [case], "agency": "POLICE-AF", "note": "for the police"},
        headers=site.as_role("admin"),
    )
    assert made.status_code == 200, made.text
    return made.headers["content-disposition"].split('filename="')[1].rstrip('"')


def test_refused_fetches_and_checks_of_a_package_are_kept_and_alone(site: Site) -> None:
    # No route commits a refusal itself: the request's rollback keeps its audit entry, and
    # only that, however the request was refused.
    case = _case_of_lines(site, "refusals", "13900000021", "140102198001010033")
    name = _handover_by_api(site, case)
    with session_scope(site.settings) as s:
        accounts.create_user(s, principal=ROOT, username="hal", role="liaison", agency="HEALTH")
        token = accounts.issue_token(s, principal=ROOT, username="hal").token
    health = {"Authorization": f"Bearer {token}"}
    client, liaison = site.client, site.as_role("liaison")
    package = f"/api/v1/fraud/handovers/POLICE-AF/{name}"
    archive = client.get(package, headers=liaison).content
    changed = bytearray(archive)
    changed[len(changed) // 2] ^= 1

    def check(headers: dict[str, str], data: bytes) -> Any:
        files = {"file": (name, data, "application/zip")}
        return client.post("/api/v1/fraud/handovers/verify", files=files, headers=headers)

    def withdraw() -> None:
        moved = client.post(
            f"/api/v1/fraud/cases/{case}/moves",
            json={"to": "in_review", "note": "wrong desk"},
            headers=site.as_role("admin"),
        )
        assert moved.status_code == 200, moved.text

    refusals = [
        (lambda: client.get(package, headers=health), 404, "fraud.handover.refused"),
        (lambda: check(health, archive), 403, "fraud.handover.checked"),
        (lambda: check(liaison, bytes(changed)), 422, "fraud.handover.checked"),
        (lambda: client.get(package, headers=liaison), 404, "fraud.handover.refused"),
    ]
    for number, (ask, status, action) in enumerate(refusals):
        if number == len(refusals) - 1:
            withdraw()  # the last: a package none of whose cases is the agency's now
        last = max(e["id"] for e in _audit(site))
        answer = ask()
        assert answer.status_code == status, answer.text
        (kept,) = [e for e in _audit(site) if e["id"] > last]
        assert kept["action"] == action
        assert kept["actor"] == ("hal" if number < 2 else "lee")
        assert kept["objects"][0] == f"handover:{'POLICE-AF/' if status == 404 else ''}{name}"
        if action == "fraud.handover.checked":
            assert kept["detail"]["intact"] is False
    assert kept["objects"][1:] == [f"case:{case}"], "the withdrawn package names its case"


def test_a_refusal_outlives_the_rollback_of_the_work_it_was_part_of(site: Site) -> None:
    from telereg.cases.models import Case
    from telereg.core import audit
    from telereg.core.errors import NotFoundError, SignatureError
    from telereg.domains.fraud import casework, handover
    from tests.conftest import principal_of_role

    case = _case_of_lines(site, "rolled-back", "13900000031", "140102198001010044")
    name = _handover_by_api(site, case)
    health = principal_of_role(Role.LIAISON, agency_code="HEALTH")
    settings = site.settings

    def withdraw_then_fetch() -> None:
        with session_scope(settings) as s:
            # Something else the same transaction did: rolled back with the refusal's error.
            casework.move_case(s, principal=ROOT, case_id=case, to="in_review", note="withdrawn")
            handover.package_for(s, settings, principal=health, agency="POLICE-AF", name=name)

    with pytest.raises(NotFoundError):
        withdraw_then_fetch()
    with session_scope(settings) as s:
        kept = audit.about(s, f"handover:POLICE-AF/{name}")
        assert [(e.actor, e.action) for e in kept] == [("test-liaison", "fraud.handover.refused")]
        assert s.get(Case, case).status == "referred", "the move was rolled back"
        assert [e.action for e in audit.about(s, f"case:{case}")][-1] == "fraud.handover"
        # A check refused in a savepoint (as a page's form runs it): kept at the next commit.
        with pytest.raises(SignatureError), s.begin_nested():
            handover.check_package(
                s, settings, principal=health, archive=b"PK\x03\x04 no", filename=name
            )
    with session_scope(settings) as s:
        (checked,) = audit.about(s, f"handover:{name}")
        assert (checked.action, checked.detail["intact"]) == ("fraud.handover.checked", False)


def test_the_api_has_no_way_to_change_the_audit_log(settings: Settings) -> None:
    app = create_app(settings)
    for route in app.routes:
        if isinstance(route, APIRoute) and "audit" in route.path:
            assert route.methods == {"GET"}, route.path


def test_status_counts_are_real(site: Site) -> None:
    status = site.client.get("/api/v1/status", headers=site.as_role("admin")).json()
    assert status["users"] == 6  # the demo admin and one user per role
    assert status["submissions"] == 0
    assert status["open_cases"] == 0
    assert status["datasets"] == []
    operator_view = site.client.get("/api/v1/status", headers=site.as_role("operator")).json()
    assert operator_view["users"] is None, "only user managers see the user count"


def test_a_text_longer_than_its_column_is_refused_and_nothing_stored(shared_site: Site) -> None:
    admin = shared_site.as_role("admin")
    long = shared_site.client.post(
        "/api/v1/operators", json={"code": "LONGNAME", "name": "长" * 201}, headers=admin
    )
    assert long.status_code == 422, long.text
    assert long.json()["detail"] == "name is longer than 200 characters"
    listed = shared_site.client.get("/api/v1/operators", headers=admin).json()
    assert "LONGNAME" not in {o["code"] for o in listed}, "nothing stored"


def test_a_change_the_database_refuses_at_commit_is_an_error_answer(site: Site) -> None:
    """The request's changes are committed before its answer is sent: a commit that fails
    (a full disk, a constraint only the database checks) cannot follow a "201 Created"."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from telereg.core.errors import StorageError

    def refuse(_session: Session) -> None:
        raise StorageError("the disk is full")

    event.listen(Session, "before_commit", refuse)
    try:
        answer = site.client.post(
            "/api/v1/operators",
            json={"code": "LATE", "name": "某运营商"},
            headers=site.as_role("admin"),
        )
    finally:
        event.remove(Session, "before_commit", refuse)
    assert answer.status_code == 507, answer.text
    listed = site.client.get("/api/v1/operators", headers=site.as_role("admin")).json()
    assert "LATE" not in {o["code"] for o in listed}


def test_a_page_beyond_what_a_database_counts_is_refused_as_input(shared_site: Site) -> None:
    huge = 2**63
    for address in (
        f"/api/v1/submissions?offset={huge}",
        "/api/v1/submissions/1/quarantine?offset=99999999999999999999",
        f"/api/v1/audit?offset={huge}",
        f"/api/v1/fraud/suspects?offset={huge}",
        f"/api/v1/fraud/ids-over-limit?offset={huge}",
        f"/api/v1/fraud/identity-signals?offset={huge}",
    ):
        response = shared_site.client.get(address, headers=shared_site.as_role("admin"))
        assert response.status_code == 422, (address, response.text)
        assert response.json()["errors"][0]["location"] == "query.offset"
    last = shared_site.client.get(
        f"/api/v1/submissions?offset={huge - 1}", headers=shared_site.as_role("admin")
    )
    assert last.status_code == 200, last.text
    assert last.json()["submissions"] == []


def test_a_time_without_a_zone_is_utc(shared_site: Site) -> None:
    admin = shared_site.as_role("admin")
    for query in ("since=2026-12-01", "until=2026-12-01T08:00:00", "since=2020-01-01T00:00:00Z"):
        response = shared_site.client.get(f"/api/v1/audit?{query}", headers=admin)
        assert response.status_code == 200, (query, response.text)
    later = shared_site.client.get("/api/v1/audit?since=2999-01-01", headers=admin).json()
    assert later["total"] == 0
    earlier = shared_site.client.get("/api/v1/audit?until=2999-01-01", headers=admin).json()
    assert earlier["total"] > 0


def test_a_method_not_allowed_says_which_are(shared_site: Site) -> None:
    response = shared_site.client.put("/api/v1/submissions", headers=shared_site.as_role("admin"))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def _message(response: Any) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["message"])


def test_every_refusal_is_told_in_the_request_language(shared_site: Site) -> None:
    client, admin = shared_site.client, shared_site.as_role("admin")
    assert _message(client.get("/api/v1/me")) == "请登录或发送 API 令牌"
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer trg_nonsense"})
    assert _message(unknown) == "未知的 API 令牌"
    assert _message(client.get("/api/v1/jobs/999999", headers=admin)) == "没有作业 999999"
    malformed = client.post(
        "/api/v1/users",
        content=b'{"username": ',
        headers={**admin, "content-type": "application/json"},
    )
    assert _message(malformed) == "请求正文不是有效的 JSON"
    nowhere = client.get("/api/v1/nowhere", headers=admin)
    assert _message(nowhere) == "API 中没有地址 /api/v1/nowhere"
    not_allowed = client.put("/api/v1/submissions", headers=admin)
    assert _message(not_allowed).startswith("/api/v1/submissions 不接受 PUT")
    no_boundary = client.post(
        "/api/v1/fraud/handovers/verify",
        content=b"--x\r\n",
        headers={**admin, "content-type": "multipart/form-data"},
    )
    assert no_boundary.status_code == 400
    assert _message(no_boundary).startswith("请求正文不是可读取的表单")
    blank = client.post(
        "/api/v1/fraud/cases/999999/moves", json={"to": "in_review", "note": ""}, headers=admin
    )
    assert blank.json()["detail"] == "note: not a valid value ()"
    assert _message(blank) == "note：取值无效（）"


def test_a_file_name_before_a_message_does_not_stop_its_translation(shared_site: Site) -> None:
    response = shared_site.client.post(
        "/api/v1/fraud/handovers/verify",
        files={"file": ("p.zip", b"not a zip", "application/zip")},
        headers=shared_site.as_role("admin"),
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("p.zip: not a hand-over package")
    message = _message(response)
    assert message.startswith("p.zip: ")
    assert "hand-over" not in message


@pytest.mark.parametrize(
    ("header", "cookie", "english"),
    [
        ("en-US,en;q=0.9", None, True),
        ("fr, en;q=0.5", None, True),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, False),
        ("en;q=0.4, zh", None, False),
        ("fr", None, False),
        ("en", "zh_CN", False),
        ("zh", "en", True),
    ],
)
def test_the_api_answers_in_the_accepted_language_unless_one_was_chosen(
    shared_site: Site, header: str, cookie: str | None, english: bool
) -> None:
    client = TestClient(shared_site.client.app)
    if cookie:
        client.cookies.set("telereg_lang", cookie)
    response = client.get("/api/v1/me", headers={"Accept-Language": header})
    expected = "sign in or send an API token" if english else "请登录或发送 API 令牌"
    assert _message(response) == expected


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("/submissions?status=bogus", 422, "query.status"),
        ("/submissions?period=2021-13", 422, "query.period"),
        ("/submissions?operator=NOPE", 404, "operator"),
        ("/submissions?dataset=nope", 404, "dataset"),
        ("/fraud/suspects?operator=NOPE", 404, "operator"),
        ("/fraud/suspects?city=abc", 422, "query.city"),
        ("/fraud/ids-over-limit?operator=NOPE", 404, "operator"),
        ("/fraud/identity-signals?operator=NOPE", 404, "operator"),
    ],
)
def test_a_filter_that_names_nothing_is_refused_not_empty(
    shared_site: Site, query: str, status: int, field: str
) -> None:
    response = shared_site.client.get(f"/api/v1{query}", headers=shared_site.as_role("admin"))
    assert response.status_code == status, response.text
    body = response.json()
    if status == 422:
        assert body["errors"][0]["location"] == field
    else:
        assert field in body["detail"]
    assert body["message"] != body["detail"], "told in the site's language"


def test_filters_that_name_something_still_list(shared_site: Site) -> None:
    response = shared_site.client.get(
        "/api/v1/submissions?status=accepted&period=2021-11&operator=CMCC&dataset=voice_cdr",
        headers=shared_site.as_role("admin"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0


def _open_case(site: Site, reference: str) -> int:
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework

    with session_scope(site.settings) as s:
        new = cases.NewCase(f"sim_box:{reference}", "SIM box suspect", {"period": "2021-11"})
        (case,) = cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=[new])
        return case.id


def test_a_case_of_another_workflow_is_named_where_a_fraud_case_is_asked_for(
    shared_site: Site,
) -> None:
    from telereg.cases import service as cases
    from telereg.domains.buildout.obstacles import WORKFLOW as OBSTACLES

    with session_scope(shared_site.settings) as s:
        new = cases.NewCase("OB-elsewhere", "site obstacle", {"period": "2021-11"})
        (case,) = cases.open_cases(s, principal=ROOT, workflow=OBSTACLES, new=[new])
        obstacle = case.id
    client = shared_site.client
    asked = client.get(f"/api/v1/fraud/cases/{obstacle}", headers=shared_site.as_role("admin"))
    assert asked.status_code == 404
    assert asked.json()["detail"] == (
        f"no fraud case {obstacle}; case {obstacle} is a site_obstacle case: "
        "see /buildout/obstacles"
    )
    # To whom may not manage cases, it does not exist.
    liaison = client.get(f"/api/v1/fraud/cases/{obstacle}", headers=shared_site.as_role("liaison"))
    assert liaison.json()["detail"] == f"no fraud case {obstacle}"
    # And the other way round: a fraud case asked for as a site obstacle.
    fraud = _open_case(shared_site, "elsewhere")
    moved = client.post(
        f"/api/v1/buildout/obstacles/{fraud}/move",
        json={"to": "closed", "note": "n"},
        headers=shared_site.as_role("admin"),
    )
    assert moved.status_code == 404
    assert "is a fraud_suspect case: see /fraud/cases" in moved.json()["detail"]
    # Referring and resolving name the commands that do it.
    referred = client.post(
        f"/api/v1/fraud/cases/{fraud}/moves",
        json={"to": "referred", "note": "n"},
        headers=shared_site.as_role("admin"),
    )
    assert referred.status_code == 422
    assert "telereg fraud export" in referred.json()["detail"]


def test_the_cli_says_a_domain_was_blocked(
    shared_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework
    from telereg.domains.fraud.cli import move_command

    with session_scope(shared_site.settings) as s:
        subject = {"type": "domain", "domain": "icbc-verify.top", "period": "2021-11"}
        new = cases.NewCase("domain:icbc-verify.top", "lookalike domain", subject)
        (case,) = cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=[new])
        case_id = case.id
    move_command(
        shared_site.settings, ROOT, case_ids=[case_id], to="domain_blocked", note="bank lookalike"
    )
    said = capsys.readouterr().out
    assert f"case {case_id} is now closed, decided domain_blocked: the domain was blocked" in said


def test_a_move_from_a_state_the_case_has_left_is_refused(shared_site: Site) -> None:
    client, admin = shared_site.client, shared_site.as_role("admin")
    case = _open_case(shared_site, "read-state")
    moves = f"/api/v1/fraud/cases/{case}/moves"
    review = {"to": "in_review", "note": "n", "from": "open"}
    reviewed = client.post(moves, json=review, headers=admin)
    assert reviewed.status_code == 200, reviewed.text
    late = client.post(moves, json={"to": "closed", "note": "n", "from": "open"}, headers=admin)
    assert late.status_code == 409, late.text
    assert late.json()["detail"] == (
        f"case {case} is in_review, not open: it was moved meanwhile; reload it"
    )
    together = client.post(
        "/api/v1/fraud/cases/moves",
        json={"cases": [case], "to": "closed", "note": "n", "from": "open"},
        headers=admin,
    )
    assert together.status_code == 409, together.text
    assert "已被他人改动" in late.json()["message"]
    assert "而非待处理" in late.json()["message"], "both states are named in Chinese"
    assert client.get(f"/api/v1/fraud/cases/{case}", headers=admin).json()["status"] == "in_review"
    nowhere = {"to": "closed", "note": "n", "from": "nowhere"}
    unknown = client.post(moves, json=nowhere, headers=admin)
    assert unknown.status_code == 422
    closed = client.post(
        moves, json={"to": "closed", "note": "n", "from": "in_review"}, headers=admin
    )
    assert closed.status_code == 200, closed.text
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["Move"]
    assert "from" in schema["properties"]


def test_the_openapi_document_describes_what_the_api_sends(shared_site: Site) -> None:
    document = shared_site.client.get("/api/v1/openapi.json").json()
    schemas, paths = document["components"]["schemas"], document["paths"]
    assert "HTTPValidationError" not in schemas
    assert {"detail", "message", "errors"} <= set(schemas["Problem"]["properties"])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    problem = {"$ref": "#/components/schemas/Problem"}
    moves = paths["/api/v1/fraud/cases/{case_id}/moves"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "422"):
        assert moves[status]["content"] == {"application/problem+json": {"schema": problem}}
    assert "401" not in paths["/api/v1/health"]["get"]["responses"]
    downloads = {
        ("/api/v1/submissions/{submission_id}/errors.csv", "get"): {"text/csv"},
        ("/api/v1/submissions/{submission_id}/rows", "get"): {
            "text/csv",
            "application/vnd.apache.parquet",
        },
        ("/api/v1/fraud/handovers", "post"): {"application/zip"},
        ("/api/v1/fraud/handovers/{agency}/{name}", "get"): {"application/zip"},
    }
    for (path, method), media in downloads.items():
        assert set(paths[path][method]["responses"]["200"]["content"]) == media, path
    cases = {p["name"]: p["schema"] for p in paths["/api/v1/fraud/cases"]["get"]["parameters"]}
    assert "in_review" in cases["status"]["enum"]
    assert cases["order"]["enum"] == ["opened", "priority"]
    assert "domain" in cases["kind"]["enum"]
    assert "closed" in schemas["Move"]["properties"]["to"]["enum"]
    assert "no_action" in schemas["Disposal"]["properties"]["disposal"]["enum"]
    assert "cancelled" in schemas["JobOut"]["properties"]["status"]["enum"]


def test_a_case_lists_as_next_only_the_steps_its_reader_may_take(shared_site: Site) -> None:
    from sqlalchemy import select

    from telereg.cases.models import Case
    from telereg.core.models import Agency

    case = _open_case(shared_site, "next-steps")
    with session_scope(shared_site.settings) as s:
        found = s.get(Case, case)
        assert found is not None
        found.status = "referred"
        found.agency = s.scalar(select(Agency).where(Agency.code == "POLICE-AF"))
    address = f"/api/v1/fraud/cases/{case}"
    liaison = shared_site.client.get(address, headers=shared_site.as_role("liaison"))
    assert liaison.status_code == 200, liaison.text
    assert liaison.json()["next"] == ["resolved"]
    analyst = shared_site.client.get(address, headers=shared_site.as_role("analyst")).json()
    assert "in_review" in analyst["next"], "who manages cases may take one back"
