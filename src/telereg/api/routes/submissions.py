"""Submissions: upload an operator file, list them, read error reports and quarantine."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import StreamingResponse

from telereg import registry
from telereg.api.deps import SessionDep, SettingsDep, require
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.ingest import submissions
from telereg.ingest.catalog import contract_summary
from telereg.ingest.service import SubmissionRecord, ingest_file

router = APIRouter(tags=["submissions"])

Reader = Annotated[Principal, require(Permission.STATUS_READ)]


def save_upload(upload: UploadFile, directory: Path) -> Path:
    """Stream an upload to a private temporary file (the body-size limit applies upstream)."""
    target = directory / "upload.bin"
    with target.open("wb") as fh:
        shutil.copyfileobj(upload.file, fh, length=1 << 20)
    return target


@router.post(
    "/submissions",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an operator file (multipart); the record says accepted, partial or rejected",
)
def submit(
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    file: Annotated[UploadFile, File(description="CSV (UTF-8/GBK), XLSX, Parquet or GeoJSON")],
    dataset: Annotated[str, Form()],
    operator: Annotated[str, Form()],
    period: Annotated[str | None, Form(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] = None,
    crs: Annotated[Literal["wgs84", "gcj02"], Form()] = "wgs84",
) -> dict[str, Any]:
    contract = registry.contract(dataset)
    with tempfile.TemporaryDirectory(prefix="telereg-upload-") as tmp:
        path = save_upload(file, Path(tmp))
        record = ingest_file(
            settings,
            principal=principal,
            contract=contract,
            path=path,
            filename=file.filename or "upload",
            operator=operator,
            period=period,
            crs=crs,
        )
    return record.as_dict()


@router.get(
    "/submissions",
    summary="List submissions (an operator sees only its own)",
)
def list_all(
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    dataset: str | None = None,
    operator: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    period: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    records, total = submissions.list_submissions(
        session,
        principal=principal,
        dataset=dataset,
        operator=operator,
        status=status_,
        period=period,
        limit=limit,
        offset=offset,
    )
    return {"total": total, "submissions": [r.as_dict() for r in records]}


@router.get("/submissions/{submission_id}", summary="One submission's record")
def get_one(
    submission_id: int,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
) -> dict[str, Any]:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    return SubmissionRecord.of(found).as_dict()


@router.get(
    "/submissions/{submission_id}/errors.csv",
    summary="Error report: row, column, reason, value (formula-safe CSV)",
    response_class=StreamingResponse,
)
def error_report(
    submission_id: int,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
) -> StreamingResponse:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    return StreamingResponse(
        submissions.error_report_csv(settings, found),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="submission-{submission_id}-errors.csv"'
        },
    )


@router.get(
    "/submissions/{submission_id}/quarantine",
    summary="Quarantined rows of a submission (identifiers as tokens)",
)
def quarantine(
    submission_id: int,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    columns, rows, total = submissions.quarantined_rows(settings, found, limit=limit, offset=offset)
    return {
        "total": total,
        "columns": columns,
        "rows": [dict(zip(columns, map(_plain, row), strict=True)) for row in rows],
    }


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


@router.get("/datasets", summary="The datasets operators can submit, with their contracts")
def datasets(principal: Reader) -> list[dict[str, Any]]:
    del principal
    return [contract_summary(c) for c in registry.CONTRACTS.values()]
