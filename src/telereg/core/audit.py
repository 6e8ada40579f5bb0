"""The append-only audit log: every state-changing operation writes one entry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Delete, Update, event, func, select
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from telereg.core.errors import AuditLogError
from telereg.core.models import AuditEntry, AuditObject


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    objects: Sequence[str] = (),
    reason: str = "",
    detail: dict[str, Any] | None = None,
    client: str = "",
) -> AuditEntry:
    """Add an audit entry to ``session``; it is committed with the change it records."""
    named = list(dict.fromkeys(objects))
    entry = AuditEntry(
        actor=actor,
        action=action,
        objects=named,
        named=[AuditObject(object=obj) for obj in named],
        reason=reason,
        detail=detail or {},
        client=client,
    )
    session.add(entry)
    return entry


def entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    obj: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Entries newest first, filtered, with the total count before paging. ``obj``: only
    those naming that object among theirs (``case:40``, ``token:…``; see :func:`about`)."""
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if obj:
        query = query.where(_naming(obj))
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def about(session: Session, obj: str, *, since: datetime | None = None) -> list[AuditEntry]:
    """The entries that name ``obj`` (``case:40`` …) among their objects, oldest first.

    ``since``: only the entries from then on (a case's creation, say).
    """
    query = select(AuditEntry).where(_naming(obj))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(session.scalars(query.order_by(AuditEntry.id)))


def _naming(obj: str) -> ColumnElement[bool]:
    """Whether an entry names ``obj`` among its objects: looked up in the object index, so
    ``case:40`` is not ``case:401`` and no character of a name is a wildcard."""
    return AuditEntry.id.in_(select(AuditObject.entry_id).where(AuditObject.object == obj))


def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: AuditEntry) -> None:
    raise AuditLogError(f"audit entry {target.id} cannot be changed or deleted")


def _refuse_index_change(_mapper: Mapper[Any], _connection: Any, target: AuditObject) -> None:
    raise AuditLogError(f"the audit log's object index ({target.object}) cannot be changed")


event.listen(AuditEntry, "before_update", _refuse_change)
event.listen(AuditEntry, "before_delete", _refuse_change)
event.listen(AuditObject, "before_update", _refuse_index_change)
event.listen(AuditObject, "before_delete", _refuse_index_change)
_APPEND_ONLY = {AuditEntry.__tablename__, AuditObject.__tablename__}


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_change(state: ORMExecuteState) -> None:
    statement = state.statement
    if not isinstance(statement, Update | Delete):
        return
    if getattr(statement.table, "name", None) in _APPEND_ONLY:
        raise AuditLogError("the audit log is append-only")
