"""FastAPI dependencies: settings, DB session, the acting principal, permissions.

Every route declares exactly one of :func:`require` (a permission),
:data:`Authenticated` (any signed-in user) or :data:`Public`; a test walks the
routes and fails on any that declares none.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from telereg import registry
from telereg.core import accounts
from telereg.core.auth import principal_of, user_for_token
from telereg.core.db import commit_kept
from telereg.core.errors import AuthenticationError, CsrfError
from telereg.core.i18n import N_
from telereg.core.models import User
from telereg.core.periods import MONTH_FIELD
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


# Dependencies are coroutines: FastAPI runs plain functions in a thread pool, and
# six thread hops per request cost more than the sub-millisecond state-DB queries
# they would keep off the event loop (measured: benchmarks/RESULTS.md).


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A state-DB session committed when the request succeeds, rolled back otherwise (but
    for the records of refusals, which are kept: see :func:`~telereg.core.audit.record_refusal`)."""
    session: Session = request.app.state.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        commit_kept(session)
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
#: (committed before the response is sent, so that a change the database refuses at
#: commit is an error answer, not a success whose change is lost)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
#: A record's number in an address (a case, a submission, a job, a token): one the state
#: database can hold, so that a longer one names nothing (404 on a page, 422 in the API)
#: instead of failing in the database.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Where a page of a list starts: a number the databases can take (SQLite and DuckDB
#: refuse a longer one), so that a longer one is refused as input (422), not a fault.
Offset = Annotated[int, Query(ge=0, le=2**63 - 1)]


#: A month in a query, ``YYYY-MM`` (``2021-13`` is refused: 422).
OptionalPeriod = Annotated[str | None, Query(pattern=MONTH_FIELD)]


async def _known_operator(
    session: SessionDep,
    operator: Annotated[str | None, Query(max_length=32, description="An operator's code")] = None,
) -> str | None:
    """A list's operator filter: an operator that does not exist is 404, not an empty list."""
    if operator is not None:
        accounts.get_operator(session, operator)
    return operator


async def _known_dataset(
    dataset: Annotated[str | None, Query(max_length=64, description="A dataset's name")] = None,
) -> str | None:
    """A list's dataset filter: a dataset that does not exist is 404, not an empty list."""
    if dataset is not None:
        registry.contract(dataset)
    return dataset


KnownOperator = Annotated[str | None, Depends(_known_operator)]
KnownDataset = Annotated[str | None, Depends(_known_dataset)]


def _as_utc(moment: datetime) -> datetime:
    """A time given without its zone is read as UTC, the zone the platform stores."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: A moment in a query (``2026-12-01``, ``2026-12-01T08:00:00+08:00``): one without a zone is UTC.
Moment = Annotated[datetime, AfterValidator(_as_utc)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def session_user(request: Request, session: Session) -> User | None:
    """The user of the browser session cookie, if it is signed in, active and not signed out.

    A cookie is signed, not stored, so it ends by its epoch: one that was signed in
    before the user's sessions were ended (logout, disabling, a new password) no
    longer matches the user's ``session_epoch``.
    """
    user_id = request.session.get("uid")
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or request.session.get("epoch") != user.session_epoch:
        request.session.clear()
        return None
    return user


def start_session(request: Request, user: User) -> None:
    """Sign ``user`` in on this browser: a fresh session (no fixation) with a CSRF token."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["epoch"] = user.session_epoch
    request.session["csrf"] = secrets.token_urlsafe(32)


def check_csrf_header(request: Request) -> None:
    expected = request.session.get("csrf", "")
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected, given):
        raise CsrfError("missing or wrong CSRF token")


async def current_principal(request: Request, session: SessionDep) -> Principal:
    """Who is calling: a bearer token, or the browser session (with CSRF on writes)."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(N_("use 'Authorization: Bearer <token>'"))
        return principal_of(user_for_token(session, token.strip()), via="api")
    user = session_user(request, session)
    if user is None:
        raise AuthenticationError(N_("sign in or send an API token"))
    if request.method not in SAFE_METHODS:
        check_csrf_header(request)
    return principal_of(user)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Any:
    """A dependency (``Annotated[Principal, require(P)]``) admitting roles that hold ``P``."""

    async def dependency(principal: PrincipalDep) -> Principal:
        principal.require(permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)


async def _authenticated(principal: PrincipalDep) -> Principal:
    return principal


async def _public() -> None:
    return None


_authenticated.permission = "authenticated"  # type: ignore[attr-defined]
_public.permission = "public"  # type: ignore[attr-defined]

Authenticated = Annotated[Principal, Depends(_authenticated)]
Public = Depends(_public)
