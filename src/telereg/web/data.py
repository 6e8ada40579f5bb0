"""Data pages: upload, submissions, a submission's errors and quarantine, the datasets."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from telereg import registry
from telereg.api.deps import RowId, SessionDep, SettingsDep
from telereg.api.problems import STORAGE_FAILED, field_problem
from telereg.api.uploads import ingest_upload, read_upload
from telereg.core import audit, i18n
from telereg.core.errors import InputError, NotFoundError, StorageError
from telereg.core.periods import OPTIONAL_MONTH_FIELD, month_problem
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.ingest import submissions
from telereg.ingest.catalog import contract_summary
from telereg.ingest.contracts import Contract
from telereg.web.deps import require_page, verify_csrf
from telereg.web.templating import render
from telereg.web.terms import ERROR_REPORT_HEADERS, operator_names, shown_name

log = logging.getLogger(__name__)

router = APIRouter(prefix="/data", include_in_schema=False)
PAGE_SIZE = 30
Submitter = Annotated[Principal, require_page(Permission.DATA_SUBMIT)]


@router.get("/submissions", response_class=HTMLResponse)
def submission_list(
    request: Request,
    session: SessionDep,
    principal: Submitter,
    dataset: str = "",
    operator: str = "",
    status: str = "",
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    names = operator_names(session)
    records, total = submissions.list_submissions(
        session,
        principal=principal,
        dataset=dataset or None,
        operator=operator or None,
        status=status or None,
        period=period or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "data/submissions.html",
        {
            "records": records,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "filters": {
                "dataset": dataset,
                "operator": operator,
                "status": status,
                "period": period,
            },
            "datasets": sorted(registry.CONTRACTS),
            # An operator's user reads its own submissions only: nothing else to filter by.
            "operators": [principal.operator_code] if principal.operator_code else list(names),
            "operator_names": names,
        },
    )


def _upload_form(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    chosen: dict[str, str] | None = None,
) -> Response:
    names = operator_names(session)
    operators = list(names)
    datasets = list(registry.CONTRACTS.values())
    if principal.role is Role.OPERATOR:
        operators = [principal.operator_code or ""]
        datasets = [c for c in datasets if not c.administration_only]
    return render(
        request,
        "data/upload.html",
        {
            "datasets": datasets,
            "operators": operators,
            "operator_names": names,
            "error": error,
            # what the refused form had chosen, chosen again (the file must be picked anew)
            "chosen": chosen or {},
        },
        status_code=status_code,
    )


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, session: SessionDep, principal: Submitter) -> Response:
    return _upload_form(request, session, principal)


@router.post("/upload", response_class=HTMLResponse)
async def upload(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> Response:
    # The body is read only now, after the visitor proved it may submit; the CSRF token
    # travels in it, so it is checked right after.
    refused = partial(_upload_form, request, session, principal, status_code=422)
    chosen: dict[str, str] = {}
    try:
        async with read_upload(request) as received:
            await verify_csrf(request)
            chosen = received.fields.model_dump(exclude_none=True)
            record = await ingest_upload(settings, principal=principal, upload=received)
    except RequestValidationError as err:
        return refused(error=_form_problems(err))
    except (InputError, NotFoundError) as err:
        # Refused before anything was recorded (no period for a list without dates, an
        # unknown dataset): the form again, with what to change.
        return refused(error=str(err), chosen=chosen)
    except StorageError:
        # Nothing was stored either: the form again, as chosen, to send once the
        # administrator has made room (the cause names the server's paths: the log has it).
        log.exception("storage error on POST %s", request.url.path)
        return refused(error=STORAGE_FAILED, chosen=chosen, status_code=507)
    sent = "back" if record.reinstated else "again" if record.duplicate_of else None
    return RedirectResponse(
        f"/data/submissions/{record.id}" + (f"?sent={sent}" if sent else ""), status_code=303
    )


def _form_problems(err: RequestValidationError) -> str:
    problems = []
    for problem in err.errors():
        field = str(problem["loc"][-1])
        if field == "period":
            problems.append(month_problem(str(problem.get("input"))) or field_problem(problem))
        else:
            problems.append(field_problem(problem))
    return "; ".join(problems)


#: A quarantined value longer than this is shown cut on the page (a 10 MB field would
#: make a 10 MB page); the row's download has it whole.
_SHOWN_CHARS = 300


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(
    submission_id: RowId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    page: Annotated[int, Query(ge=1)] = 1,
    sent: Annotated[str | None, Query(pattern="^(again|back)$")] = None,
) -> Response:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    columns, rows, total = submissions.quarantined_rows(
        settings, found, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, cut_at=_SHOWN_CHARS
    )
    contract = registry.CONTRACTS.get(found.dataset)
    titles = _column_titles(contract) if contract is not None else {}
    return render(
        request,
        "data/submission.html",
        {
            "s": found,
            "sent": sent,
            "operator_name": shown_name(found.operator.name, found.operator.name_en),
            "columns": columns,
            "column_titles": titles,
            "rows": rows,
            "quarantine_total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
        },
    )


@router.get("/submissions/{submission_id}/errors.csv")
def submission_errors(
    submission_id: RowId, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> StreamingResponse:
    found = submissions.get_submission(session, principal=principal, submission_id=submission_id)
    audit.record_download(
        session, actor=principal.name, what="errors.csv", objects=[f"submission:{found.id}"]
    )
    # In the reader's language, fixed now: the body is written after this function returns.
    language = i18n.current_language.get()
    contract = registry.CONTRACTS.get(found.dataset)
    titles = _column_titles(contract) if contract is not None else {}
    # In Chinese, a column by the name a Chinese header gives it, with the contract's beside.
    chinese = i18n.in_chinese()
    named = {name: f"{title} ({name})" for name, title in titles.items() if chinese}
    return StreamingResponse(
        submissions.error_report_csv(
            settings,
            found,
            headers=[i18n.translations(language).ugettext(h) for h in ERROR_REPORT_HEADERS],
            reason=partial(i18n.localise, language=language),
            column=lambda name: named.get(name, name),
        ),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="submission-{submission_id}-errors.csv"'
        },
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets(
    request: Request, principal: Annotated[Principal, require_page(Permission.STATUS_READ)]
) -> Response:
    del principal
    return render(
        request,
        "data/datasets.html",
        {"contracts": [contract_summary(c) for c in registry.CONTRACTS.values()]},
    )


def _column_titles(contract: Contract) -> dict[str, str]:
    """Headers for a dataset's columns: the Chinese name in Chinese, the column's name in
    words in English; a kept prefix (an IMEI's TAC) says what it is part of."""
    titles: dict[str, str] = {}
    chinese = i18n.in_chinese()
    for column in contract.columns:
        titles[column.name] = (
            column.description_zh if chinese and column.description_zh else _words(column.name)
        )
        if column.kept_prefix is not None:
            name, length = column.kept_prefix
            titles[name] = f"{titles[column.name]}前{length}位" if chinese else _words(name).upper()
    return titles


def _words(name: str) -> str:
    return name.replace("_", " ")
