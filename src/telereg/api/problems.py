"""Errors as ``application/problem+json`` (RFC 9457), and the one error → status table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

from telereg.core.errors import (
    AccountLockedError,
    ApprovalRequiredError,
    AuditLogError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    CsrfError,
    EngineError,
    GoneError,
    InputError,
    JobStartError,
    LimitReachedError,
    LoginThrottledError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    StorageError,
    TeleregError,
)
from telereg.core.i18n import N_, localise
from telereg.core.privacy import mask_digits

#: One request field's problem, in words a person reads (the API's ``message`` and the web's
#: error page translate them; the API's ``errors`` keep the parser's own terms for programs).
FIELD_MISSING = N_("{field}: missing")
FIELD_INVALID = N_("{field}: not a valid value ({value})")
FIELD_INVALID_UNSHOWN = N_("{field}: not a valid value")
#: A request refused before any route read it, in words a person reads.
MALFORMED_JSON = N_("the request body is not valid JSON")
MALFORMED_FORM = N_("the request body is not a readable form: {detail}")
BODY_TOO_LARGE = N_("request body larger than {limit} bytes")
NO_SUCH_ADDRESS = N_("the API has no address {path}")
METHOD_NOT_ALLOWED = N_("{path} does not take {method}, only {allowed}")
#: What a storage error (507) says: the engine's own words name the server's paths, so they
#: go to the server log only.
STORAGE_FAILED = N_(
    "the server's storage is full or not writable; nothing was stored; ask the administrator"
)
#: Fields whose value an answer never repeats.
_SECRET_FIELDS = re.compile(r"password|secret|token|key", re.IGNORECASE)

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[TeleregError], int], ...] = (
    (PayloadTooLargeError, 413),
    (AccountLockedError, 429),
    (LoginThrottledError, 429),
    (LimitReachedError, 429),
    (AuthenticationError, 401),
    (CsrfError, 403),
    (PermissionDeniedError, 403),
    (ApprovalRequiredError, 403),
    (GoneError, 410),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InputError, 422),
    (AuditLogError, 403),
    (ConfigurationError, 500),
    (EngineError, 503),
    (JobStartError, 503),
    (StorageError, 507),
)


def status_for(error: TeleregError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def field_problem(found: Mapping[str, Any]) -> str:
    """One of a request's invalid fields, as a sentence: which field, and the value as sent
    (a run of digits long enough to be a phone or ID number is masked, as screens mask one;
    a password, a secret or a token is never repeated).
    ``found`` is one of the parser's (pydantic's) error entries."""
    named = [str(part) for part in found.get("loc", ()) if isinstance(part, str)]
    field = named[-1] if named else "?"
    if found.get("type") == "missing":
        return FIELD_MISSING.format(field=field)
    if _SECRET_FIELDS.search(field):
        return FIELD_INVALID_UNSHOWN.format(field=field)
    value = mask_digits(str(found.get("input", "")))[:60]
    return FIELD_INVALID.format(field=field, value=value)


def field_errors(found: Sequence[Any]) -> list[dict[str, str]]:
    """The parser's error entries for programs: where, what kind, and its own words."""
    return [
        {
            "location": ".".join(str(part) for part in p.get("loc", ())),
            "type": str(p.get("type", "")),
            "problem": str(p.get("msg", "")),
        }
        for p in found
    ]


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    instance: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    message: str | None = None,
) -> JSONResponse:
    """A problem answer; ``message`` is ``detail`` for a person (by default ``detail`` in the
    request's language)."""
    body: dict[str, Any] = {
        "type": f"urn:telereg:problem:{code or status}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        # ``detail`` stays English for programs; ``message`` is for showing to a person, in
        # the language of the request (the language cookie, else the site's default).
        "message": localise(detail) if message is None else message,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )
