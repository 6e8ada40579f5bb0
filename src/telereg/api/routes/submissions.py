"""Submissions: upload an operator file, list them, read error reports, quarantine and rows."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from telereg import registry
from telereg.api import uploads
from telereg.api.deps import (
    KnownDataset,
    KnownOperator,
    Offset,
    OptionalPeriod,
    RowId,
    SessionDep,
    SettingsDep,
    require,
)
from telereg.api.openapi import file_response
from telereg.core import audit
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.ingest import submissions
from telereg.ingest.catalog import contract_summary
from telereg.ingest.models import SubmissionStatus
from telereg.ingest.service import SubmissionRecord

router = APIRouter(tags=["submissions"])

Reader = Annotated[Principal, require(Permission.STATUS_READ)]


@router.post(
    "/submissions",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an operator file (multipart); the record says accepted, partial or rejected",
    openapi_extra=uploads.openapi_body(),
)
async def submit(
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
) -> dict[str, Any]:
    # The body is read only now, after the caller proved it may submit.
    async with uploads.read_upload(request) as upload:
        record = await uploads.ingest_upload(settings, principal=principal, upload=upload)
    return record.as_dict()


@router.get(
    "/submissions",
    summary="List submissions (an operator sees only its own)",
)
def list_all(
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    dataset: KnownDataset,
    operator: KnownOperator,
    status_: Annotated[SubmissionStatus | None, Query(alias="status")] = None,
    period: OptionalPeriod = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
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
    submission_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
) -> dict[str, Any]:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    return SubmissionRecord.of(found).as_dict()


@router.get(
    "/submissions/{submission_id}/errors.csv",
    summary="Error report: row, column, reason, value (formula-safe CSV)",
    response_class=StreamingResponse,
    openapi_extra=file_response("text/csv", description="The error report"),
)
def error_report(
    submission_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
) -> StreamingResponse:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    audit.record_download(
        session, actor=principal.name, what="errors.csv", objects=[f"submission:{found.id}"]
    )
    return StreamingResponse(
        submissions.error_report_csv(settings, found),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="submission-{submission_id}-errors.csv"'
        },
    )


@router.get(
    "/submissions/{submission_id}/quarantine",
    summary="Quarantined rows of a submission (identifiers as this submission's own tokens)",
)
def quarantine(
    submission_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    columns, rows, total = submissions.quarantined_rows(settings, found, limit=limit, offset=offset)
    audit.record_download(
        session,
        actor=principal.name,
        what="quarantine",
        objects=[f"submission:{found.id}"],
        filters={"limit": limit, "offset": offset},
    )
    return {
        "total": total,
        "columns": columns,
        "rows": [dict(zip(columns, map(_plain, row), strict=True)) for row in rows],
    }


@router.get(
    "/submissions/{submission_id}/rows",
    summary="Accepted rows of a submission, current or superseded (identifiers as this "
    "submission's own tokens)",
    response_class=StreamingResponse,
    openapi_extra=file_response(
        "text/csv", "application/vnd.apache.parquet", description="The rows (?format=)"
    ),
)
def accepted_rows(
    submission_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DATA_SUBMIT)],
    format: Annotated[Literal["csv", "parquet"], Query()] = "csv",  # noqa: A002 - the API's word
) -> Response:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    name = f"submission-{submission_id}-{found.dataset}-{found.period or 'all'}"
    audit.record_download(
        session,
        actor=principal.name,
        what=f"rows.{format}",
        objects=[f"submission:{found.id}"],
    )
    if format == "parquet":
        return StreamingResponse(
            submissions.accepted_parquet(settings, found),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    rows = submissions.accepted_rows_csv(settings, found)
    first = next(rows)  # (a missing file is an error before the response starts)
    return StreamingResponse(
        itertools.chain([first], rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


@router.get("/datasets", summary="The datasets operators can submit, with their contracts")
def datasets(principal: Reader) -> list[dict[str, Any]]:
    del principal
    return [contract_summary(c) for c in registry.CONTRACTS.values()]
