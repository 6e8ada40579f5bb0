"""Jobs: follow long work (a month's fraud scan …) that runs in its own process."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from telereg.api.deps import RowId, SessionDep, SettingsDep, require
from telereg.api.schemas import JobOut
from telereg.core import jobs
from telereg.core.permissions import Permission
from telereg.core.principal import Principal

router = APIRouter(tags=["jobs"])
Runner = Annotated[Principal, require(Permission.ANALYSIS_RUN)]


@router.get("/jobs", summary="The latest jobs, newest first")
def list_jobs(
    session: SessionDep,
    settings: SettingsDep,
    principal: Runner,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    return [
        JobOut(**jobs.describe(job))
        for job in jobs.visible(session, settings, principal=principal, limit=limit)
    ]


@router.get("/jobs/{job_id}", summary="One job: its status and, once it succeeded, its result")
def get_job(session: SessionDep, settings: SettingsDep, principal: Runner, job_id: RowId) -> JobOut:
    return JobOut(**jobs.describe(jobs.get(session, settings, principal=principal, job_id=job_id)))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Stop a queued or running job (its requester or an administrator)",
)
def cancel_job(
    session: SessionDep, settings: SettingsDep, principal: Runner, job_id: RowId
) -> JobOut:
    return JobOut(
        **jobs.describe(jobs.cancel(session, settings, principal=principal, job_id=job_id))
    )
