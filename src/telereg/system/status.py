"""System status for the home page and ``GET /api/v1/status``: real counts, zero where empty."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg import __version__
from telereg.cases.models import OPEN_STATUSES, Case
from telereg.core.accounts import count_active_users
from telereg.core.models import Agency, Operator
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
    """What the principal may see of the system: an operator sees only its own submissions."""
    principal.require(Permission.STATUS_READ)
    submissions = select(Submission)
    cases = select(Case).where(Case.status.in_([s.value for s in OPEN_STATUSES]))
    if not principal.can(Permission.DATA_READ_ALL):
        submissions = submissions.join(Operator).where(Operator.code == principal.operator_code)
    if not principal.can(Permission.CASES_MANAGE):
        if principal.agency_code:
            cases = cases.join(Agency).where(Agency.code == principal.agency_code)
        else:
            cases = cases.join(Operator).where(Operator.code == principal.operator_code)
    count = func.count()
    latest = session.scalars(submissions.order_by(Submission.id.desc()).limit(10)).all()
    return SystemStatus(
        version=__version__,
        engine=settings.engine,
        state_db=session.get_bind().dialect.name,
        datasets=lake_datasets(settings),
        submissions=session.scalar(select(count).select_from(submissions.subquery())) or 0,
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
        open_cases=session.scalar(select(count).select_from(cases.subquery())) or 0,
        users=count_active_users(session) if principal.can(Permission.USERS_READ) else None,
        operators=session.scalar(select(count).select_from(Operator)) or 0,
        agencies=session.scalar(select(count).select_from(Agency)) or 0,
    )
