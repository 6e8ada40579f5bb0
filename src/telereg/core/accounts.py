"""Accounts and the directory: users, their tokens, operators and partner agencies.

Service functions take the acting :class:`Principal`, check its permission,
change state and write the audit entry in the same session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.auth import (
    check_password_rules,
    confirm_password,
    end_sessions,
    generate_password,
    hash_password,
    hash_token,
    new_token,
)
from telereg.core.db import utcnow
from telereg.core.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from telereg.core.i18n import N_
from telereg.core.models import Agency, ApiToken, Operator, User
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
#: An operator's or agency's code: 2–32 letters, digits, ``_`` or ``-``, a letter first.
CODE = r"[A-Za-z][A-Za-z0-9_-]{1,31}"
_CODE = re.compile(rf"^{CODE}$")
#: The kinds of partner agency: the police (who take fraud cases), health commissions, city
#: governments, others.
AGENCY_KINDS = ("police", "health", "government", "other")


@dataclass(frozen=True)
class IssuedToken:
    id: int
    username: str
    token: str
    prefix: str


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(N_("no user named {name}").format(name=repr(username)))
    return user


def get_operator(session: Session, code: str) -> Operator:
    operator = session.scalar(select(Operator).where(Operator.code == code))
    if operator is None:
        known = ", ".join(session.scalars(select(Operator.code).order_by(Operator.code))) or "none"
        raise NotFoundError(
            N_("no operator {code} (known: {known})").format(code=repr(code), known=known)
        )
    return operator


def get_agency(session: Session, code: str) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        known = ", ".join(session.scalars(select(Agency.code).order_by(Agency.code))) or "none"
        raise NotFoundError(
            N_("no partner agency {code} (known: {known})").format(code=repr(code), known=known)
        )
    return agency


def create_user(
    session: Session,
    *,
    principal: Principal,
    username: str,
    role: Role | str,
    password: str | None = None,
    operator: str | None = None,
    agency: str | None = None,
    display_name: str = "",
) -> tuple[User, str | None]:
    """Create a user; returns it and the generated password when none was given."""
    principal.require(Permission.USERS_MANAGE)
    try:
        role = Role(role)
    except ValueError as err:
        choices = ", ".join(r.value for r in Role)
        raise InputError(
            N_("unknown role {role} (choose one of: {choices})").format(
                role=repr(role), choices=choices
            )
        ) from err
    if not _USERNAME.match(username):
        raise InputError(
            N_(
                "a username is 2-64 characters: lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter"
            )
        )
    if role is Role.OPERATOR and not operator:
        raise InputError(N_("an operator user must be bound to an operator (--operator)"))
    if role is Role.LIAISON and not agency:
        raise InputError(N_("a liaison user must be bound to a partner agency (--agency)"))
    if operator and role is not Role.OPERATOR:
        raise InputError(N_("only operator users are bound to an operator"))
    if agency and role is not Role.LIAISON:
        raise InputError(N_("only liaison users are bound to a partner agency"))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(N_("a user named {name} already exists").format(name=repr(username)))
    generated = None if password else generate_password()
    user = User(
        username=username,
        display_name=display_name,
        role=role.value,
        operator=get_operator(session, operator) if operator else None,
        agency=get_agency(session, agency) if agency else None,
        password_hash=hash_password(password or generated or ""),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="users.add",
        objects=[f"user:{username}"],
        detail={"role": role.value, "operator": operator, "agency": agency},
    )
    return user, generated


def list_users(session: Session, *, principal: Principal) -> list[User]:
    principal.require(Permission.USERS_READ)
    return list(session.scalars(select(User).order_by(User.username)))


def disable_user(
    session: Session, *, principal: Principal, username: str, reason: str = ""
) -> User:
    """Stop a user from signing in; revoke its API tokens and end its web sessions."""
    principal.require(Permission.USERS_MANAGE)
    user = get_user(session, username)
    if principal.user_id is not None and user.id == principal.user_id:
        raise InputError(N_("you cannot disable your own account"))
    user.active = False
    end_sessions(user)  # enabling the user again must not revive its old cookies
    now = utcnow()
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
    audit.record(
        session,
        actor=principal.name,
        action="users.disable",
        objects=[f"user:{username}"],
        reason=reason,
    )
    return user


def enable_user(session: Session, *, principal: Principal, username: str, reason: str = "") -> User:
    principal.require(Permission.USERS_MANAGE)
    user = get_user(session, username)
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    audit.record(
        session,
        actor=principal.name,
        action="users.enable",
        objects=[f"user:{username}"],
        reason=reason,
    )
    return user


def set_password(
    session: Session,
    *,
    principal: Principal,
    username: str,
    password: str | None = None,
    keep_tokens: bool = False,
) -> str | None:
    """Set (or generate and return) a user's password; clears any lockout, ends web sessions
    and, unless ``keep_tokens``, revokes the user's API tokens: a password is reset when the
    account may be in other hands, and a token made with it would outlive the reset."""
    principal.require(Permission.USERS_MANAGE)
    user = get_user(session, username)
    generated = None if password else generate_password()
    user.password_hash = hash_password(password or generated or "")
    end_sessions(user)
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    revoked = []
    if not keep_tokens:
        now = utcnow()
        for token in session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ):
            token.revoked_at = now
            revoked.append(f"token:{token.id}")
    audit.record(
        session,
        actor=principal.name,
        action="users.set_password",
        objects=[f"user:{username}", *revoked],
        detail={"tokens_revoked": len(revoked)},
    )
    return generated


def change_own_password(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    current_password: str,
    new_password: str,
    client: str = "",
) -> User:
    """Change the signed-in user's own password, given its current one (any role may).

    The new password keeps the rules :func:`set_password` keeps. A wrong current password
    counts towards lockout (see :func:`~telereg.core.auth.confirm_password`). The user's
    web sessions end, the caller signs the current one in again; its API tokens stay.
    """
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None or user.username != principal.name:
        # (the CLI is no user: it sets passwords with set_password)
        raise PermissionDeniedError(N_("only a signed-in user changes its own password"))
    check_password_rules(new_password)  # before the check, so a typo costs no attempt
    confirm_password(
        session, settings=settings, user=user, password=current_password, client=client
    )
    if new_password == current_password:
        raise InputError(N_("the new password is the current one"))
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    audit.record(
        session,
        actor=principal.name,
        action="users.change_password",
        objects=[f"user:{user.username}"],
        client=client,
    )
    return user


def _require_token_rights(principal: Principal, username: str) -> None:
    """Checked before the user is looked up: whether another name is a user's is not
    told to who may manage only its own tokens."""
    if principal.can(Permission.USERS_MANAGE):
        return
    principal.require(Permission.TOKENS_OWN)
    if principal.name != username:
        raise PermissionDeniedError(N_("you can only manage your own API tokens"))


#: The longest an API token may be valid: ten years (an integration's service account).
MAX_TOKEN_DAYS = 3650


def issue_token(
    session: Session,
    *,
    principal: Principal,
    username: str,
    label: str = "",
    valid_days: int | None = None,
) -> IssuedToken:
    """Create an API token; its clear form is returned once and never stored."""
    _require_token_rights(principal, username)
    if valid_days is not None and not 1 <= valid_days <= MAX_TOKEN_DAYS:
        raise InputError(N_("a token is valid for 1 to {most} days").format(most=MAX_TOKEN_DAYS))
    user = get_user(session, username)
    if not user.active:
        raise InputError(N_("user {name} is disabled").format(name=repr(username)))
    clear, prefix = new_token()
    row = ApiToken(
        user=user,
        label=label,
        token_hash=hash_token(clear),
        prefix=prefix,
        expires_at=utcnow() + timedelta(days=valid_days) if valid_days else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="tokens.issue",
        objects=[f"user:{username}", f"token:{row.id}"],
        detail={"label": label, "prefix": prefix},
    )
    return IssuedToken(id=row.id, username=username, token=clear, prefix=prefix)


def list_tokens(session: Session, *, principal: Principal, username: str) -> list[ApiToken]:
    _require_token_rights(principal, username)
    user = get_user(session, username)
    mine = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    return list(session.scalars(mine))


def revoke_token(
    session: Session, *, principal: Principal, token_id: int, own: bool = False
) -> ApiToken:
    """Revoke a token of the principal's, or any user's for who manages users; with
    ``own``, only one of the principal's own, whoever it is (the account page's)."""
    row = session.get(ApiToken, token_id)
    mine = row is not None and row.user.username == principal.name
    if row is None or not (mine or (principal.can(Permission.USERS_MANAGE) and not own)):
        # (another's token is not told apart from none)
        principal.require(Permission.TOKENS_OWN)
        raise NotFoundError(N_("no API token with id {id}").format(id=token_id))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor=principal.name,
            action="tokens.revoke",
            objects=[f"user:{row.user.username}", f"token:{row.id}"],
        )
    return row


def add_operator(
    session: Session, *, principal: Principal, code: str, name: str, name_en: str = ""
) -> Operator:
    principal.require(Permission.REFERENCE_MANAGE)
    if not _CODE.match(code):
        raise InputError(
            N_(
                "operator code {code} must be 2-32 letters, digits, '_' or '-', "
                "starting with a letter"
            ).format(code=repr(code))
        )
    # (CMCC and cmcc would be two operators to a file's reader, and one to a person)
    same = select(Operator.code).where(func.lower(Operator.code) == code.lower())
    if (taken := session.scalar(same)) is not None:
        raise ConflictError(N_("operator {code} already exists").format(code=repr(taken)))
    operator = Operator(code=code, name=name, name_en=name_en)
    session.add(operator)
    audit.record(
        session, actor=principal.name, action="operators.add", objects=[f"operator:{code}"]
    )
    return operator


def add_agency(
    session: Session, *, principal: Principal, code: str, name: str, kind: str, name_en: str = ""
) -> Agency:
    principal.require(Permission.REFERENCE_MANAGE)
    if not _CODE.match(code):
        raise InputError(
            N_(
                "agency code {code} must be 2-32 letters, digits, '_' or '-', "
                "starting with a letter"
            ).format(code=repr(code))
        )
    if kind not in AGENCY_KINDS:
        raise InputError(
            N_("agency kind {kind} is not one of: {kinds}").format(
                kind=repr(kind), kinds=", ".join(AGENCY_KINDS)
            )
        )
    same = select(Agency.code).where(func.lower(Agency.code) == code.lower())
    if (taken := session.scalar(same)) is not None:
        raise ConflictError(N_("partner agency {code} already exists").format(code=repr(taken)))
    agency = Agency(code=code, name=name, name_en=name_en, kind=kind)
    session.add(agency)
    audit.record(session, actor=principal.name, action="agencies.add", objects=[f"agency:{code}"])
    return agency


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.code)))


def list_agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).order_by(Agency.code)))
