"""The ASGI application: JSON API and web pages on one FastAPI app.

Errors are mapped here once: API paths get problem+json, pages get an HTML
error page in the user's language.
"""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telereg import __version__, registry
from telereg.api.deps import Public
from telereg.api.openapi import api_openapi
from telereg.api.problems import (
    BODY_TOO_LARGE,
    MALFORMED_FORM,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NO_SUCH_ADDRESS,
    STORAGE_FAILED,
    field_errors,
    field_problem,
    problem,
    status_for,
)
from telereg.api.router import api_router
from telereg.core import audit, i18n, workdirs
from telereg.core.db import session_factory
from telereg.core.errors import StorageError, TeleregError
from telereg.core.settings import Settings
from telereg.domains.buildout import pages as buildout_pages
from telereg.domains.fraud import pages as fraud_pages
from telereg.web import account, admin, data, jobs, pages
from telereg.web.errors import error_page

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"


class SecurityHeaders:
    """Headers on every response: no framing by other sites, no content-type sniffing, no
    resource from elsewhere (every script, style and image is the site's own), no address
    sent to other sites; and no copy kept in a cache, but of the static files: pages,
    downloads and answers carry subscribers' data."""

    POLICY = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )
    NOT_KEPT = ((b"cache-control", b"no-store"),)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        wanted: tuple[tuple[bytes, bytes], ...] = self.HEADERS
        if not scope.get("path", "").startswith("/static/"):
            wanted = (*wanted, *self.NOT_KEPT)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in wanted if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodySizeLimit:
    """Refuse request bodies over the limit, by header or while streaming, with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        overflow = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, overflow
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                overflow = True
                raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not overflow:
                await send(message)
            elif not refused:
                # Whatever the app made of the cut-off body, the client learns it was too large.
                refused = True
                await self._refuse(scope, receive, send)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if overflow and not refused:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, BODY_TOO_LARGE.format(limit=self.limit), code="payload-too-large")
        await response(scope, receive, send)


class _BodyTooLargeError(Exception):
    pass


class LanguageMiddleware:
    """Set the request's language from the language cookie, else for the API from
    ``Accept-Language``, else the default from settings; and the client's address that its
    audit entries record."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cookies = headers.get(b"cookie", b"").decode("latin-1")
        chosen = None
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == pages.LANGUAGE_COOKIE:
                chosen = value
        if chosen is None and scope.get("path", "").startswith("/api/"):
            # (a program has no cookie; pages keep to the site's language until one is chosen)
            chosen = i18n.accepted_language(headers.get(b"accept-language", b"").decode("latin-1"))
        token = i18n.current_language.set(i18n.normalise_language(chosen, self.default))
        # (the address as the server sees it: behind a proxy, what uvicorn's
        # --forwarded-allow-ips takes from its headers)
        client = scope.get("client")
        address = audit.current_client.set(str(client[0]) if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            audit.current_client.reset(address)
            i18n.current_language.reset(token)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """The methods some route takes at the request's address (the router names only the
    first route's, and a path served by a GET route and a POST route takes both)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def _server_fault(request: Request, error: TeleregError) -> str:
    """What the answer to a server fault says, once the fault is logged: a storage error,
    what is wrong and that nothing was stored (its cause names the server's paths: the log
    has it); another, only that the log has the details."""
    if isinstance(error, StorageError):
        log.error(
            "storage error on %s %s: %s", request.method, request.url.path, error, exc_info=error
        )
        return STORAGE_FAILED
    log.error("server error on %s %s: %s", request.method, request.url.path, error)
    return "internal error; the server log has the details"


def _starting(settings: Settings) -> None:
    """Refuse settings the domains cannot work with; sweep the work on clear values a killed
    server or command left (an upload's copy, the vault's spill), keeping that of a process
    working alongside (:func:`workdirs.sweep_left_behind`); remove what is kept past its
    retention period (:func:`registry.keep_house`)."""
    registry.check_settings(settings)
    workdirs.sweep_left_behind(settings)
    registry.keep_house(settings)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="telereg",
        version=__version__,
        description="Supervision platform for telecom regulators.",
        docs_url=None,  # served below, from the package: the UI works without internet
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    _starting(settings)
    app.state.settings = settings
    app.openapi = partial(api_openapi, app)  # type: ignore[method-assign]

    # Public, as FastAPI's own page is: it describes the API, every call of which still
    # needs its token.
    @app.get("/api/docs", include_in_schema=False, dependencies=[Public])
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/v1/openapi.json",
            title="telereg API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    app.state.sessions = session_factory(settings)

    app.include_router(api_router)
    app.include_router(pages.router)
    app.include_router(account.router)
    app.include_router(admin.router)
    app.include_router(data.router)
    app.include_router(jobs.router)
    app.include_router(buildout_pages.router)
    app.include_router(fraud_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Added innermost first: the size limit sees the request before anything else.
    app.add_middleware(LanguageMiddleware, default=settings.default_language)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret("session_secret").decode(),
        session_cookie="telereg_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)

    def respond(
        request: Request,
        status: int,
        detail: str,
        error: Exception | None,
        code: str,
        message: str | None = None,
    ) -> Response:
        if _is_api(request):
            # (the error's own headers too: a 405's Allow, say)
            headers = dict(getattr(error, "headers", None) or {})
            if status == 401:
                headers.setdefault("WWW-Authenticate", "Bearer")
            return problem(
                status,
                detail,
                code=code,
                instance=request.url.path,
                headers=headers,
                message=message,
            )
        return error_page(request, status, detail, error)

    @app.exception_handler(TeleregError)
    async def telereg_error(request: Request, error: TeleregError) -> Response:
        status = status_for(error)
        if status >= 500:
            return respond(request, status, _server_fault(request, error), error, error.code)
        detail = str(error)
        # (a file's name before the message is data: the message alone is translated)
        message = i18n.localise(error.message)
        if error.where:
            message = f"{error.where}: {message}"
        return respond(request, status, detail, error, error.code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return respond(request, 400, MALFORMED_JSON, error, "malformed-json")
        detail = "; ".join(field_problem(p) for p in problems)
        if _is_api(request):
            return problem(
                422,
                detail,
                code="invalid-input",
                instance=request.url.path,
                extra={"errors": field_errors(problems)},
            )
        return error_page(request, 422, detail, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = str(error.detail)
        if error.status_code == 405:
            allowed = _allowed_methods(request)
            error.headers = {"Allow": allowed}
            detail = METHOD_NOT_ALLOWED.format(
                path=request.url.path, method=request.method, allowed=allowed
            )
        elif error.status_code == 404:
            detail = NO_SUCH_ADDRESS.format(path=request.url.path)
        elif error.status_code == 400:  # (only a form that cannot be parsed is refused so)
            detail = MALFORMED_FORM.format(detail=detail)
        return respond(request, error.status_code, detail, error, str(error.status_code))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return respond(request, 500, "internal error", error, "internal")

    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment (``TELEREG_*``)."""
    from telereg.core.logging import configure_logging
    from telereg.core.settings import load_settings

    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)
