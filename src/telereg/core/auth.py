"""Authentication: argon2 passwords, hashed API tokens, login limits, revocable web sessions."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.db import utcnow
from telereg.core.errors import (
    AccountLockedError,
    AuthenticationError,
    InputError,
    LoginThrottledError,
)
from telereg.core.i18n import N_
from telereg.core.models import ApiToken, LoginFailure, User
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings

TOKEN_PREFIX = "trg_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD_CHARS = 10
_hasher = PasswordHasher()
# Verified against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    """Raise :class:`InputError` unless ``password`` keeps the installation's rules."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(
            N_("a password needs at least {count} characters").format(count=MIN_PASSWORD_CHARS)
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def hash_token(token: str) -> str:
    """API tokens carry 256 random bits, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and its display prefix."""
    body = secrets.token_urlsafe(32)
    return TOKEN_PREFIX + body, TOKEN_PREFIX + body[:6]


def principal_of(user: User, *, via: str = "web") -> Principal:
    return Principal(
        name=user.username,
        role=Role(user.role),
        user_id=user.id,
        operator_code=user.operator.code if user.operator else None,
        agency_code=user.agency.code if user.agency else None,
        via=via,
    )


def login(
    session: Session,
    *,
    settings: Settings,
    username: str,
    password: str,
    client: str = "",
    now: datetime | None = None,
) -> User:
    """Check a username and password; count failures per account and per client address.

    The n-th lockout of an account lasts ``login_lockout_seconds * 2**(n-1)``, at
    most ``login_lockout_max_seconds``. A client address with
    ``login_client_max_failures`` failures within ``login_client_window_seconds``
    is refused, without a check, until its oldest failure leaves the window.
    Failures, lockouts, attempts on a locked account and throttled clients are audited;
    the caller commits the session even on failure.
    """
    now = now or utcnow()
    user = _attempt(
        session,
        settings=settings,
        username=username,
        password=password,
        client=client,
        now=now,
        failed="auth.login_failed",
    )
    user.last_login_at = now
    audit.record(
        session, actor=username, action="auth.login", objects=[f"user:{username}"], client=client
    )
    return user


def confirm_password(
    session: Session,
    *,
    settings: Settings,
    user: User,
    password: str,
    client: str = "",
    now: datetime | None = None,
) -> None:
    """Check a signed-in user's password again, before a change to its account.

    A wrong one counts as a failed sign-in does, towards the account's lockout and the
    client's limit (a stolen session must not become a way to guess the password), and
    is audited as ``auth.confirm_failed``; a locked account is refused. The caller
    commits the session even on failure.
    """
    _attempt(
        session,
        settings=settings,
        username=user.username,
        password=password,
        client=client,
        now=now or utcnow(),
        failed="auth.confirm_failed",
    )


def _attempt(
    session: Session,
    *,
    settings: Settings,
    username: str,
    password: str,
    client: str,
    now: datetime,
    failed: str,
) -> User:
    """The user, if the password is right; a failure is counted and audited as ``failed``,
    and a success clears the account's failures and lockouts."""
    network = client_network(client)
    attempt = _begin_attempt(session, settings=settings, client=network, now=now)
    try:
        user = _check_password(
            session,
            settings=settings,
            username=username,
            password=password,
            client=client,
            now=now,
            failed=failed,
        )
    except AuthenticationError:
        if attempt is not None:
            _audit_if_throttled(
                session, settings=settings, username=username, client=network, now=now
            )
        raise
    if attempt is not None:
        # A right password is no failure: its attempt stops counting.
        session.execute(delete(LoginFailure).where(LoginFailure.id == attempt))
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    return user


def _check_password(
    session: Session,
    *,
    settings: Settings,
    username: str,
    password: str,
    client: str,
    now: datetime,
    failed: str,
) -> User:
    """The user, if the password is right and the account active and not locked."""
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)
        # Audited too: a run of attempts on a locked account is what a guesser looks like.
        audit.record(
            session,
            actor=username,
            action="auth.refused_locked",
            objects=[f"user:{username}"],
            client=client,
        )
        raise AccountLockedError(
            f"too many failed logins; try again after {user.locked_until:%H:%M:%S} UTC"
        )
    active = user if user is not None and user.active else None
    # The hash is checked for a name that is no active user's too, so that the answer's
    # time does not tell which names are.
    right = verify_password(active.password_hash if active else None, password)
    if active is None or not right:
        if active is None:
            # Audited too (a guesser trying names), without counting against anyone.
            audit.record(
                session,
                actor=username[:100],
                action="auth.login_failed",
                objects=[f"user:{username[:100]}"],
                reason="unknown user" if user is None else "disabled user",
                client=client,
            )
        else:
            active.failed_logins += 1
            locked = active.failed_logins >= settings.login_max_failures
            if locked:
                active.lockouts += 1
                seconds = min(
                    settings.login_lockout_seconds * 2 ** (active.lockouts - 1),
                    settings.login_lockout_max_seconds,
                )
                active.locked_until = now + timedelta(seconds=seconds)
                active.failed_logins = 0
            audit.record(
                session,
                actor=username,
                action="auth.locked" if locked else failed,
                objects=[f"user:{username}"],
                client=client,
            )
        raise AuthenticationError("wrong username or password")
    return active


def client_network(client: str) -> str:
    """What failed logins are counted by: an IPv4 address, or an IPv6 address's /64 (one
    site's share: a host given a /64 has every address in it); "" when none is known, as
    counting all such clients together would let one of them lock everyone out."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _client_failures(session: Session, *, settings: Settings, client: str, now: datetime) -> int:
    since = now - timedelta(seconds=settings.login_client_window_seconds)
    count = select(func.count()).where(LoginFailure.client == client, LoginFailure.at > since)
    return session.scalar(count) or 0


def _begin_attempt(
    session: Session, *, settings: Settings, client: str, now: datetime
) -> int | None:
    """Count a sign-in attempt of ``client`` before its password is checked; its row's id.

    The attempt is recorded and committed at once, in a transaction of its own, so that
    attempts checked at the same moment in other workers see it: each one counts before
    any of them knows its outcome. It is refused, and its row removed, when it would pass
    the client's limit; None when the client is not known.
    """
    if not client:
        return None
    since = now - timedelta(seconds=settings.login_client_window_seconds)
    with Session(session.get_bind()) as own:
        with own.begin():  # committed before counting, so the others count it too
            own.execute(delete(LoginFailure).where(LoginFailure.at <= since))
            row = LoginFailure(client=client, at=now)
            own.add(row)
        with own.begin():
            if _client_failures(own, settings=settings, client=client, now=now) <= (
                settings.login_client_max_failures
            ):
                return row.id
            own.execute(delete(LoginFailure).where(LoginFailure.id == row.id))
    raise LoginThrottledError("too many failed logins from this address; try again later")


def _audit_if_throttled(
    session: Session, *, settings: Settings, username: str, client: str, now: datetime
) -> None:
    """Audit the failure that brings ``client`` to its limit (the refusals after it are not)."""
    failures = _client_failures(session, settings=settings, client=client, now=now)
    if failures == settings.login_client_max_failures:
        audit.record(
            session,
            actor=username,
            action="auth.throttled",
            objects=[f"client:{client}"],
            detail={"failures": failures, "window_seconds": settings.login_client_window_seconds},
            client=client,
        )


def end_sessions(user: User) -> None:
    """End every web session of ``user``: cookies signed in before stop working."""
    user.session_epoch += 1


def logout(session: Session, *, principal: Principal, client: str = "") -> None:
    """Sign the principal's user out of the web everywhere, not only in this browser."""
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        return
    end_sessions(user)
    audit.record(
        session,
        actor=user.username,
        action="auth.logout",
        objects=[f"user:{user.username}"],
        client=client,
    )


def user_for_token(session: Session, token: str, *, now: datetime | None = None) -> User:
    """The active user holding ``token``; raises for unknown, revoked or expired tokens."""
    now = now or datetime.now(UTC)
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationError(N_("malformed API token"))
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise AuthenticationError(N_("unknown API token"))
    if row.revoked_at is not None:
        raise AuthenticationError(N_("this API token was revoked"))
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationError(N_("this API token has expired"))
    if not row.user.active:
        raise AuthenticationError(N_("the token's user is disabled"))
    # Throttled so that a busy client does not turn every read into a write.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return row.user
