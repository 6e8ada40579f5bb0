"""Errors as ``application/problem+json`` (RFC 9457), and the one error → status table."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

from telereg.core.errors import (
    AccountLockedError,
    AuditLogError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    CsrfError,
    EngineError,
    InputError,
    JobStartError,
    LoginThrottledError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TeleregError,
)
from telereg.core.i18n import localise

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[TeleregError], int], ...] = (
    (PayloadTooLargeError, 413),
    (AccountLockedError, 429),
    (LoginThrottledError, 429),
    (AuthenticationError, 401),
    (CsrfError, 403),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InputError, 422),
    (AuditLogError, 403),
    (ConfigurationError, 500),
    (EngineError, 503),
    (JobStartError, 503),
)


def status_for(error: TeleregError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    instance: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:telereg:problem:{code or status}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        # ``detail`` stays English for programs; ``message`` is for showing to a person, in
        # the language of the request (the language cookie, else the site's default).
        "message": localise(detail),
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )
