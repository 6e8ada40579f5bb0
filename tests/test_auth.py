from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from telereg.core import accounts, auth
from telereg.core.db import utcnow
from telereg.core.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    InputError,
    LoginThrottledError,
    NotFoundError,
    PermissionDeniedError,
)
from telereg.core.models import ApiToken, AuditEntry, User
from telereg.core.permissions import ROLE_PERMISSIONS, Permission, Role
from telereg.core.settings import Settings
from telereg.scenario.demo import seed_directory
from tests.conftest import PASSWORD, ROOT, principal_of_role


@pytest.fixture
def directory(session: Session) -> Session:
    seed_directory(session, principal=ROOT)
    session.flush()
    return session


def _user(session: Session, name: str = "ann", role: Role = Role.ANALYST, **kw: str) -> User:
    user, _ = accounts.create_user(
        session, principal=ROOT, username=name, role=role, password=PASSWORD, **kw
    )
    session.flush()
    return user


def test_passwords_are_argon2_hashed(directory: Session) -> None:
    user = _user(directory)
    assert user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert auth.verify_password(user.password_hash, PASSWORD)
    assert not auth.verify_password(user.password_hash, PASSWORD + "x")
    assert not auth.verify_password(None, PASSWORD)


def test_short_passwords_are_refused(directory: Session) -> None:
    with pytest.raises(InputError, match="at least"):
        accounts.create_user(
            directory, principal=ROOT, username="bob", role="viewer", password="short"
        )


def test_generated_password_is_returned_once(directory: Session, db_settings: Settings) -> None:
    user, generated = accounts.create_user(directory, principal=ROOT, username="gen", role="viewer")
    assert generated
    assert len(generated) >= 12
    assert auth.login(directory, settings=db_settings, username="gen", password=generated) is user


@pytest.mark.parametrize(
    ("role", "binding", "message"),
    [
        (Role.OPERATOR, {}, "bound to an operator"),
        (Role.LIAISON, {}, "bound to a partner agency"),
        (Role.ANALYST, {"operator": "CMCC"}, "only operator users"),
        (Role.VIEWER, {"agency": "HEALTH"}, "only liaison users"),
        (Role.OPERATOR, {"operator": "NOPE"}, "no operator 'NOPE'"),
        (Role.LIAISON, {"agency": "NOPE"}, "no partner agency 'NOPE'"),
    ],
)
def test_role_bindings_are_checked(
    directory: Session, role: Role, binding: dict[str, str], message: str
) -> None:
    with pytest.raises((InputError, NotFoundError), match=message):
        accounts.create_user(
            directory, principal=ROOT, username="bob", role=role, password=PASSWORD, **binding
        )


def test_unknown_role_and_bad_username(directory: Session) -> None:
    with pytest.raises(InputError, match="unknown role"):
        accounts.create_user(directory, principal=ROOT, username="bob", role="boss")
    with pytest.raises(InputError, match="username"):
        accounts.create_user(directory, principal=ROOT, username="Bob Smith", role="viewer")


def test_duplicate_username(directory: Session) -> None:
    _user(directory)
    with pytest.raises(ConflictError):
        _user(directory)


def test_only_admins_manage_users(directory: Session) -> None:
    for role in Role:
        if Permission.USERS_MANAGE in ROLE_PERMISSIONS[role]:
            continue
        with pytest.raises(PermissionDeniedError):
            accounts.create_user(
                directory, principal=principal_of_role(role), username="x1", role="viewer"
            )


def test_login_lockout_with_backoff(directory: Session, db_settings: Settings) -> None:
    _user(directory)
    now = utcnow()
    limit = db_settings.login_max_failures
    for _ in range(limit):
        with pytest.raises(AuthenticationError):
            auth.login(directory, settings=db_settings, username="ann", password="wrong!", now=now)
    # Locked now: even the right password is refused until the lockout ends.
    with pytest.raises(AccountLockedError):
        auth.login(directory, settings=db_settings, username="ann", password=PASSWORD, now=now)
    first = timedelta(seconds=db_settings.login_lockout_seconds)
    later = now + first + timedelta(seconds=1)
    for _ in range(limit):
        with pytest.raises(AuthenticationError):
            auth.login(directory, settings=db_settings, username="ann", password="wrong", now=later)
    user = directory.scalar(select(User).where(User.username == "ann"))
    assert user is not None
    assert user.locked_until is not None
    assert user.locked_until - later == 2 * first, "the second lockout lasts twice as long"
    after = user.locked_until + timedelta(seconds=1)
    assert auth.login(directory, settings=db_settings, username="ann", password=PASSWORD, now=after)
    assert user.lockouts == 0
    assert user.failed_logins == 0
    actions = directory.scalars(select(AuditEntry.action)).all()
    assert actions.count("auth.locked") == 2
    assert actions.count("auth.refused_locked") == 1, "the attempt while locked is audited"
    assert "auth.login" in actions


def test_unknown_and_disabled_users_cannot_log_in(
    directory: Session, db_settings: Settings
) -> None:
    _user(directory)
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        auth.login(directory, settings=db_settings, username="nobody", password=PASSWORD)
    accounts.disable_user(directory, principal=ROOT, username="ann", reason="left the office")
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        auth.login(directory, settings=db_settings, username="ann", password=PASSWORD)


def test_tokens_are_stored_hashed_and_checked(directory: Session) -> None:
    _user(directory)
    issued = accounts.issue_token(directory, principal=ROOT, username="ann", label="ci")
    row = directory.get(ApiToken, issued.id)
    assert row is not None
    assert issued.token not in (row.token_hash, row.prefix)
    assert row.token_hash == auth.hash_token(issued.token)
    assert auth.user_for_token(directory, issued.token).username == "ann"
    with pytest.raises(AuthenticationError, match="unknown"):
        auth.user_for_token(directory, issued.token + "x")
    with pytest.raises(AuthenticationError, match="malformed"):
        auth.user_for_token(directory, "not-a-token")
    accounts.revoke_token(directory, principal=ROOT, token_id=issued.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        auth.user_for_token(directory, issued.token)


def test_expired_tokens_are_refused(directory: Session) -> None:
    _user(directory)
    issued = accounts.issue_token(directory, principal=ROOT, username="ann", valid_days=1)
    later = utcnow() + timedelta(days=2)
    with pytest.raises(AuthenticationError, match="expired"):
        auth.user_for_token(directory, issued.token, now=later)


def test_disabling_a_user_revokes_its_tokens(directory: Session) -> None:
    _user(directory)
    issued = accounts.issue_token(directory, principal=ROOT, username="ann")
    accounts.disable_user(directory, principal=ROOT, username="ann")
    with pytest.raises(AuthenticationError):
        auth.user_for_token(directory, issued.token)


def test_users_manage_only_their_own_tokens(directory: Session) -> None:
    ann = _user(directory)
    _user(directory, "olu", Role.OPERATOR, operator="CMCC")
    me = auth.principal_of(ann)
    accounts.issue_token(directory, principal=me, username="ann")
    with pytest.raises(PermissionDeniedError):
        accounts.issue_token(directory, principal=me, username="olu")
    other = accounts.issue_token(directory, principal=ROOT, username="olu")
    # Another's token is as absent as no token, and another name as refused as no user.
    with pytest.raises(NotFoundError, match=f"no API token with id {other.id}"):
        accounts.revoke_token(directory, principal=me, token_id=other.id)
    with pytest.raises(NotFoundError, match="no API token with id 999"):
        accounts.revoke_token(directory, principal=me, token_id=999)
    for name in ("olu", "nobody-here"):
        with pytest.raises(PermissionDeniedError):
            accounts.list_tokens(directory, principal=me, username=name)


def test_a_password_reset_revokes_the_users_tokens_unless_kept(directory: Session) -> None:
    _user(directory)
    first = accounts.issue_token(directory, principal=ROOT, username="ann")
    accounts.set_password(directory, principal=ROOT, username="ann", keep_tokens=True)
    assert auth.user_for_token(directory, first.token) is not None, "kept: a forgotten password"
    accounts.set_password(directory, principal=ROOT, username="ann")
    with pytest.raises(AuthenticationError, match="revoked"):  # a stolen account
        auth.user_for_token(directory, first.token)
    entry = directory.scalars(
        select(AuditEntry).where(AuditEntry.action == "users.set_password")
    ).all()[-1]
    assert f"token:{first.id}" in entry.objects


def test_a_failed_sign_in_is_audited_and_takes_as_long_whoever_is_named(
    directory: Session, db_settings: Settings
) -> None:

    _user(directory)
    took = {}
    for name in ("ann", "nobody-here"):
        start = time.perf_counter()
        with pytest.raises(AuthenticationError):
            auth.login(directory, settings=db_settings, username=name, password="wrong!")
        took[name] = time.perf_counter() - start
    assert took["nobody-here"] > took["ann"] / 3, took  # both check a password hash
    entries = directory.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_failed"))
    assert {(e.actor, e.reason) for e in entries} == {("ann", ""), ("nobody-here", "unknown user")}


def test_every_change_is_audited(directory: Session) -> None:
    _user(directory)
    issued = accounts.issue_token(directory, principal=ROOT, username="ann")
    accounts.revoke_token(directory, principal=ROOT, token_id=issued.id)
    accounts.set_password(directory, principal=ROOT, username="ann")
    accounts.disable_user(directory, principal=ROOT, username="ann", reason="moved on")
    entries = directory.scalars(select(AuditEntry).where(AuditEntry.objects.is_not(None))).all()
    actions = [e.action for e in entries]
    for action in (
        "users.add",
        "tokens.issue",
        "tokens.revoke",
        "users.set_password",
        "users.disable",
    ):
        assert action in actions
    disable = next(e for e in entries if e.action == "users.disable")
    assert disable.reason == "moved on"
    assert disable.actor == ROOT.name
    assert disable.objects == ["user:ann"]


def _lock(session: Session, settings: Settings, name: str, at: datetime) -> User:
    """Fail ``name``'s password until the account locks, at ``at``; return the user."""
    for _ in range(settings.login_max_failures):
        with pytest.raises(AuthenticationError):
            auth.login(session, settings=settings, username=name, password="wrong", now=at)
    user = session.scalar(select(User).where(User.username == name))
    assert user is not None
    assert user.locked_until is not None
    return user


def test_lockouts_stop_doubling_at_the_longest_lockout(
    directory: Session, db_settings: Settings
) -> None:
    settings = db_settings.model_copy(update={"login_lockout_max_seconds": 1000})
    _user(directory)
    at = utcnow()
    lengths = []
    for _ in range(4):
        user = _lock(directory, settings, "ann", at)
        assert user.locked_until is not None
        lengths.append((user.locked_until - at).total_seconds())
        at = user.locked_until + timedelta(seconds=1)
    assert lengths == [300, 600, 1000, 1000]


def test_a_long_history_of_lockouts_still_locks_for_the_longest_lockout(
    directory: Session, db_settings: Settings
) -> None:
    # Uncapped, the 200th lockout would last 300 * 2**199 s: more than timedelta can hold.
    user = _user(directory)
    user.lockouts = 199
    at = utcnow()
    _lock(directory, db_settings, "ann", at)
    assert user.locked_until == at + timedelta(seconds=db_settings.login_lockout_max_seconds)


def _client_limited(
    db_settings: Settings, factory: sessionmaker[Session], limit: int, *users: str
) -> Settings:
    """Settings with a limit of failed logins per client, and ``users`` (the first an analyst,
    the others viewers)."""
    with factory.begin() as s:
        seed_directory(s, principal=ROOT)
        for i, name in enumerate(users):
            _user(s, name, Role.ANALYST if i == 0 else Role.VIEWER)
    return db_settings.model_copy(update={"login_client_max_failures": limit})


def _worker_login(
    factory: sessionmaker[Session],
    settings: Settings,
    username: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> None:
    """A sign-in in a session of its own, as each worker process of a server has its own;
    committed even when refused, as the web keeps failures."""
    with factory() as s:
        try:
            auth.login(
                s, settings=settings, username=username, password=password, client=client, now=now
            )
        finally:
            s.commit()


def test_failed_logins_are_limited_per_client_across_processes(
    db_settings: Settings, db_session_factory: sessionmaker[Session]
) -> None:
    settings = _client_limited(db_settings, db_session_factory, 3, "ann", "bob")
    at = utcnow()

    def attempt(username: str, password: str, client: str, when: datetime = at) -> None:
        _worker_login(db_session_factory, settings, username, password, client, when)

    for username in ("ann", "bob", "nobody"):  # one client, several usernames
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            attempt(username, "guess-123456", "10.0.0.9")
    with pytest.raises(LoginThrottledError):
        attempt("ann", PASSWORD, "10.0.0.9")  # even the right password
    attempt("ann", PASSWORD, "10.0.0.7")  # another client is not held back
    window = timedelta(seconds=settings.login_client_window_seconds)
    attempt("bob", PASSWORD, "10.0.0.9", at + window + timedelta(seconds=1))
    with db_session_factory() as s:
        throttled = s.scalars(select(AuditEntry).where(AuditEntry.action == "auth.throttled")).all()
    assert [(e.objects, e.client) for e in throttled] == [(["client:10.0.0.9"], "10.0.0.9")]
    assert throttled[0].detail == {"failures": 3, "window_seconds": 600}


def test_failed_logins_are_counted_by_network_and_not_for_unknown_clients(
    db_settings: Settings, db_session_factory: sessionmaker[Session]
) -> None:
    settings = _client_limited(db_settings, db_session_factory, 2, "ann")

    def attempt(password: str, client: str) -> None:
        _worker_login(db_session_factory, settings, "ann", password, client)

    # A host given an IPv6 /64 has every address in it: changing address changes nothing.
    for client in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
        with pytest.raises(AuthenticationError):
            attempt("guess-123456", client)
    with pytest.raises(LoginThrottledError):
        attempt(PASSWORD, "2001:db8:1:2:ffff::1")
    attempt(PASSWORD, "2001:db8:1:3::1")  # the next /64 is another site
    # With no address known, clients are not counted together (one would lock out all).
    for _ in range(3):
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            attempt("guess-123456", "")
    assert auth.client_network("::ffff:10.0.0.9") == "10.0.0.9"
    assert auth.client_network("2001:db8::1") == "2001:db8::/64"
    assert auth.client_network("") == ""


def test_attempts_at_the_same_moment_cannot_pass_the_client_limit(
    db_settings: Settings, db_session_factory: sessionmaker[Session], monkeypatch
) -> None:
    # Thirty guesses from one address at once, each in its own session as in its own worker:
    # every attempt counts before any password is checked, so at most the limit are checked.
    settings = _client_limited(db_settings, db_session_factory, 5, "ann")
    checked = []
    verify = auth.verify_password

    def slow_verify(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        time.sleep(0.2)  # the attempts overlap while their passwords are checked
        return verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow_verify)

    def attempt(k: int) -> str:
        try:
            _worker_login(db_session_factory, settings, "ann", f"guess-{k:06d}", "10.0.0.5")
        except LoginThrottledError:
            return "throttled"
        except AuthenticationError:
            return "wrong"
        return "in"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(30)))
    assert len(checked) <= settings.login_client_max_failures
    assert outcomes.count("wrong") == len(checked)
    assert outcomes.count("throttled") == 30 - len(checked)


def test_disabling_and_new_passwords_end_web_sessions(directory: Session) -> None:
    user = _user(directory)
    epochs = [user.session_epoch]
    accounts.set_password(directory, principal=ROOT, username="ann")
    epochs.append(user.session_epoch)
    accounts.disable_user(directory, principal=ROOT, username="ann")
    epochs.append(user.session_epoch)
    accounts.enable_user(directory, principal=ROOT, username="ann")
    epochs.append(user.session_epoch)
    assert epochs == [0, 1, 2, 2], "enabling again does not revive old sessions"
