"""The API's OpenAPI document as the API answers: problem+json errors, bearer tokens, files.

FastAPI documents every 422 as its own ``HTTPValidationError`` and no other error; the
errors telereg sends are mapped once (``api/problems.py``), so they are documented once
here, on every operation under ``/api/v1``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
BEARER = "bearer"


class FieldError(BaseModel):
    """One request field the parser refused, in its own terms (for programs)."""

    location: str = Field(description="Where, e.g. 'query.offset' or 'body.to'")
    type: str = Field(description="The parser's kind of error, e.g. 'missing'")
    problem: str = Field(description="The parser's own words")


class Problem(BaseModel):
    """An error (RFC 9457): ``detail`` in English for programs, ``message`` for people."""

    type: str = Field(description="urn:telereg:problem:<code>, e.g. urn:telereg:problem:not-found")
    title: str = Field(description="The HTTP status's phrase")
    status: int
    detail: str = Field(description="What went wrong, in English")
    message: str = Field(description="The same in the request's language")
    instance: str | None = Field(None, description="The request's path")
    errors: list[FieldError] | None = Field(
        None, description="With 422 invalid-input: each field the parser refused"
    )


_WHY = {
    "400": "The body is not valid JSON, or not a readable multipart form",
    "401": "No, an unknown, an expired or a revoked API token (or no signed-in session)",
    "403": "The role lacks the permission, or a browser session's CSRF token is missing",
    "404": "Nothing by that name or number (or not one the caller may see)",
    "409": "The operation conflicts with the current state (it changed meanwhile)",
    "410": "It existed, and was removed for good (under a retention policy): the answer says when",
    "413": "The request body is larger than allowed",
    "422": "A field of the request is missing or not valid",
}


def file_response(
    *media_types: str, description: str = "The file", may_be_gone: bool = False
) -> dict[str, Any]:
    """``openapi_extra`` of a route that answers with a file (CSV, ZIP, Parquet, text);
    ``may_be_gone``: a file that may have been removed under a retention policy (410)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    responses: dict[str, Any] = {
        "200": {"description": description, "content": dict.fromkeys(media_types, binary)}
    }
    if may_be_gone:
        responses["410"] = {"description": _WHY["410"]}
    return {"responses": responses}


def _errors_of(operation: dict[str, Any], method: str) -> list[str]:
    """The error statuses an operation may answer with."""
    statuses = []
    if "422" in operation.get("responses", {}) or "requestBody" in operation:
        statuses.append("422")
    if operation.get("security") != []:  # (a public operation asks for no token)
        statuses += ["401", "403", "404"]
    if "410" in operation.get("responses", {}):
        statuses.append("410")
    if method != "get":
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["400", "413"]
    return sorted(statuses)


def _problem_response(status: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": _WHY[status], "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


def api_openapi(app: FastAPI) -> dict[str, Any]:
    """The document (made once): FastAPI's, with the errors, files and token described."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "description": "An API token, trg_…"}
    }
    document["security"] = [{BEARER: []}]
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in _errors_of(operation, method):
                responses[status] = _problem_response(status)
    app.openapi_schema = document
    return document
