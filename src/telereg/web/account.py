"""My account: who the signed-in user is, a new password, and the user's own API tokens.

Every role has the page; the tokens' part only a role that holds its own tokens
(``tokens.own``), as in the API. Administrators manage other users on /admin/users.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from telereg.api.deps import RowId, SessionDep, SettingsDep, client_of, start_session
from telereg.api.problems import status_for
from telereg.core import accounts
from telereg.core.accounts import MAX_TOKEN_DAYS, IssuedToken
from telereg.core.auth import MIN_PASSWORD_CHARS
from telereg.core.db import utcnow
from telereg.core.errors import (
    AccountLockedError,
    AuthenticationError,
    InputError,
    LoginThrottledError,
    TeleregError,
)
from telereg.core.i18n import N_, localise
from telereg.core.i18n import gettext as _
from telereg.core.models import User
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.web.deps import Csrf, SignedIn, require_page
from telereg.web.templating import render
from telereg.web.terms import CLIENT_THROTTLED, LOCKED_OUT, shown_name

router = APIRouter(prefix="/account", include_in_schema=False)

#: What the form offers as a new token's lifetime, in days.
DEFAULT_TOKEN_DAYS = 90
WRONG_CURRENT_PASSWORD = N_("The current password is wrong.")
PASSWORDS_DIFFER = N_("the two new passwords differ")
#: What the page says after a step, by the code its address carries (only these words).
DONE = {
    "password": N_("Your password was changed. Your other sessions were signed out."),
    "revoked": N_("The API token was revoked."),
}

TokenHolder = Annotated[Principal, require_page(Permission.TOKENS_OWN)]


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    done: str = "",
    password_error: str = "",
    token_error: str = "",
    issued: IssuedToken | None = None,
    status_code: int = 200,
) -> Response:
    user = session.get(User, principal.user_id)
    holds_tokens = principal.can(Permission.TOKENS_OWN)
    tokens = (
        accounts.list_tokens(session, principal=principal, username=principal.name)
        if holds_tokens
        else []
    )
    return render(
        request,
        "account.html",
        {
            "title": _("My account"),
            "account": user,
            "operator_name": shown_name(user.operator.name, user.operator.name_en)
            if user is not None and user.operator
            else "",
            "agency_name": shown_name(user.agency.name, user.agency.name_en)
            if user is not None and user.agency
            else "",
            "done": _(DONE[done]) if done in DONE else "",
            "password_error": password_error,
            "token_error": token_error,
            "min_password_chars": MIN_PASSWORD_CHARS,
            "holds_tokens": holds_tokens,
            "tokens": sorted(tokens, key=lambda t: t.id, reverse=True),
            "now": utcnow(),
            "default_days": DEFAULT_TOKEN_DAYS,
            "max_days": MAX_TOKEN_DAYS,
            "issued": issued,
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
def account(request: Request, session: SessionDep, principal: SignedIn, done: str = "") -> Response:
    return _page(request, session, principal, done=done)


def _password_refusal(err: TeleregError) -> str:
    """What the page says when a new password was refused."""
    if isinstance(err, AccountLockedError):
        return _(LOCKED_OUT)
    if isinstance(err, LoginThrottledError):
        return _(CLIENT_THROTTLED)
    if isinstance(err, AuthenticationError):
        return _(WRONG_CURRENT_PASSWORD)
    return localise(err.message)


@router.post("/password", response_class=HTMLResponse, dependencies=[Csrf])
def change_password(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    current_password: Annotated[str, Form(max_length=200)],
    new_password: Annotated[str, Form(max_length=200)],
    new_password_again: Annotated[str, Form(max_length=200)],
) -> Response:
    """A new password, given the current one; the user's other sessions end, this one stays."""
    try:
        if new_password != new_password_again:
            raise InputError(PASSWORDS_DIFFER)
        user = accounts.change_own_password(
            session,
            settings=settings,
            principal=principal,
            current_password=current_password,
            new_password=new_password,
            client=client_of(request),
        )
    except TeleregError as err:
        # (committed all the same: a wrong current password counts towards lockout)
        refusal = _password_refusal(err)
        status = status_for(err)
        return _page(request, session, principal, password_error=refusal, status_code=status)
    start_session(request, user)  # this browser stays signed in, at the new epoch
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/tokens", response_class=HTMLResponse, dependencies=[Csrf])
def issue_token(
    request: Request,
    session: SessionDep,
    principal: TokenHolder,
    valid_days: Annotated[int, Form()],
    label: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A new API token of the user's, shown on the page this once."""
    try:
        with session.begin_nested():
            issued = accounts.issue_token(
                session,
                principal=principal,
                username=principal.name,
                label=label.strip(),
                valid_days=valid_days,
            )
    except TeleregError as err:
        refusal = localise(err.message)
        return _page(request, session, principal, token_error=refusal, status_code=status_for(err))
    page = _page(request, session, principal, issued=issued, status_code=201)
    page.headers["Cache-Control"] = "no-store"  # the token itself stays out of caches
    return page


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse, dependencies=[Csrf])
def revoke_token(
    token_id: RowId, request: Request, session: SessionDep, principal: TokenHolder
) -> Response:
    """Revoke one of the user's own tokens (an administrator's too: others' are on /admin)."""
    try:
        with session.begin_nested():
            accounts.revoke_token(session, principal=principal, token_id=token_id, own=True)
    except TeleregError as err:
        refusal = localise(err.message)
        return _page(request, session, principal, token_error=refusal, status_code=status_for(err))
    return RedirectResponse("/account?done=revoked#tokens", status_code=303)
