from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.db import state_engine
from telereg.core.errors import AuditLogError, InputError, PermissionDeniedError
from telereg.core.models import AuditEntry, AuditObject
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings


def _entry(session: Session) -> AuditEntry:
    entry = audit.record(
        session,
        actor="ann",
        action="cases.close",
        objects=["case:7"],
        reason="resolved",
        detail={"outcome": "line suspended"},
    )
    session.commit()
    return entry


def test_entries_are_listed_newest_first_with_filters(session: Session) -> None:
    for i in range(5):
        audit.record(session, actor="ann" if i % 2 else "bob", action=f"users.x{i}")
    audit.record(session, actor="ann", action="cases.open")
    session.commit()
    rows, total = audit.entries(session, actor="ann")
    assert total == 3
    assert [r.action for r in rows] == ["cases.open", "users.x3", "users.x1"]
    rows, total = audit.entries(session, action="users.", limit=2, offset=1)
    assert total == 5
    assert [r.action for r in rows] == ["users.x3", "users.x2"]


def test_the_orm_refuses_to_change_an_entry(session: Session) -> None:
    entry = _entry(session)
    entry.reason = "edited"
    with pytest.raises(AuditLogError):
        session.flush()
    session.rollback()
    session.delete(session.get(AuditEntry, entry.id))
    with pytest.raises(AuditLogError):
        session.flush()
    session.rollback()


def test_bulk_statements_are_refused(session: Session) -> None:
    _entry(session)
    with pytest.raises(AuditLogError):
        session.execute(update(AuditEntry).values(reason="x"))
    with pytest.raises(AuditLogError):
        session.execute(delete(AuditEntry))
    with pytest.raises(AuditLogError):
        session.execute(update(AuditObject).values(object="case:8"))
    with pytest.raises(AuditLogError):
        session.execute(delete(AuditObject))


def test_the_database_refuses_raw_sql(session: Session, db_settings: Settings) -> None:
    entry = _entry(session)
    engine = state_engine(db_settings)
    for statement in (
        f"UPDATE audit_log SET reason = 'edited' WHERE id = {entry.id}",
        f"DELETE FROM audit_log WHERE id = {entry.id}",
        "UPDATE audit_objects SET object = 'case:8'",
        "DELETE FROM audit_objects",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        reason = connection.execute(text("SELECT reason FROM audit_log")).scalar_one()
        indexed = connection.execute(text("SELECT object FROM audit_objects")).scalars().all()
    assert reason == "resolved"
    assert indexed == ["case:7"]


def test_the_orm_refuses_to_change_the_object_index(session: Session) -> None:
    _entry(session)
    row = session.scalars(select(AuditObject)).one()
    row.object = "case:8"
    with pytest.raises(AuditLogError):
        session.flush()
    session.rollback()
    session.delete(session.scalars(select(AuditObject)).one())
    with pytest.raises(AuditLogError):
        session.flush()
    session.rollback()
    assert [e.objects for e in audit.about(session, "case:7")] == [["case:7"]]


def test_entries_about_an_object_match_it_whole(session: Session) -> None:
    """``case:4`` is not ``case:40``, and ``_`` or ``%`` in a name match only themselves."""
    named = (
        ["case:4"],
        ["case:40", "agency:POLICE-AF"],
        ["agency:X", "case:4"],
        ["c_se:4"],
        ["case%4"],
        ["case:5", "case:5"],
    )
    for objects in named:
        audit.record(session, actor="ann", action="cases.x.open", objects=objects)
    session.commit()
    assert [e.objects for e in audit.about(session, "case:4")] == [
        ["case:4"],
        ["agency:X", "case:4"],
    ]
    assert [e.objects for e in audit.about(session, "case:40")] == [["case:40", "agency:POLICE-AF"]]
    assert [e.objects for e in audit.about(session, "c_se:4")] == [["c_se:4"]]
    assert [e.objects for e in audit.about(session, "case%4")] == [["case%4"]]
    assert [e.objects for e in audit.about(session, "case:5")] == [["case:5"]], "named once"
    rows, total = audit.entries(session, obj="case:4", limit=1)
    assert total == 2
    assert rows[0].objects == ["agency:X", "case:4"], "newest first, as every listing"
    first = audit.about(session, "case:4")[0]
    later = audit.about(session, "case:4", since=first.at)
    assert later == audit.about(session, "case:4"), "entries at or after the time"


def test_an_export_is_recorded_and_holds_exactly_what_it_counted(session: Session) -> None:
    audit.record(session, actor="ann", action="cases.x.open", objects=["case:1"])
    audit.record(session, actor="bob", action="users.add", objects=["user:c"])
    audit.record(session, actor="ann", action="cases.x.closed", objects=["case:1"])
    session.commit()
    admin = Principal(name="ada", role=Role.ADMIN)
    export = audit.export(session, principal=admin, client="10.0.0.9", actor="ann")
    session.commit()
    assert export.action == audit.EXPORTED
    assert export.detail == {"filters": {"actor": "ann"}, "entries": 2}
    assert export.client == "10.0.0.9"
    audit.record(session, actor="ann", action="cases.x.open", objects=["case:2"])
    session.commit()
    rows = [audit.export_row(e) for e in audit.exported(session, export.id)]
    assert [r[3] for r in rows] == ["cases.x.open", "cases.x.closed"], "oldest first, no later"
    assert rows[0][4] == "case:1"
    with pytest.raises(AuditLogError, match="not an export"):
        list(audit.exported(session, int(rows[0][0])))


def test_an_export_needs_the_audit_permission(session: Session) -> None:
    audit.record(session, actor="ann", action="cases.x.open")
    session.commit()
    with pytest.raises(PermissionDeniedError):
        audit.export(session, principal=Principal(name="ann", role=Role.ANALYST))
    session.rollback()
    assert [e.action for e in audit.entries(session)[0]] == ["cases.x.open"], "nothing recorded"


@pytest.mark.parametrize(
    ("first", "last", "since", "until"),
    [
        ("", "", None, None),
        ("2026-11-01", "", datetime(2026, 11, 1, tzinfo=UTC), None),
        ("", "2026-11-30", None, datetime(2026, 12, 1, tzinfo=UTC)),
        (
            "2026-02-28",
            "2026-02-28",
            datetime(2026, 2, 28, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
    ],
)
def test_days_bound_whole_days_in_utc(
    first: str, last: str, since: datetime | None, until: datetime | None
) -> None:
    assert audit.day_bounds(first, last) == (since, until)


@pytest.mark.parametrize("day", ["2026-02-31", "30/11/2026", "yesterday"])
def test_a_day_that_is_not_one_is_refused(day: str) -> None:
    with pytest.raises(InputError, match=f"not a day of the calendar.*{re.escape(day)}"):
        audit.day_bounds("2026-01-01", day)


def test_every_action_the_code_records_has_words_on_the_audit_page() -> None:
    """The audit page's words for actions (``web.terms``) keep up with the actions written."""
    from pathlib import Path

    from telereg.domains.fraud import casework
    from telereg.ingest import service as ingest
    from telereg.web.terms import audit_action

    source = Path(audit.__file__).resolve().parent.parent
    written = set()
    for path in source.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        # action="x.y", and both actions of action="x.y" if … else "x.z"
        written |= set(re.findall(r'(?:action=|else )"([a-z_]+\.[a-z_.]+)"', text))
    written |= {audit.EXPORTED, casework.HANDOVER_ACTION, ingest.REINSTATED}
    assert {"auth.login", "auth.locked", "auth.login_failed"} <= written, "the search finds them"
    states = ("open", "in_review", "referred", "resolved", "closed")
    cases = [
        f"cases.{kind}.{state}" for kind in ("fraud_suspect", "site_obstacle") for state in states
    ]
    jobs = [f"job.{status}" for status in ("succeeded", "failed", "cancelled", "interrupted")]
    for action in [*sorted(written), *cases, *jobs]:
        assert audit_action(action) != action, f"no words for the action {action}"
