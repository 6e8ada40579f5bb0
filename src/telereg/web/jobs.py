"""Job pages: the latest jobs, and one job followed until it is done."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telereg.api.deps import RowId, SessionDep, SettingsDep
from telereg.core import jobs
from telereg.core.errors import TeleregError
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.domains.fraud import service as fraud
from telereg.web.deps import Csrf, FormError, refused, require_page
from telereg.web.templating import render
from telereg.web.terms import JOB_KINDS, JOB_RESULT_LABELS, JOB_STAGES

router = APIRouter(prefix="/jobs", include_in_schema=False)
Runner = Annotated[Principal, require_page(Permission.ANALYSIS_RUN)]
#: Seconds between reloads of a page that shows a job still queued or running.
REFRESH_SECONDS = 3


def result_page(job: dict[str, Any]) -> str | None:
    """Where a finished job's results are shown, if they are."""
    if job["kind"] == fraud.SCAN_JOB.name and job["status"] == jobs.JobStatus.SUCCEEDED:
        return f"/fraud?period={job['params']['period']}"
    return None


def _shown(job: dict[str, Any]) -> dict[str, Any]:
    """A job with where its results are and what its kind is called (translated later)."""
    return {
        **job,
        "result_page": result_page(job),
        "title": JOB_KINDS.get(job["kind"], job["kind"]),
    }


@router.get("", response_class=HTMLResponse)
def job_list(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Runner
) -> Response:
    shown = [_shown(jobs.describe(j)) for j in jobs.visible(session, settings, principal=principal)]
    active = any(j["status"] in jobs.ACTIVE for j in shown)
    return render(
        request,
        "jobs/list.html",
        {"jobs": shown, "refresh": REFRESH_SECONDS if active else None},
    )


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(
    job_id: RowId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Runner,
    error: FormError,
) -> Response:
    job = _shown(jobs.describe(jobs.get(session, settings, principal=principal, job_id=job_id)))
    active = job["status"] in jobs.ACTIVE
    refresh = REFRESH_SECONDS if active else None
    may_cancel = active and jobs.may_cancel(principal, job["requested_by"])
    return render(
        request,
        "jobs/job.html",
        {
            "job": job,
            "refresh": refresh,
            "labels": JOB_RESULT_LABELS,
            "stages": JOB_STAGES,
            "may_cancel": may_cancel,
            "error": error,
        },
    )


@router.post("/{job_id}/cancel", dependencies=[Csrf])
def cancel_job(
    job_id: RowId, request: Request, session: SessionDep, settings: SettingsDep, principal: Runner
) -> Response:
    try:
        jobs.cancel(session, settings, principal=principal, job_id=job_id)
    except TeleregError as err:
        return refused(request, err, back=f"/jobs/{job_id}")
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
