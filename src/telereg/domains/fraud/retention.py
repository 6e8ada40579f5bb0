"""Retention of hand-over packages: a package's file goes once it is no longer needed.

A package may hold clear numbers, so its file (the encrypted archive) is kept
``handover_retention_days`` after it was made, and longer only while one of its cases is
still in the hands of the agency it was made for (referred, no disposal yet): the agency
may need to fetch it again while it acts. Its record (:class:`HandoverPackage`: who made it,
for whom, when, which cases, the manifest's SHA-256 and signature; no numbers) stays,
marked with when the file was purged, and so does the audit log.

Each package is purged in three steps, each one finished before the next begins: its record
is made complete (made, for a package kept before records existed, and given its manifest's
facts), its file is removed, and the record is marked purged with an audit entry. A purge
stopped between two steps leaves either a complete record and the file (the next run
removes it) or no file and an unmarked record (the next run marks it): a record is never
marked purged while its file remains. Two purges at once do each step once.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from telereg.cases.models import Case, CaseStatus, HandoverPackage
from telereg.core import audit
from telereg.core.db import session_scope
from telereg.core.errors import ConfigurationError, TeleregError
from telereg.core.models import Agency
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import handover

log = logging.getLogger(__name__)

#: The audit action of a package's file removed under the retention policy.
PURGED_ACTION = "fraud.handover.purged"
#: Who purges when the server starts (the CLI purges as its user).
SYSTEM = Principal(name="system:retention", role=Role.ADMIN, via="system")


@dataclass(frozen=True)
class Expired:
    """A package whose file is past its retention period."""

    agency: str
    name: str
    made: datetime
    cases: list[int]
    clear_values: bool
    #: whether its file is still there (not: a purge stopped after removing it)
    file_kept: bool

    def describe(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "name": self.name,
            "made": self.made.isoformat(timespec="seconds"),
            "cases": self.cases,
            "clear_values": self.clear_values,
            "file": "removed" if self.file_kept else "already gone",
        }


@dataclass
class PurgeRun:
    """What a purge did (or, dry, would do)."""

    retention_days: int
    dry_run: bool
    at: datetime
    #: packages whose file was removed (or would be), their records marked purged
    purged: list[Expired] = field(default_factory=list)
    #: packages past the period kept because one of their cases is still with the agency
    kept_open: list[str] = field(default_factory=list)

    @property
    def cutoff(self) -> datetime | None:
        """Packages made at or before this are past the period (none: kept forever)."""
        return self.at - timedelta(days=self.retention_days) if self.retention_days else None

    def describe(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "dry_run": self.dry_run,
            "at": self.at.isoformat(timespec="seconds"),
            "cutoff": self.cutoff.isoformat(timespec="seconds") if self.cutoff else None,
            "purged": [p.describe() for p in self.purged],
            "kept_open": self.kept_open,
        }


def _root(settings: Settings) -> Path:
    return settings.data_dir / "handovers"


def _unrecorded(settings: Settings, recorded: set[tuple[str, str]]) -> list[HandoverPackage]:
    """Records for the packages kept without one (kept before state DB revision 0005, or
    restored from a newer backup than the state DB), read from the packages themselves; one
    that cannot be read is dated by its file, with no cases."""
    root = _root(settings)
    found = []
    for path in sorted(root.glob("*/handover-*.zip")) if root.is_dir() else []:
        agency = path.parent.name
        if (agency, path.name) in recorded or not handover.is_package_name(agency, path.name):
            continue
        record = handover.read_kept(settings, path) or HandoverPackage(
            agency=agency,
            name=path.name,
            cases=[],
            created_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
            created_by="",
            clear_values=False,
            size=0,
        )
        found.append(record)
    return found


def _with_their_agency(session: Session, records: list[HandoverPackage]) -> dict[int, str]:
    """Case id → the agency it is referred to, for the cases of ``records`` still referred."""
    cases = {i for r in records for i in r.cases}
    if not cases:
        return {}
    query = (
        select(Case.id, Agency.code)
        .join(Case.agency)
        .where(Case.status == CaseStatus.REFERRED.value)
    )
    # (read by status, not by id: thousands of cases would bind as many parameters)
    return {i: code for i, code in session.execute(query).all() if i in cases}


def expired(
    session: Session, settings: Settings, *, at: datetime
) -> tuple[list[tuple[HandoverPackage, bool]], list[str]]:
    """The packages past the retention period at ``at`` (each with whether it has a record
    yet), and the names of those kept because a case of theirs is still with the agency."""
    if not settings.handover_retention_days:
        return [], []
    cutoff = at - timedelta(days=settings.handover_retention_days)
    everything = session.scalars(select(HandoverPackage)).all()
    recorded = [(r, True) for r in everything if r.created_at <= cutoff and r.purged_at is None]
    # A purged record whose file is back (restored from a backup) has its file removed again.
    root = _root(settings)
    recorded += [
        (r, True)
        for r in everything
        if r.purged_at is not None and (root / r.agency / r.name).exists()
    ]
    known = {(r.agency, r.name) for r in everything}
    unrecorded = [(r, False) for r in _unrecorded(settings, known) if r.created_at <= cutoff]
    candidates = recorded + unrecorded
    with_agency = _with_their_agency(session, [r for r, _ in candidates])
    due, kept_open = [], []
    for record, has_record in candidates:
        if record.purged_at is None and any(
            with_agency.get(i) == record.agency for i in record.cases
        ):
            kept_open.append(f"{record.agency}/{record.name}")
        else:
            due.append((record, has_record))
    return due, kept_open


def purge(
    settings: Settings,
    *,
    principal: Principal,
    dry_run: bool = False,
    at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeRun:
    """Remove the files of the packages past the retention period (as of ``at``, by default
    now), keeping their records, marked purged, each with an audit entry
    (``fraud.handover.purged``). ``dry_run``: only say which; nothing changes.
    ``progress(done, total)`` is called after each package. Commits as it goes (see the
    module's docstring); running it again finishes what a stopped run left."""
    principal.require(Permission.RETENTION_PURGE)
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    run = PurgeRun(settings.handover_retention_days, dry_run, at)
    with session_scope(settings) as session:
        due, run.kept_open = expired(session, settings, at=at)
        session.expunge_all()
    for done, (record, has_record) in enumerate(due, start=1):
        path = _root(settings) / record.agency / record.name
        if dry_run:
            file_kept = path.exists()
        else:
            _complete(settings, record, path, has_record=has_record)
            file_kept = _remove(path)
            _mark(settings, record, principal=principal, at=at, file_kept=file_kept)
        run.purged.append(
            Expired(
                agency=record.agency,
                name=record.name,
                made=record.created_at,
                cases=list(record.cases),
                clear_values=record.clear_values,
                file_kept=file_kept,
            )
        )
        if progress:
            progress(done, len(due))
    return run


def _complete(settings: Settings, record: HandoverPackage, path: Path, *, has_record: bool) -> None:
    """Step one: the package's record, with its manifest's facts, committed before its file
    goes (a record made by another purge at the same moment is left to it)."""
    if has_record and (record.manifest_sha256 or not path.exists()):
        return
    try:
        record.manifest_sha256, record.signature = handover.signed_facts(
            handover.kept_archive(settings, path)
        )
    except (OSError, ConfigurationError, KeyError, ValueError, zipfile.BadZipFile) as err:
        # (a damaged package goes too: its record says when it was made and what it held)
        log.warning("hand-over package %s: its manifest could not be read: %s", path, err)
    try:
        with session_scope(settings) as session:
            if has_record:
                session.execute(
                    update(HandoverPackage)
                    .where(
                        HandoverPackage.agency == record.agency,
                        HandoverPackage.name == record.name,
                        HandoverPackage.manifest_sha256.is_(None),
                    )
                    .values(manifest_sha256=record.manifest_sha256, signature=record.signature)
                )
            else:
                session.add(record)
                session.flush()
                session.expunge(record)
    except IntegrityError:
        log.info("hand-over package %s was recorded by another purge", path)


def _remove(path: Path) -> bool:
    """Step two: the file; whether it was still there. (A copy staged for it by a hand-over
    whose process ended before publishing it goes too.)"""
    path.with_name(f".{path.name}.staged").unlink(missing_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _mark(
    settings: Settings,
    record: HandoverPackage,
    *,
    principal: Principal,
    at: datetime,
    file_kept: bool,
) -> None:
    """Step three: the record marked purged, with the audit entry, once (a record another
    purge marked first, or marked before its file came back, is audited only if this run
    removed a file)."""
    with session_scope(settings) as session:
        marked = session.execute(
            update(HandoverPackage)
            .where(
                HandoverPackage.agency == record.agency,
                HandoverPackage.name == record.name,
                HandoverPackage.purged_at.is_(None),
            )
            .values(purged_at=at)
        )
        if not (marked.rowcount or file_kept):  # type: ignore[attr-defined]
            return
        audit.record(
            session,
            actor=principal.name,
            action=PURGED_ACTION,
            objects=[
                f"handover:{record.agency}/{record.name}",
                *(f"case:{i}" for i in record.cases),
            ],
            reason=f"retention: kept {settings.handover_retention_days} days",
            detail={
                "made": record.created_at.isoformat(timespec="seconds"),
                "retention_days": settings.handover_retention_days,
                "file": "removed" if file_kept else "already gone",
                "clear_values": record.clear_values,
            },
        )


def purge_at_start(settings: Settings) -> None:
    """The purge the server runs when it starts (as :data:`SYSTEM`); a failure is logged and
    the server starts all the same (the next start, or ``telereg fraud packages purge``,
    tries again). Nothing is read when no package was ever kept."""
    if not settings.handover_retention_days or not _root(settings).is_dir():
        return
    try:
        run = purge(settings, principal=SYSTEM)
    except (TeleregError, SQLAlchemyError, OSError) as err:
        log.warning("hand-over packages past their retention period not purged: %s", err)
        return
    if run.purged:
        log.info(
            "purged %d hand-over package(s) older than %d days",
            len(run.purged),
            run.retention_days,
        )
