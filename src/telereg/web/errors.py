"""Errors as HTML pages in the user's language (and the redirect to sign in)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from telereg.core.errors import CsrfError, TeleregError
from telereg.core.i18n import gettext as _
from telereg.core.i18n import localise
from telereg.web.deps import LoginRequiredError
from telereg.web.templating import render
from telereg.web.terms import CSRF_EXPIRED, ERROR_TITLES


def error_page(request: Request, status: int, detail: str, error: Exception | None) -> Response:
    if isinstance(error, LoginRequiredError) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    title = _(ERROR_TITLES.get(status, ERROR_TITLES[500]))
    # Server faults do not show their internals; user mistakes say what was wrong.
    if status >= 500:
        shown = _("The error was logged. Please try again later.")
    elif isinstance(error, CsrfError):
        shown = _(CSRF_EXPIRED)
    elif isinstance(error, TeleregError):
        message = localise(error.message)
        shown = f"{error.where}: {message}" if error.where else message
    else:
        shown = _(detail)
    return render(
        request, "error.html", {"status": status, "title": title, "detail": shown}, status
    )
