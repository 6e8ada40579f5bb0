"""Page dependencies: the signed-in user, permissions and CSRF for forms."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from telereg.api.deps import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SessionDep, session_user
from telereg.core.auth import principal_of
from telereg.core.errors import (
    ApprovalRequiredError,
    AuthenticationError,
    ConflictError,
    CsrfError,
    InputError,
    LimitReachedError,
    NotFoundError,
    PermissionDeniedError,
    TeleregError,
)
from telereg.core.i18n import N_, localise
from telereg.core.i18n import gettext as _
from telereg.core.models import User
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.web.terms import FORM_ERRORS, REFUSED_BECAUSE


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
        raise CsrfError(N_("the form expired or was not sent from this site; reload and try again"))


Csrf = Depends(verify_csrf)


async def page_principal(request: Request, session: SessionDep) -> Principal:
    user = session_user(request, session)
    if user is None:
        raise LoginRequiredError(N_("please sign in"))
    return _remember(request, user)


def _remember(request: Request, user: User) -> Principal:
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


def identify(request: Request) -> None:
    """Who is signed in, for a page no route served (an unknown address, a method the
    address does not take), so that it shows the user's menu and modules like any other."""
    if getattr(request.state, "user", None) is not None or "session" not in request.scope:
        return
    session: Session = request.app.state.sessions()
    try:
        user = session_user(request, session)
        if user is not None:
            _remember(request, user)
    finally:
        session.close()


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


#: Error classes whose code names a refused step; any other error is sent back as "error".
_FORM_ERROR_CLASSES = (
    InputError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    LimitReachedError,
    ApprovalRequiredError,
)


def form_error_code(err: TeleregError) -> str:
    """The code, a key of :data:`~telereg.web.terms.FORM_ERRORS`, to send a refusal back with."""
    return next((c.code for c in _FORM_ERROR_CLASSES if isinstance(err, c)), "error")


def refused(request: Request, err: TeleregError, *, back: str) -> Response:
    """Back to ``back`` with the refusal's code in the address and its message in the session.

    The address carries a code only, so a link cannot make a page say what it likes; the
    message, which the server wrote, is shown once by :data:`FormError`.
    """
    code = form_error_code(err)
    request.session["refusal"] = {"code": code, "message": err.message[:500], "where": err.where}
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}error={code}", status_code=303)


def form_step(
    request: Request, session: Session, step: Callable[[], object], *, back: str, done: str
) -> Response:
    """Run a form's step in a savepoint; go to ``done``, or back to ``back`` refused.

    A refused step (a rule, a permission, a missing note) changes nothing, and the page
    the form came from says why (see :func:`refused`).
    """
    try:
        with session.begin_nested():
            step()
    except TeleregError as err:
        return refused(request, err, back=back)
    return RedirectResponse(done, status_code=303)


async def form_error(request: Request, error: str = "") -> str:
    """The page's refusal: the translated message of its ``?error=`` code, and the reason
    the server gave (once); nothing for a code it does not know."""
    if error not in FORM_ERRORS:
        return ""
    refusal = request.session.pop("refusal", None)
    reason = localise(str(refusal.get("message", ""))) if isinstance(refusal, dict) else ""
    if reason and isinstance(refusal, dict) and refusal.get("where"):
        reason = f"{refusal['where']}: {reason}"
    same = isinstance(refusal, dict) and refusal.get("code") == error
    if same and reason and error in ("invalid-input", "approval-required"):
        return _(REFUSED_BECAUSE).format(reason=reason)
    return f"{_(FORM_ERRORS[error])} {reason}" if same and reason else _(FORM_ERRORS[error])


#: A page parameter: the message of the error code :func:`form_step` sent back with.
FormError = Annotated[str, Depends(form_error)]
