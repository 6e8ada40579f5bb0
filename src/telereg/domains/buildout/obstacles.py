"""Site-construction obstacles as cases: open → referred → resolved → closed.

The task force (the administration with the provincial industry department)
takes each obstacle an operator reports, refers it to the department that can
remove it (planning, power supply, land, approval, works), follows it until it
is resolved and closes it. Cases age from the day the operator reported them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.cases import service as cases
from telereg.cases.models import Case, CaseStatus
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.ingest import lake

WORKFLOW = cases.Workflow(
    domain="buildout",
    kind="site_obstacle",
    transitions={
        CaseStatus.OPEN: (CaseStatus.REFERRED, CaseStatus.CLOSED),
        CaseStatus.REFERRED: (CaseStatus.RESOLVED, CaseStatus.REFERRED),
        CaseStatus.RESOLVED: (CaseStatus.CLOSED, CaseStatus.REFERRED),
    },
    needs_handler=(CaseStatus.REFERRED,),
    page="/buildout/obstacles",
)


def open_cases_from_reports(session: Session, *, settings: Settings, principal: Principal) -> int:
    """Open a case for every reported obstacle that has none yet; returns how many."""
    files = lake.current_files(session, settings, "site_obstacles")
    if not files:
        return 0
    reports = (
        duckdb.connect()
        .execute("SELECT * FROM read_parquet(?) ORDER BY reported_date", [[str(f) for f in files]])
        .to_arrow_table()
        .to_pylist()
    )
    # An obstacle is its operator's reference: two operators may number theirs alike.
    # Cases opened before the reference named the operator are known by the id alone.
    earlier = {
        (c.subject.get("operator"), c.reference)
        for c in session.scalars(
            select(Case).where(
                Case.domain == WORKFLOW.domain,
                Case.kind == WORKFLOW.kind,
                Case.reference.not_like("%/%"),
            )
        )
    }
    new = [
        cases.NewCase(
            reference=f"{report['operator']}/{report['obstacle_id']}",
            title=f"{report['site_id']} · {report['description']}",
            subject={
                "obstacle_id": report["obstacle_id"],
                "site_id": report["site_id"],
                "operator": report["operator"],
                "county_code": report["county_code"],
                "kind": report["kind"],
                "department": report["department"],
                "reported_date": report["reported_date"].isoformat(),
            },
            opened_at=_midnight(report["reported_date"]),
        )
        for report in reports
        if (report["operator"], str(report["obstacle_id"])) not in earlier
    ]
    return len(cases.open_cases(session, principal=principal, workflow=WORKFLOW, new=new))


def open_reported_cases(session: Session, *, settings: Settings, principal: Principal) -> object:
    """After a ``site_obstacles`` submission: open the cases its obstacles need.

    The cases are the task force's, opened on the file's arrival whoever sent it (an
    operator may not manage cases), in the sender's name.
    """
    acting = Principal(name=principal.name, role=Role.ADMIN, via=principal.via)
    return open_cases_from_reports(session, settings=settings, principal=acting)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def obstacle_board(
    session: Session, *, principal: Principal, today: date | None = None
) -> dict[str, Any]:
    """Every obstacle case with its age, and counts per department and per kind."""
    today = today or datetime.now(UTC).date()
    rows = cases.cases(session, principal=principal, workflow=WORKFLOW)
    return {
        "cases": [
            {
                "id": c.id,
                # (the operator's own number; the operator is beside it)
                "reference": c.subject.get("obstacle_id", c.reference),
                "title": c.title,
                "status": c.status,
                "handler": c.handler,
                "kind": c.subject.get("kind"),
                "operator": c.subject.get("operator"),
                "suggested_department": c.subject.get("department"),
                "age_days": (
                    (c.closed_at.date() if c.closed_at else today) - c.opened_at.date()
                ).days,
                "next": [s.value for s in WORKFLOW.allowed(c.status)],
            }
            for c in rows
        ],
        "by_department": cases.counts(
            session, principal=principal, workflow=WORKFLOW, by="handler"
        ),
        "by_kind": cases.counts(session, principal=principal, workflow=WORKFLOW, by="kind"),
    }
