"""My account (/account): each user's own password and API tokens, through the real app."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from telereg.core import accounts
from telereg.core.db import session_scope
from telereg.core.models import AuditEntry, User
from telereg.core.permissions import Role
from tests.conftest import PASSWORD, ROLE_USERS, ROOT, Site, csrf_of

NEW_PASSWORD = "a new and longer passphrase"
ROLES_WITH_TOKENS = [Role.ADMIN, Role.ANALYST, Role.OPERATOR, Role.LIAISON]


def _signed_in(site: Site, username: str) -> tuple[TestClient, str]:
    """A browser of its own signed in as ``username``, and the CSRF token of its session."""
    client = TestClient(site.client.app, follow_redirects=True)
    site.login(client, username, PASSWORD)
    return client, csrf_of(client.get("/account").text)


def _change_password(
    client: TestClient, csrf: str, current: str, new: str, again: str | None = None
) -> Response:
    return client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def _sign_in(site: Site, username: str, password: str) -> Response:
    client = TestClient(site.client.app, follow_redirects=True)
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )


def _actions(site: Site, actor: str) -> list[str]:
    with session_scope(site.settings) as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == actor)))


@pytest.mark.parametrize("role", list(Role))
def test_every_role_changes_its_own_password_and_signs_in_with_it(site: Site, role: Role) -> None:
    username, binding = ROLE_USERS[role]
    client, csrf = _signed_in(site, username)
    elsewhere, _ = _signed_in(site, username)
    page = client.get("/account")
    assert page.status_code == 200
    assert 'href="/account"' in client.get("/").text, "linked from the user's menu"
    me = page.text[page.text.index('id="me"') : page.text.index('id="password"')]
    assert f"<dd>{username}</dd>" in me
    for code in binding.values():
        assert code in me, "the operator or agency the user is bound to"

    changed = _change_password(client, csrf, PASSWORD, NEW_PASSWORD)
    assert changed.url.path == "/account"
    assert "密码已修改" in changed.text
    assert client.get("/account").status_code == 200, "this session stays signed in"
    assert elsewhere.get("/account").url.path == "/login", "the other sessions end"
    assert _sign_in(site, username, PASSWORD).status_code == 401, "the old password is gone"
    assert _sign_in(site, username, NEW_PASSWORD).url.path == "/"
    assert "users.change_password" in _actions(site, username)
    # A new session's form works: the CSRF token was renewed with it.
    again = csrf_of(client.get("/account").text)
    assert _change_password(client, again, NEW_PASSWORD, PASSWORD).url.path == "/account"


def test_a_wrong_current_password_is_refused_and_counts_towards_lockout(site: Site) -> None:
    client, csrf = _signed_in(site, "olu")
    wrong = _change_password(client, csrf, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 401
    assert "当前密码不正确" in wrong.text
    with session_scope(site.settings) as s:
        assert accounts.get_user(s, "olu").failed_logins == 1
    assert "auth.confirm_failed" in _actions(site, "olu")
    for _ in range(site.settings.login_max_failures - 1):
        _change_password(client, csrf, "not my password", NEW_PASSWORD)
    locked = _change_password(client, csrf, PASSWORD, NEW_PASSWORD)
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.text, "locked: even the right password is refused"
    assert "auth.locked" in _actions(site, "olu")
    assert _sign_in(site, "olu", PASSWORD).status_code == 401, "and signing in too"
    with session_scope(site.settings) as s:
        accounts.set_password(s, principal=ROOT, username="olu", password=PASSWORD)
    assert _sign_in(site, "olu", NEW_PASSWORD).status_code == 401, "never changed"


def test_a_new_password_that_breaks_the_rules_is_refused(site: Site) -> None:
    client, csrf = _signed_in(site, "lee")
    differ = _change_password(client, csrf, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert differ.status_code == 422
    assert "两次输入的新密码不一致" in differ.text
    short = _change_password(client, csrf, PASSWORD, "short")
    assert short.status_code == 422
    assert "密码至少需要 10 个字符" in short.text
    same = _change_password(client, csrf, PASSWORD, PASSWORD)
    assert same.status_code == 422
    assert "新密码与当前密码相同" in same.text
    forged = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert forged.status_code == 403, "no CSRF token, no change"
    assert _sign_in(site, "lee", PASSWORD).url.path == "/"
    with session_scope(site.settings) as s:
        assert accounts.get_user(s, "lee").failed_logins == 0, "no attempt was counted"


def _issue(client: TestClient, csrf: str, label: str, days: int) -> Response:
    return client.post(
        "/account/tokens", data={"csrf_token": csrf, "label": label, "valid_days": str(days)}
    )


@pytest.mark.parametrize("role", ROLES_WITH_TOKENS)
def test_every_role_with_tokens_issues_uses_and_revokes_its_own(site: Site, role: Role) -> None:
    username, _ = ROLE_USERS[role]
    client, csrf = _signed_in(site, username)
    issued = _issue(client, csrf, "nightly upload", 30)
    assert issued.status_code == 201
    assert issued.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token" class="secret">(trg_[^<]+)<', issued.text)
    assert token, "the token is shown on the result page"
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert site.client.get("/api/v1/me", headers=bearer).json()["username"] == username

    page = client.get("/account").text
    assert token.group(1) not in page, "shown once: the list has no secret"
    token_id = int(re.findall(r'<tr id="token-(\d+)">', page)[0])
    row = page[page.index(f'<tr id="token-{token_id}">') :]
    assert "nightly upload" in row[: row.index("</tr>")]
    revoked = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert revoked.url.path == "/account"
    assert "API 令牌已吊销" in revoked.text
    assert site.client.get("/api/v1/me", headers=bearer).status_code == 401
    actions = _actions(site, username)
    assert "tokens.issue" in actions
    assert "tokens.revoke" in actions


def test_a_tokens_lifetime_is_bounded(site: Site) -> None:
    client, csrf = _signed_in(site, "ann")
    too_long = _issue(client, csrf, "forever", accounts.MAX_TOKEN_DAYS + 1)
    assert too_long.status_code == 422
    assert "new-token" not in too_long.text
    with session_scope(site.settings) as s:
        tokens = accounts.list_tokens(s, principal=ROOT, username="ann")
        assert [t.label for t in tokens] == [""], "only the fixture's token"


def test_nobody_sees_or_revokes_another_users_token_on_the_page(site: Site) -> None:
    with session_scope(site.settings) as s:
        theirs = accounts.issue_token(s, principal=ROOT, username="olu", label="olu's upload")
    for username in ("ann", "ada"):  # an administrator, too, manages others on /admin/users
        client, csrf = _signed_in(site, username)
        page = client.get("/account").text
        assert f'id="token-{theirs.id}"' not in page
        assert "olu&#39;s upload" not in page
        refused = client.post(f"/account/tokens/{theirs.id}/revoke", data={"csrf_token": csrf})
        assert refused.status_code == 404
    api = site.client.delete(f"/api/v1/tokens/{theirs.id}", headers=site.as_role("analyst"))
    assert api.status_code == 404
    me = site.client.get("/api/v1/me", headers={"Authorization": f"Bearer {theirs.token}"})
    assert me.status_code == 200, "still in force"


def test_a_viewer_has_the_page_but_no_tokens_of_its_own(site: Site) -> None:
    client, csrf = _signed_in(site, "vic")
    page = client.get("/account")
    assert page.status_code == 200
    assert 'id="no-tokens"' in page.text
    assert "你的角色（只读用户）不能自行签发或管理 API 令牌" in page.text
    assert 'action="/account/tokens"' not in page.text
    assert _issue(client, csrf, "sneaky", 30).status_code == 403
    assert _change_password(client, csrf, PASSWORD, NEW_PASSWORD).url.path == "/account"


def test_the_page_in_english(site: Site) -> None:
    client, _ = _signed_in(site, "lee")
    page = client.get("/lang/en", params={"next": "/account"})
    assert page.url.path == "/account"
    for words in ("My account", "Change my password", "My API tokens", "Issue a token"):
        assert words in page.text
    assert "我的账户" not in page.text
    wrong = _change_password(client, csrf_of(page.text), "not my password", NEW_PASSWORD)
    assert "The current password is wrong." in wrong.text
    with session_scope(site.settings) as s:
        assert s.scalar(select(User.failed_logins).where(User.username == "lee")) == 1
