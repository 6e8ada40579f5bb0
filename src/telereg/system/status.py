"""System status for the home page and ``GET /api/v1/status``: real counts, zero where empty."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg import __version__
from telereg.cases.models import OPEN_STATUSES, Case
from telereg.core.models import Agency, Operator, User
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.ingest.models import Submission


@dataclass(frozen=True)
class SubmissionLine:
    id: int
    dataset: str
    operator: str
    period: str
    status: str
    rows_accepted: int
    rows_quarantined: int
    submitted_at: datetime


@dataclass(frozen=True)
class SystemStatus:
    version: str
    engine: str
    state_db: str
    datasets: list[str]
    submissions: int
    last_submissions: list[SubmissionLine] = field(default_factory=list)
    open_cases: int = 0
    users: int | None = None
    operators: int = 0
    agencies: int = 0


def lake_datasets(settings: Settings) -> list[str]:
    """Datasets that have data in the lake (one folder each, results excluded)."""
    lake = settings.lake_dir
    if not lake.is_dir():
        return []
    # Folders starting with "_" hold quarantine, error reports and work in progress.
    return sorted(
        p.name
        for p in lake.iterdir()
        if p.is_dir() and not p.name.startswith("_") and p.name != "results"
    )


def system_status(session: Session, *, settings: Settings, principal: Principal) -> SystemStatus:
    """What the principal may see of the system: an operator sees only its own submissions.

    The counts come from one statement of scalar subqueries, and the latest
    submissions from a second: the home page is the most visited page.
    """
    principal.require(Permission.STATUS_READ)
    submissions = select(Submission.id)
    cases = select(Case.id).where(Case.status.in_([s.value for s in OPEN_STATUSES]))
    if not principal.can(Permission.DATA_READ_ALL):
        submissions = submissions.join(Operator).where(Operator.code == principal.operator_code)
    if not principal.can(Permission.CASES_MANAGE):
        if principal.agency_code:
            cases = cases.join(Agency).where(Agency.code == principal.agency_code)
        else:
            cases = cases.join(Operator).where(Operator.code == principal.operator_code)

    def count_of(query: Any) -> Any:
        return select(func.count()).select_from(query.subquery()).scalar_subquery()

    counts = session.execute(
        select(
            count_of(submissions),
            count_of(cases),
            count_of(select(User.id).where(User.active)),
            count_of(select(Operator.id)),
            count_of(select(Agency.id)),
        )
    ).one()
    latest = session.scalars(
        select(Submission)
        .where(Submission.id.in_(submissions.scalar_subquery()))
        .order_by(Submission.id.desc())
        .limit(10)
    ).all()
    return SystemStatus(
        version=__version__,
        engine=settings.engine,
        state_db=session.get_bind().dialect.name,
        datasets=lake_datasets(settings),
        submissions=counts[0],
        last_submissions=[
            SubmissionLine(
                id=s.id,
                dataset=s.dataset,
                operator=s.operator.code,
                period=s.period,
                status=s.status,
                rows_accepted=s.rows_accepted,
                rows_quarantined=s.rows_quarantined,
                submitted_at=s.submitted_at,
            )
            for s in latest
        ],
        open_cases=counts[1],
        users=counts[2] if principal.can(Permission.USERS_READ) else None,
        operators=counts[3],
        agencies=counts[4],
    )


_STATUS_TTL_S = 2.0
_status_cache: dict[tuple[object, ...], tuple[float, SystemStatus]] = {}


def recent_status(session: Session, *, settings: Settings, principal: Principal) -> SystemStatus:
    """:func:`system_status`, reused for two seconds per scope of visibility.

    The home page is hit by everyone, all the time; figures up to two seconds
    old are fine there, and the API's ``/status`` stays exact.
    """
    principal.require(Permission.STATUS_READ)
    key = (
        settings.state_db_url,
        str(settings.data_dir),
        principal.can(Permission.DATA_READ_ALL),
        principal.can(Permission.CASES_MANAGE),
        principal.can(Permission.USERS_READ),
        principal.operator_code,
        principal.agency_code,
    )
    now = time.monotonic()
    hit = _status_cache.get(key)
    if hit is not None and now - hit[0] < _STATUS_TTL_S:
        return hit[1]
    fresh = system_status(session, settings=settings, principal=principal)
    _status_cache[key] = (now, fresh)
    return fresh
