"""The audit log, read-only: there is no route that changes it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from telereg.api.deps import Moment, Offset, SessionDep, require
from telereg.api.schemas import AuditEntryOut, AuditPage
from telereg.core import audit
from telereg.core.permissions import Permission

router = APIRouter(tags=["audit"])


@router.get("/audit", dependencies=[require(Permission.AUDIT_READ)], summary="Read the audit log")
def read_audit(
    session: SessionDep,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="Prefix, e.g. 'users.'")] = None,
    obj: Annotated[
        str | None,
        Query(alias="object", max_length=200, description="An object named, e.g. 'case:40'"),
    ] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> AuditPage:
    rows, total = audit.entries(
        session,
        actor=actor,
        action=action,
        obj=obj,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AuditPage(total=total, entries=[AuditEntryOut.model_validate(r) for r in rows])
