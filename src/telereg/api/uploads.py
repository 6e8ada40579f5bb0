"""Operator-file uploads: the multipart body is read only once the caller may submit.

FastAPI reads ``File``/``Form`` parameters before it runs any dependency, so an
anonymous client could make the server spool a whole body before being refused.
The upload routes therefore take no body parameters: their dependencies
authenticate the caller, and only then does :func:`read_upload` parse the form.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from telereg import registry
from telereg.core.periods import MONTH_FIELD
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.ingest import lake
from telereg.ingest.service import SubmissionRecord, ingest_file, storage_errors

#: The name of an upload's copy in its scratch directory.
UPLOAD_COPY = "upload.bin"
#: Text fields an upload form may have besides the file (the web form adds its CSRF token).
_MAX_FIELDS = 10


class UploadFields(BaseModel):
    """The text fields sent with an operator file."""

    dataset: str = Field(description="Dataset name (see GET /api/v1/datasets)")
    operator: str = Field(description="Operator code the data belongs to")
    period: str | None = Field(
        None,
        pattern=MONTH_FIELD,
        description=(
            "Month YYYY-MM the file describes: taken from the rows when omitted, for datasets "
            "with a date column; required for the others (except standing reference lists)"
        ),
    )
    crs: Literal["wgs84", "gcj02"] = Field("wgs84", description="Coordinates in the file")


@dataclass(frozen=True)
class Upload:
    """A parsed upload: its checked fields and the file, spooled by Starlette."""

    fields: UploadFields
    file: UploadFile


def openapi_body() -> dict[str, Any]:
    """The multipart request body of an upload, for the OpenAPI description."""
    schema = UploadFields.model_json_schema()
    schema["properties"]["file"] = {
        "type": "string",
        "format": "binary",
        "description": "CSV (UTF-8/GBK), XLSX, Parquet or GeoJSON",
    }
    schema["required"] = ["file", *schema.get("required", [])]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


@asynccontextmanager
async def read_upload(request: Request) -> AsyncIterator[Upload]:
    """Parse the multipart body now: one file and a few text fields, checked like body parameters.

    The spooled file is closed when the block ends. A missing or malformed field
    raises :class:`RequestValidationError`, answered with ``422``.
    """
    async with request.form(max_files=1, max_fields=_MAX_FIELDS) as form:
        # A blank field counts as not sent, as FastAPI treats form parameters.
        given = {k: v for k, v in form.items() if isinstance(v, str) and v}
        file = form.get("file")
        problems: list[dict[str, Any]] = []
        if not isinstance(file, UploadFile):
            problems.append(
                {"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}
            )
        try:
            fields = UploadFields.model_validate(given)
        except ValidationError as err:
            problems = [{**e, "loc": ("body", *e["loc"])} for e in err.errors()] + problems
        if problems or not isinstance(file, UploadFile):
            raise RequestValidationError(problems)
        yield Upload(fields=fields, file=file)


async def read_small_file(request: Request, *, max_bytes: int) -> tuple[str, bytes]:
    """A form's one small file (a package brought back to be checked), with its name.

    As :func:`read_upload`, the body is parsed only when called, after the caller was
    authenticated. A file over ``max_bytes`` is read no further: ``max_bytes + 1`` bytes
    come back, for the caller to refuse. No file: :class:`RequestValidationError`.
    """
    async with request.form(max_files=1, max_fields=_MAX_FIELDS) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body", "file"), "msg": "Field required"}]
            )
        return file.filename, await file.read(max_bytes + 1)


async def ingest_upload(
    settings: Settings, *, principal: Principal, upload: Upload
) -> SubmissionRecord:
    """Copy the upload to a private scratch directory (:func:`lake.scratch`) and ingest it,
    in a worker thread."""
    return await run_in_threadpool(_ingest, settings, principal, upload)


def _ingest(settings: Settings, principal: Principal, upload: Upload) -> SubmissionRecord:
    contract = registry.contract(upload.fields.dataset)
    # The copy holds clear values: it is made in the data dir's private scratch space (mode
    # 0700), removed when the request ends, and swept at the next start if the server dies.
    with storage_errors(upload.file.filename or "upload"), lake.scratch(settings) as work:
        path = work / UPLOAD_COPY
        with path.open("wb") as fh:
            shutil.copyfileobj(upload.file.file, fh, length=1 << 20)
        return ingest_file(
            settings,
            principal=principal,
            contract=contract,
            path=path,
            filename=upload.file.filename or "upload",
            operator=upload.fields.operator,
            period=upload.fields.period,
            crs=upload.fields.crs,
        )
