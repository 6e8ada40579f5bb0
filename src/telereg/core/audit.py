"""The append-only audit log: every state-changing operation writes one entry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Delete, Select, Update, event, func, select
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from telereg.core.db import keep_through_rollback
from telereg.core.errors import AuditLogError, InputError
from telereg.core.i18n import N_
from telereg.core.models import AuditEntry, AuditObject
from telereg.core.permissions import Permission
from telereg.core.principal import Principal

#: The columns of an exported log, in order (see :func:`export_row`).
EXPORT_COLUMNS = ("id", "at", "actor", "action", "objects", "reason", "detail", "client")
#: Entries read at a time while an export streams.
EXPORT_BATCH = 1_000
#: The action of the entry an export writes about itself.
EXPORTED = "audit.exported"
#: The address of the web or API client the current request comes from (set for each
#: request by the app): every entry made while serving it records it.
current_client: ContextVar[str] = ContextVar("audit_client", default="")


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
    """Add an audit entry to ``session``; it is committed with the change it records.
    ``client``: the address the request came from (by default the current request's)."""
    named = list(dict.fromkeys(objects))
    entry = AuditEntry(
        actor=actor,
        action=action,
        objects=named,
        named=[AuditObject(object=obj) for obj in named],
        reason=reason,
        detail=detail or {},
        client=client or current_client.get(),
    )
    session.add(entry)
    return entry


def record_refusal(
    session: Session,
    *,
    actor: str,
    action: str,
    objects: Sequence[str] = (),
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add the entry of a refused attempt (a look at a clear number without the permission
    …) to ``session``. Unlike :func:`record`'s, it outlives a rollback of the transaction it
    was added in, which the refusal's error usually causes: it is made again at the
    session's next commit, and a request or command that fails commits it before it ends
    (see :func:`telereg.core.db.keep_through_rollback`)."""
    fields: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "objects": list(objects),
        "reason": reason,
        "detail": detail,
        "client": current_client.get(),
    }
    entry = record(session, **fields)
    keep_through_rollback(session, entry, lambda: record(session, **fields))
    return entry


#: The audit action of a download of row-level data: a list of suspects, a submission's
#: rows or error report. (Counts and aggregates are not.)
DOWNLOADED = "data.downloaded"


def record_download(
    session: Session,
    *,
    actor: str,
    what: str,
    objects: Sequence[str] = (),
    filters: dict[str, Any] | None = None,
) -> AuditEntry:
    """Audit a download of row-level data: what (``suspects.csv``), the objects it is of
    (``submission:12``) and the filters it was taken with (those set)."""
    chosen = {name: value for name, value in (filters or {}).items() if value not in ("", None)}
    return record(
        session,
        actor=actor,
        action=DOWNLOADED,
        objects=[f"download:{what}", *objects],
        detail={"filters": chosen} if chosen else None,
    )


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
    query = _selected(actor=actor, action=action, obj=obj, since=since, until=until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def export(
    session: Session,
    *,
    principal: Principal,
    client: str = "",
    actor: str | None = None,
    action: str | None = None,
    obj: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditEntry:
    """Record that ``principal`` takes the entries the filters select out of the platform.

    The export is itself an entry (``audit.exported``, with the filters and the number of
    entries), to be committed before any entry is handed out; :func:`exported` then reads
    the entries older than it, so the file holds exactly the number recorded.
    """
    principal.require(Permission.AUDIT_READ)
    filters = {"actor": actor, "action": action, "object": obj}
    filters["since"] = since.isoformat() if since else None
    filters["until"] = until.isoformat() if until else None
    query = _selected(actor=actor, action=action, obj=obj, since=since, until=until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    chosen = {name: value for name, value in filters.items() if value}
    return record(
        session,
        actor=principal.name,
        action=EXPORTED,
        detail={"filters": chosen, "entries": total},
        client=client,
    )


def exported(session: Session, export_id: int) -> Iterator[AuditEntry]:
    """The entries the :func:`export` entry ``export_id`` recorded, oldest first, read a
    batch at a time."""
    export_entry = session.get(AuditEntry, export_id)
    if export_entry is None or export_entry.action != EXPORTED:
        raise AuditLogError(f"audit entry {export_id} is not an export")
    chosen, upto = export_entry.detail.get("filters", {}), export_entry.id
    since, until = chosen.get("since"), chosen.get("until")
    query = _selected(
        actor=chosen.get("actor"),
        action=chosen.get("action"),
        obj=chosen.get("object"),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until) if until else None,
    )
    last = 0
    while True:
        batch = session.scalars(
            query.where(AuditEntry.id > last, AuditEntry.id < upto)
            .order_by(AuditEntry.id)
            .limit(EXPORT_BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id
        session.expunge_all()  # a long log is not kept in memory


def export_row(entry: AuditEntry) -> list[str]:
    """An entry as the cells of :data:`EXPORT_COLUMNS` (times in UTC, details as JSON)."""
    return [
        str(entry.id),
        entry.at.isoformat(timespec="seconds"),
        entry.actor,
        entry.action,
        " ".join(entry.objects),
        entry.reason,
        json.dumps(entry.detail, ensure_ascii=False, sort_keys=True) if entry.detail else "",
        entry.client,
    ]


def day_bounds(first: str, last: str) -> tuple[datetime | None, datetime | None]:
    """Days as written (``2026-11-30``; empty for no bound) as the times ``since`` and
    ``until`` take: from the first day's start to the last day's end, in UTC."""
    start, end = _day(first), _day(last)
    since = datetime.combine(start, time(), UTC) if start else None
    until = datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
    return since, until


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as err:
        raise InputError(
            N_("not a day of the calendar (YYYY-MM-DD): {value}").format(value=text)
        ) from err


def _selected(
    *,
    actor: str | None,
    action: str | None,
    obj: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[AuditEntry]:
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
    return query


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
