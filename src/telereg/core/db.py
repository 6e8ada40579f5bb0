"""State DB: SQLAlchemy engine, session factory and declarative base."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from telereg.core.errors import InputError
from telereg.core.i18n import N_
from telereg.core.settings import Settings, ensure_data_dir, owner_only

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A text longer than its column holds: refused before the database sees it, on every
#: backend alike (PostgreSQL refuses it at commit, SQLite would keep it).
TOO_LONG = N_("{field} is longer than {length} characters")


@event.listens_for(Session, "before_flush")
def _within_lengths(session: Session, _context: Any, _instances: Any) -> None:
    for row in (*session.new, *session.dirty):
        mapper = inspect(row).mapper
        for attribute in mapper.column_attrs:
            column = attribute.columns[0]
            length = getattr(column.type, "length", None)
            if not isinstance(column.type, String) or not length:
                continue
            value = getattr(row, attribute.key)
            if isinstance(value, str) and len(value) > length:
                raise InputError(TOO_LONG.format(field=attribute.key, length=length))


#: ``Session.info`` key: rows kept through a rollback (see :func:`keep_through_rollback`).
_KEPT = "telereg.kept_through_rollback"


def keep_through_rollback(session: Session, row: object, remake: Callable[[], object]) -> None:
    """Keep ``row``, just added to ``session``, even if the transaction it was added in (the
    request's, a form's savepoint) is rolled back: ``remake`` adds it again at the session's
    next commit. For the record of a refusal, which the refusal's own error rolls back.

    A session closed after a rollback commits it first with :func:`commit_kept`.
    """
    session.info.setdefault(_KEPT, []).append([row, remake])


@event.listens_for(Session, "before_commit")
def _remake_kept(session: Session) -> None:
    for kept in session.info.get(_KEPT, ()):
        if inspect(kept[0]).transient:  # rolled back, with the step that was refused
            kept[0] = kept[1]()


@event.listens_for(Session, "after_commit")
def _forget_kept(session: Session) -> None:
    session.info.pop(_KEPT, None)


def commit_kept(session: Session) -> None:
    """After ``session`` was rolled back, before it is closed: commit the rows kept through
    the rollback (nothing when there are none). A failure to do so is logged, not raised, so
    that the error that caused the rollback is the one reported."""
    if not session.info.get(_KEPT):
        return
    try:
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("rows kept through a rollback (refusals' audit entries) were lost")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


_engines: dict[str, Engine] = {}


def state_engine(settings: Settings) -> Engine:
    """The (cached) SQLAlchemy engine for the configured state DB."""
    url = settings.state_db_url
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            ensure_data_dir(settings.data_dir)
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            with engine.connect():
                pass  # creates the file, so that its mode can be narrowed now
            database = engine.url.database
            if database and database != ":memory:":
                owner_only(Path(database))
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
    return engine


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(state_engine(settings), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (keeping what was
    recorded to outlive it, see :func:`keep_through_rollback`)."""
    session = session_factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        commit_kept(session)
        raise
    finally:
        session.close()
