"""Errors as HTML pages in the user's language (and the redirect to sign in)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from telereg.api.problems import STORAGE_FAILED, field_problem
from telereg.core.errors import CsrfError, RoleLacksPermissionError, StorageError, TeleregError
from telereg.core.i18n import gettext as _
from telereg.core.i18n import localise
from telereg.web.deps import LoginRequiredError, identify
from telereg.web.templating import render
from telereg.web.terms import (
    CSRF_EXPIRED,
    ERROR_TITLES,
    NO_SUCH_PAGE,
    ROLE_MAY_NOT,
)


def error_page(request: Request, status: int, detail: str, error: Exception | None) -> Response:
    if isinstance(error, LoginRequiredError) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    if isinstance(error, RequestValidationError) and _only_the_address(error):
        # A page address whose parts do not parse (/data/submissions/xyz) names no page.
        status, error = 404, HTTPException(404)
    if isinstance(error, HTTPException):
        identify(request)  # (no route ran, so nobody looked at the session yet)
    title = _(ERROR_TITLES.get(status, ERROR_TITLES[500]))
    # Server faults do not show their internals; user mistakes say what was wrong.
    if isinstance(error, StorageError):
        shown = _(STORAGE_FAILED)
    elif status >= 500:
        shown = _("The error was logged. Please try again later.")
    elif isinstance(error, CsrfError):
        shown = _(CSRF_EXPIRED)
    elif isinstance(error, RoleLacksPermissionError):
        shown = _(ROLE_MAY_NOT).format(role=_(error.role))
    elif isinstance(error, RequestValidationError):
        shown = "; ".join(localise(field_problem(problem)) for problem in error.errors())
    elif isinstance(error, HTTPException) and status == 404:
        shown = _(NO_SUCH_PAGE)
    elif isinstance(error, TeleregError):
        message = localise(error.message)
        shown = f"{error.where}: {message}" if error.where else message
    else:
        shown = localise(detail)
    return render(
        request, "error.html", {"status": status, "title": title, "detail": shown}, status
    )


def _only_the_address(error: RequestValidationError) -> bool:
    return all(tuple(p.get("loc", ()))[:1] == ("path",) for p in error.errors())
