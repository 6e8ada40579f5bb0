"""Home, sign-in, language switch and the module pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telereg.api.deps import Public, SessionDep, SettingsDep, client_of, start_session
from telereg.core import auth, i18n
from telereg.core.errors import (
    AccountLockedError,
    AuthenticationError,
    LoginThrottledError,
    NotFoundError,
)
from telereg.core.i18n import gettext as _
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.system.status import recent_status
from telereg.web.deps import Csrf, SignedIn, ensure_csrf_token, require_page
from telereg.web.navigation import module, translated
from telereg.web.templating import render
from telereg.web.terms import CLIENT_THROTTLED, LOCKED_OUT, WRONG_CREDENTIALS, operator_names

LANGUAGE_COOKIE = "telereg_lang"

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login or a language switch."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def set_language_cookie(response: Response, language: str, settings: Settings) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        samesite="lax",
        secure=settings.secure_cookies,
    )


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
) -> Response:
    status = recent_status(session, settings=settings, principal=principal)
    # (an agency's liaison and a viewer read no submissions: no card that is always 0)
    reads_data = principal.can(Permission.DATA_READ_ALL) or principal.can(Permission.DATA_READ_OWN)
    # (nor a viewer any case: its count of open cases would always be 0)
    reads_cases = principal.can(Permission.CASES_MANAGE) or principal.can(
        Permission.CASES_READ_ASSIGNED
    )
    return render(
        request,
        "home.html",
        {
            "status": status,
            "reads_data": reads_data,
            "reads_cases": reads_cases,
            "operator_names": operator_names(session),
        },
    )


@router.get("/login", response_class=HTMLResponse, dependencies=[Public])
def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002
    ensure_csrf_token(request)
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse, dependencies=[Public, Csrf])
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    try:
        user = auth.login(
            session,
            settings=settings,
            username=username.strip(),
            password=password,
            client=client_of(request),
        )
    except AuthenticationError as err:
        session.commit()  # keep the failure count and its audit entry
        message, status = WRONG_CREDENTIALS, 401
        if isinstance(err, AccountLockedError):
            message = LOCKED_OUT
        elif isinstance(err, LoginThrottledError):
            message, status = CLIENT_THROTTLED, 429
        context = {"next": safe_next(next), "error": _(message), "username": username}
        return render(request, "login.html", context, status_code=status)
    start_session(request, user)
    response = RedirectResponse(safe_next(next), status_code=303)
    if user.language:
        set_language_cookie(response, user.language, settings)
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, session: SessionDep, principal: SignedIn) -> Response:
    """Sign out everywhere: a copy of any of the user's session cookies stops working too."""
    auth.logout(session, principal=principal, client=client_of(request))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{language}", dependencies=[Public])
def switch_language(language: str, settings: SettingsDep, next: str = "/") -> Response:  # noqa: A002
    chosen = i18n.normalise_language(language, settings.default_language)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_language_cookie(response, chosen, settings)
    return response


@router.get("/modules/{slug}", response_class=HTMLResponse)
def module_page(
    slug: str,
    request: Request,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
) -> Response:
    found = module(slug)
    if found is None:
        raise NotFoundError(_("No such module."))
    if found.available:
        # (a role that may see none of its pages is sent to the first, which says so)
        return RedirectResponse(
            found.href_for(principal.role) or found.pages[0][1], status_code=307
        )
    return render(request, "unavailable.html", {"module": translated(found, principal.role)})
