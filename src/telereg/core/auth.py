"""Authentication: argon2 passwords, hashed API tokens, login with lockout."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.db import utcnow
from telereg.core.errors import AccountLockedError, AuthenticationError, InputError
from telereg.core.models import ApiToken, User
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings

TOKEN_PREFIX = "trg_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD_CHARS = 10
_hasher = PasswordHasher()
# Verified against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
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
    """Check a username and password; count failures and lock the account after too many.

    The n-th lockout lasts ``login_lockout_seconds * 2**(n-1)``. Failures and
    lockouts are audited; the caller commits the session even on failure.
    """
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)
        raise AccountLockedError(
            f"too many failed logins; try again after {user.locked_until:%H:%M:%S} UTC"
        )
    if user is None or not user.active or not verify_password(user.password_hash, password):
        if user is not None and user.active:
            user.failed_logins += 1
            locked = user.failed_logins >= settings.login_max_failures
            if locked:
                user.lockouts += 1
                seconds = settings.login_lockout_seconds * 2 ** (user.lockouts - 1)
                user.locked_until = now + timedelta(seconds=seconds)
                user.failed_logins = 0
            audit.record(
                session,
                actor=username,
                action="auth.locked" if locked else "auth.login_failed",
                objects=[f"user:{username}"],
                client=client,
            )
        raise AuthenticationError("wrong username or password")
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session, actor=username, action="auth.login", objects=[f"user:{username}"], client=client
    )
    return user


def user_for_token(session: Session, token: str, *, now: datetime | None = None) -> User:
    """The active user holding ``token``; raises for unknown, revoked or expired tokens."""
    now = now or datetime.now(UTC)
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationError("malformed API token")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise AuthenticationError("unknown API token")
    if row.revoked_at is not None:
        raise AuthenticationError("this API token was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationError("this API token has expired")
    if not row.user.active:
        raise AuthenticationError("the token's user is disabled")
    # Throttled so that a busy client does not turn every read into a write.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return row.user
