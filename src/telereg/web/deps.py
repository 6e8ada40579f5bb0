"""Page dependencies: the signed-in user, permissions and CSRF for forms."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from telereg.api.deps import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SessionDep, session_user
from telereg.core.auth import principal_of
from telereg.core.errors import AuthenticationError, CsrfError, TeleregError
from telereg.core.permissions import Permission
from telereg.core.principal import Principal


class LoginRequiredError(AuthenticationError):
    """Raised by pages for anonymous visitors; the web error handler redirects to login."""


def ensure_csrf_token(request: Request) -> str:
    token: str | None = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Check the form field or header against the session's token on unsafe methods."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf", "")
    given = request.headers.get(CSRF_HEADER, "")
    if not given:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        given = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(expected, given):
        raise CsrfError("the form expired or was not sent from this site; reload and try again")


Csrf = Depends(verify_csrf)


async def page_principal(request: Request, session: SessionDep) -> Principal:
    user = session_user(request, session)
    if user is None:
        raise LoginRequiredError("please sign in")
    principal = principal_of(user)
    # A plain snapshot: error pages may render after the DB session has closed.
    request.state.user = {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "operator": principal.operator_code,
        "agency": principal.agency_code,
    }
    return principal


def require_page(permission: Permission) -> Any:
    """Like :func:`telereg.api.deps.require`, for pages: anonymous visitors go to the login page."""

    async def dependency(principal: Annotated[Principal, Depends(page_principal)]) -> Principal:
        principal.require(permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)


async def _signed_in(principal: Annotated[Principal, Depends(page_principal)]) -> Principal:
    return principal


_signed_in.permission = "authenticated"  # type: ignore[attr-defined]
SignedIn = Annotated[Principal, Depends(_signed_in)]


def form_step(session: Session, step: Callable[[], object], *, back: str, done: str) -> Response:
    """Run a form's step in a savepoint; go to ``done``, or back to ``back`` with the error.

    A refused step (a rule, a permission, a missing note) changes nothing and is shown
    on the page the form came from.
    """
    try:
        with session.begin_nested():
            step()
    except TeleregError as err:
        return RedirectResponse(f"{back}?error={quote(str(err))}", status_code=303)
    return RedirectResponse(done, status_code=303)
