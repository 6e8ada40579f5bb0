"""Ingest: one operator file in, validated rows to the lake, bad rows to quarantine.

The work runs in a private DuckDB connection over a staging directory; the
state DB is touched only briefly at the start (duplicate check) and at the end,
where one transaction records the submission and supersedes the slot's
previous one. New identifiers go to the sealed vault files before that. An
ingest killed at any point leaves no visible data.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.accounts import get_operator
from telereg.core.db import session_scope, utcnow
from telereg.core.errors import InputError, PermissionDeniedError, StorageError, TeleregError
from telereg.core.geo import gcj02_to_wgs84
from telereg.core.models import Operator
from telereg.core.periods import month_problem
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.core.privacy import (
    WRITTEN_NUMBER,
    IdentifierKind,
    Pseudonymiser,
    Vault,
    mask_digits,
)
from telereg.core.settings import Settings
from telereg.ingest import lake, readers, reasons
from telereg.ingest.contracts import Column, ColumnType, Contract, FileFormat, normalise_header
from telereg.ingest.models import Submission, SubmissionStatus
from telereg.ingest.validate import (
    FIRST_YEAR,
    LAST_YEAR,
    LOCAL_ZONE,
    ROW,
    Check,
    Period,
    any_flag,
    blank,
    error_rows,
    flag_rows,
    plausible,
    row_checks,
    set_checks,
    typed,
)
from telereg.reference.directory import ADMINISTRATION
from telereg.reference.regions import load_regions

log = logging.getLogger(__name__)

Crs = Literal["wgs84", "gcj02"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SubmissionRecord:
    """What a submitter is told, on the CLI (``--json``), in the API and on the web."""

    id: int
    dataset: str
    operator: str
    period: str
    filename: str
    status: str
    rows_total: int
    rows_accepted: int
    rows_quarantined: int
    message: str
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    duplicate_of: int | None = None
    #: the same bytes as a replaced submission: that submission is in use again
    reinstated: bool = False
    superseded: int | None = None
    #: the submission that replaced this one in its slot, if one did
    superseded_by: int | None = None
    current: bool = False
    submitted_at: str = ""

    @classmethod
    def of(cls, s: Submission, **extra: Any) -> SubmissionRecord:
        return cls(
            id=s.id,
            dataset=s.dataset,
            operator=s.operator.code,
            period=s.period,
            filename=s.filename,
            status=s.status,
            rows_total=s.rows_total,
            rows_accepted=s.rows_accepted,
            rows_quarantined=s.rows_quarantined,
            message=s.message,
            errors_by_reason=dict(s.errors_by_reason),
            superseded_by=s.superseded_by_id,
            current=s.current,
            submitted_at=s.submitted_at.isoformat(timespec="seconds"),
            **extra,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Result:
    status: SubmissionStatus
    rows_total: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    message: str = ""
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    period: str = ""
    encoding: str = ""
    file_format: str = ""
    staged: dict[str, Path] = field(default_factory=dict)


def file_sha256(path: Path) -> tuple[str, int]:
    """The file's SHA-256, and its number of lines (as a CSV's: see ``_renumbered``)."""
    digest = hashlib.sha256()
    newlines, last = 0, b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), newlines + (1 if last not in (b"", b"\n") else 0)


def _check_period(contract: Contract, period: str | None) -> str | None:
    if period is not None and (problem := month_problem(period)) is not None:
        raise InputError(problem)
    if period is not None:
        # A month not yet begun, or before the years a date may fall in, is a typing slip
        # (2012 for 2021): filed, it would stand beside the month meant, or pass for the
        # newest month in the analyses.
        current = datetime.now(ZoneInfo(LOCAL_ZONE)).strftime("%Y-%m")
        if period > current:
            raise InputError(reasons.PERIOD_AFTER_NOW.format(period=period, current=current))
        if int(period[:4]) < FIRST_YEAR:
            raise InputError(reasons.PERIOD_TOO_EARLY.format(period=period, first=FIRST_YEAR))
    if period is None and contract.period_column is None and not contract.standing:
        # Without it the file would be filed under today's month, beside the list it
        # corrects instead of replacing it.
        raise InputError(reasons.PERIOD_REQUIRED.format(dataset=contract.name))
    return period


def ingest_file(
    settings: Settings,
    *,
    principal: Principal,
    contract: Contract,
    path: Path,
    filename: str,
    operator: str,
    period: str | None = None,
    crs: Crs = "wgs84",
    progress: Progress | None = None,
) -> SubmissionRecord:
    """Validate ``path`` against ``contract`` and record the submission.

    Same bytes for the same dataset, operator, period (when one is given) and
    coordinate system change nothing and return the earlier record, unless that
    one was rejected (what it lacked, such as the operator's cells, may have
    arrived since). File-level problems (unreadable, wrong columns) and row
    problems are recorded in the submission, not raised; raised errors mean the
    request itself was wrong (permission, unknown operator, bad period).

    Of two submissions for one slot, the one received later stays current,
    whichever finishes first. Once a submission is in use (accepted, partly accepted,
    reinstated or sent again), the contract's ``after_ingest`` runs, after the record is
    committed: a file sent again runs it again, which retries a follow-up that failed.
    """
    record = _ingest(
        settings,
        principal=principal,
        contract=contract,
        path=path,
        filename=filename,
        operator=operator,
        period=period,
        crs=crs,
        progress=progress,
    )
    if contract.after_ingest is not None and record.status != SubmissionStatus.REJECTED.value:
        with session_scope(settings) as session:
            contract.after_ingest(session, settings=settings, principal=principal)
    return record


def _ingest(
    settings: Settings,
    *,
    principal: Principal,
    contract: Contract,
    path: Path,
    filename: str,
    operator: str,
    period: str | None,
    crs: Crs,
    progress: Progress | None,
) -> SubmissionRecord:
    step = progress or (lambda _stage: None)
    principal.require(Permission.DATA_SUBMIT)
    if principal.role is Role.OPERATOR and principal.operator_code != operator:
        raise PermissionDeniedError(reasons.OWN_OPERATOR_ONLY)
    if principal.role is Role.OPERATOR and contract.administration_only:
        # Corridors and key places are what operators' coverage is measured against, and
        # police feedback is what the fraud model learns from.
        raise PermissionDeniedError(reasons.ADMINISTRATION_ONLY.format(dataset=contract.name))
    if contract.administration_only and operator != ADMINISTRATION:
        # Filed under an operator's code, the administration's list would pass for that
        # operator's own report.
        raise InputError(
            reasons.ADMINISTRATION_CODE.format(dataset=contract.name, code=ADMINISTRATION)
        )
    _check_period(contract, period)
    filename = shown_filename(filename)
    received = utcnow()
    step("hashing")
    digest, lines = file_sha256(path)
    with session_scope(settings) as session:
        operator_row = get_operator(session, operator)
        earlier = _same_bytes(session, contract, operator_row.id, digest, period, crs)
        if earlier is not None and not earlier.current and earlier.superseded_by_id:
            return _reinstate(session, principal, earlier, digest)
        # A partly accepted file sent again is checked again: the cells or codes its
        # quarantined rows lacked may have arrived since.
        recheck = earlier.id if earlier is not None and _may_recheck(earlier) else None
        if earlier is not None and recheck is None:
            return SubmissionRecord.of(earlier, duplicate_of=earlier.id)
        recheck_accepted = earlier.rows_accepted if earlier is not None else 0
        operator_id = operator_row.id

    file_id = uuid.uuid4().hex
    lake.sweep_leftovers(settings)
    with (
        storage_errors(filename),
        lake.staging(settings) as workdir,
        lake.scratch(settings) as scratch,
    ):
        try:
            result = _process(
                settings,
                contract=contract,
                path=path,
                filename=filename,
                operator=operator,
                period=period,
                crs=crs,
                workdir=workdir,
                scratch=scratch,
                step=step,
                lines=lines,
            )
        except InputError as err:
            result = _Result(
                SubmissionStatus.REJECTED, message=str(err.message), period=period or ""
            )
        if recheck is not None and result.rows_accepted <= recheck_accepted:
            # Nothing more passes: the same bytes change nothing (the staged files go).
            with session_scope(settings) as session:
                same = session.get(Submission, recheck)
                assert same is not None
                return SubmissionRecord.of(same, duplicate_of=same.id)
        step("publishing")
        finals = {
            "accepted": lake.accepted_path(
                settings, contract.name, operator, result.period, file_id
            ),
            "quarantine": lake.quarantine_path(settings, contract.name, file_id),
            "errors": lake.errors_path(settings, file_id),
        }
        # The files are in place before the record that names them, so readers never see a
        # record without its files; they are withdrawn again if no record comes to name them.
        published = [finals[kind] for kind in result.staged]
        with lake.withdrawn_unless_recorded(settings, file_id, published) as recorded:
            for kind, staged in result.staged.items():
                lake.publish(staged, finals[kind])
            with session_scope(settings) as session:
                record = _record(
                    session,
                    settings=settings,
                    principal=principal,
                    contract=contract,
                    operator_id=operator_id,
                    filename=filename,
                    digest=digest,
                    size=path.stat().st_size,
                    file_id=file_id,
                    result=result,
                    accepted_path=finals["accepted"] if "accepted" in result.staged else None,
                    crs=crs,
                    received=received,
                    period=period,
                    recheck=recheck,
                )
            # (after the commit: a failed commit leaves the files unnamed)
            recorded(record.duplicate_of is None)
    step("done")
    return record


#: Where a name sent with a file may break into folders: browsers on Windows may send the
#: sender's own path (``C:\\Users\\张三\\小区.csv``).
_FOLDERS = re.compile(r"[\\/]")


def shown_filename(filename: str) -> str:
    """The name of a file sent, as it is kept and shown: its last part (of a path written
    with either separator), without control characters or the marks that reorder text on
    screen (U+202E before ``exe.csv`` shows it as ``vsc.exe``), numbers masked (a file may be
    named after the person it is about: 投诉_13812345678_张三.csv); ``upload`` when that
    leaves no name."""
    parts = [part for part in _FOLDERS.split(filename) if part]
    last = parts[-1] if parts else ""
    kept = "".join(ch for ch in last if unicodedata.category(ch) not in ("Cc", "Cf")).strip()
    return mask_digits(kept)[:255] if kept not in ("", ".", "..") else "upload"


@contextmanager
def storage_errors(filename: str) -> Iterator[None]:
    """A full disk or a data dir that cannot be written to (the engine's or the file
    system's error) in the block, raised as :class:`StorageError` naming the file sent
    (``filename``, numbers in it masked): what the block staged goes with its directories,
    and published files are withdrawn."""
    try:
        yield
    except TeleregError:
        raise  # (ours, a PermissionError such as a refusal among them, say what they are)
    except (duckdb.IOException, OSError) as err:
        raise StorageError(
            reasons.CANNOT_STORE.format(detail=readers.first_line(err)),
            where=shown_filename(filename),
        ) from err


def _same_bytes(
    session: Session,
    contract: Contract,
    operator_id: int,
    digest: str,
    period: str | None,
    crs: Crs,
) -> Submission | None:
    """An earlier submission of these bytes that was not rejected, for the same slot.

    The one in use if there is one, else the latest.
    """
    found = session.scalars(
        select(Submission)
        .where(
            Submission.dataset == contract.name,
            Submission.operator_id == operator_id,
            Submission.content_sha256 == digest,
            Submission.status != SubmissionStatus.REJECTED.value,
        )
        .order_by(Submission.current.desc(), Submission.id.desc())
    ).all()
    for earlier in found:
        same_crs = (earlier.options or {}).get("crs", "wgs84") == crs
        if same_crs and (period is None or earlier.period == period):
            return earlier
    return None


def _days_lacking(
    settings: Settings, contract: Contract, earlier: Submission, accepted: Path
) -> str:
    """A note when the file replacing ``earlier`` does not span its days (the first half
    of a month replaced by the second, as two parts of one month sent apart), else "".

    Read from the files' column statistics (their footers, not their rows): this runs
    while the operator's submissions are locked."""
    if not earlier.lake_path or not contract.period_column:
        return ""
    was = _date_span(settings.lake_dir / earlier.lake_path, contract.period_column)
    now = _date_span(accepted, contract.period_column)
    if was is None or now is None or (was[0] >= now[0] and was[1] <= now[1]):
        return ""
    return reasons.DAYS_LACKING.format(
        id=earlier.id, was=f"{was[0]}–{was[1]}", now=f"{now[0]}–{now[1]}"
    )


def _date_span(path: Path, column: str) -> tuple[date, date] | None:
    """The first and last day of a date or time column of a Parquet file, from its row
    groups' statistics; None when they are not there."""
    try:
        found = pq.ParquetFile(path)
        place = found.schema_arrow.get_field_index(column)
        lows, highs = [], []
        for group in range(found.metadata.num_row_groups):
            stats = found.metadata.row_group(group).column(place).statistics
            if stats is None or not stats.has_min_max:
                return None
            lows.append(stats.min)
            highs.append(stats.max)
    except (OSError, ValueError, IndexError, pa.ArrowException):
        return None
    if not lows:
        return None
    return _day(min(lows)), _day(max(highs))


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _may_recheck(earlier: Submission) -> bool:
    """Whether the same bytes as ``earlier`` (in use) are worth reading again: some of its
    rows were quarantined for a value another dataset must know (a cell, a code)."""
    reasons_seen = " ".join(earlier.errors_by_reason or {})
    unknown = reasons.UNKNOWN_VALUE.split("{")[0].strip()
    return (
        earlier.current
        and earlier.status == SubmissionStatus.PARTIAL.value
        and unknown in reasons_seen
    )


def _reinstate(
    session: Session, principal: Principal, earlier: Submission, digest: str
) -> SubmissionRecord:
    """The bytes of a replaced submission, sent again: that submission is in use again.

    An operator that finds its correction wrong sends the original once more; the
    correction stays retrievable, as every replaced submission does.
    """
    session.execute(
        update(Operator).where(Operator.id == earlier.operator_id).values(id=Operator.id)
    )
    in_use = session.scalars(
        select(Submission)
        .where(
            Submission.dataset == earlier.dataset,
            Submission.operator_id == earlier.operator_id,
            Submission.period == earlier.period,
            Submission.current,
        )
        .with_for_update(of=Submission)
    ).all()
    for other in in_use:
        other.current = False
        other.superseded_by_id = earlier.id
    earlier.current = True
    earlier.superseded_by_id = None
    withdrawn = [other.id for other in in_use]
    audit.record(
        session,
        actor=principal.name,
        action=REINSTATED,
        objects=[f"submission:{earlier.id}", f"dataset:{earlier.dataset}"]
        + [f"submission:{i}" for i in withdrawn],
        detail={"sha256": digest, "withdrawn": withdrawn},
    )
    session.flush()
    session.refresh(earlier)
    return SubmissionRecord.of(
        earlier,
        duplicate_of=earlier.id,
        reinstated=True,
        superseded=withdrawn[0] if withdrawn else None,
    )


def _record(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    contract: Contract,
    operator_id: int,
    filename: str,
    digest: str,
    size: int,
    file_id: str,
    result: _Result,
    accepted_path: Path | None,
    crs: Crs,
    received: datetime,
    period: str | None,
    recheck: int | None = None,
) -> SubmissionRecord:
    # Submissions of one operator are recorded one at a time: this write comes first, so
    # PostgreSQL holds the operator's row and SQLite its write lock until the commit, and
    # what is read below includes any submission recorded meanwhile.
    session.execute(update(Operator).where(Operator.id == operator_id).values(id=Operator.id))
    if result.status is not SubmissionStatus.REJECTED:
        # The same bytes, sent again while this ingest ran, were recorded first.
        twin = _same_bytes(session, contract, operator_id, digest, period, crs)
        if twin is not None and twin.id != recheck:
            return SubmissionRecord.of(twin, duplicate_of=twin.id)
    accepted = result.status is not SubmissionStatus.REJECTED
    submission = Submission(
        dataset=contract.name,
        operator_id=operator_id,
        period=result.period or "",
        filename=filename,
        content_sha256=digest,
        file_format=result.file_format,
        encoding=result.encoding,
        size_bytes=size,
        status=result.status.value,
        rows_total=result.rows_total,
        rows_accepted=result.rows_accepted,
        rows_quarantined=result.rows_quarantined,
        # (the file's own words, such as a sheet's name or a reader's error, may be in it)
        message=mask_digits(result.message)[:1000],
        errors_by_reason=result.errors_by_reason,
        file_id=file_id,
        lake_path=str(accepted_path.relative_to(settings.lake_dir)) if accepted_path else "",
        options={"crs": crs},
        current=accepted,
        submitted_by=principal.name,
        submitted_at=received,
    )
    session.add(submission)
    session.flush()
    superseded = None
    if accepted:
        previous = session.scalars(
            select(Submission)
            .where(
                Submission.dataset == contract.name,
                Submission.operator_id == operator_id,
                Submission.period == submission.period,
                Submission.current,
                Submission.id != submission.id,
            )
            .with_for_update(of=Submission)  # (not the joined operator: an outer join)
        ).all()
        later = [old for old in previous if old.submitted_at > received]
        if later:
            # A correction received after this file finished first: it stays current.
            submission.current = False
            submission.superseded_by_id = later[0].id
            arrival = reasons.SUPERSEDED_ON_ARRIVAL.format(id=later[0].id)
            submission.message = f"{submission.message}; {arrival}"[:1000]
        else:
            for old in previous:
                old.current = False
                old.superseded_by_id = submission.id
                superseded = old.id
            shrunk = [old for old in previous if submission.rows_accepted * 2 < old.rows_accepted]
            if shrunk:
                # Not refused: a correction may well drop rows. But a month of data replaced
                # by a few rows is more often the wrong file, so the record says so.
                note = reasons.FEWER_ROWS.format(
                    id=shrunk[0].id,
                    before=f"{shrunk[0].rows_accepted:,}",
                    now=f"{submission.rows_accepted:,}",
                )
                submission.message = f"{submission.message}; {note}"[:1000]
            if accepted_path is not None and contract.period_column and not shrunk:
                for old in previous:
                    if lacking := _days_lacking(settings, contract, old, accepted_path):
                        submission.message = f"{submission.message}; {lacking}"[:1000]
    audit.record(
        session,
        actor=principal.name,
        action="ingest.submit",
        objects=[f"submission:{submission.id}", f"dataset:{contract.name}"]
        + ([f"submission:{superseded}"] if superseded else []),
        detail={
            "status": submission.status,
            "rows_accepted": submission.rows_accepted,
            "rows_quarantined": submission.rows_quarantined,
            "superseded": superseded,
            "sha256": digest,
        },
    )
    session.flush()
    session.refresh(submission)
    return SubmissionRecord.of(submission, superseded=superseded)


#: the audit action of a replaced submission put back in use
REINSTATED = "ingest.reinstate"

_CHECKED = "checked_rows"
_SET_FAILED = "set_failed_rows"
_ROW_BAD = "__row_bad"


@dataclass
class _Loaded:
    """A file read into the work table: its rows, lines that could not be read, notes."""

    rows: ir.Table
    unreadable: list[readers.Unreadable]
    source: readers.Source
    notes: list[str]
    total: int


def _process(
    settings: Settings,
    *,
    contract: Contract,
    path: Path,
    filename: str,
    operator: str,
    period: str | None,
    crs: Crs,
    workdir: Path,
    scratch: Path,
    step: Progress,
    lines: int,
) -> _Result:
    """Read, check and write one file: finished files to ``workdir`` (in the lake's staging),
    work on clear values (a transcoded copy, DuckDB's spill) in ``scratch`` (outside it)."""
    backend = ibis.duckdb.connect(temp_directory=str(scratch / "spill"))
    backend.con.execute("SET enable_progress_bar = false")
    step("reading")
    loaded = _load(backend, contract, path=path, filename=filename, workdir=scratch, lines=lines)
    rows = loaded.rows
    resolved, period_notes = _resolve_period(contract, rows, period)
    loaded.notes.extend(period_notes)

    step("validating")
    set_rules = _set_rules(backend, settings, contract, rows, operator, resolved)
    flagged = flag_rows(rows, set_rules, prefix="__chk_s")
    # Set rules run once over the table; only the (usually few) rows that break one are kept.
    set_failed = _materialise(backend, _SET_FAILED, flagged.filter(any_flag(flagged, ("__chk_s",))))
    errors_file = workdir / "errors.parquet"
    # Most files are clean: then there is no report to build (it costs more than the check).
    row_bad = int(rows.filter(rows[_ROW_BAD]).count().to_pyarrow().as_py())
    set_bad = int(set_failed.count().to_pyarrow().as_py())
    summary = (
        _write_errors(backend, contract, loaded, (set_failed, set_rules), errors_file)
        if loaded.unreadable or row_bad or set_bad
        else []
    )
    staged = {"errors": errors_file} if summary else {}

    step("pseudonymising")
    tokens = _token_maps(backend, settings, contract, rows)
    failed = rows[ROW].isin(set_failed.select(ROW)[ROW])
    good_rows = rows.filter(~rows[_ROW_BAD] & ~failed)
    accepted = int(good_rows.count().to_pyarrow().as_py())
    quarantined = loaded.total - accepted

    step("writing")
    if accepted:
        good = _tokenised(good_rows, contract, tokens, typed_values=True)
        good = good.mutate(operator=ibis.literal(operator), period=ibis.literal(resolved))
        if crs == "gcj02":
            good = _to_wgs84(backend, contract, good)
        staged["accepted"] = workdir / "accepted.parquet"
        # Row order in the lake does not matter (source_row keeps it), and letting DuckDB
        # write out of order lets both cores write.
        backend.con.execute("SET preserve_insertion_order = false")
        # zstd at level 1: tokens are 32 hex characters that snappy barely shrinks; this
        # writes a CDR file 44 % smaller than snappy, a little faster, and reads as fast.
        backend.to_parquet(good, staged["accepted"], compression="zstd", compression_level=1)
        backend.con.execute("SET preserve_insertion_order = true")
    if quarantined:
        bad = _tokenised(rows.filter(rows[_ROW_BAD] | failed), contract, tokens, typed_values=False)
        staged["quarantine"] = workdir / "quarantine.parquet"
        _write_quarantine(backend, bad, loaded.unreadable, errors_file, staged["quarantine"])

    step("storing identifiers")
    vault = Vault.of(settings)
    for kind, table in tokens.items():
        vault.store(table.select("token", "clear").to_pyarrow(), kind)
    if accepted == 0:
        status, message = SubmissionStatus.REJECTED, reasons.NO_ROW_PASSED
        if hint := _other_month(contract, rows, resolved, summary, loaded.total):
            message = f"{message}; {hint}"
    elif quarantined:
        status = SubmissionStatus.PARTIAL
        # (counts grouped by thousands, as the pages show the submission's other counts)
        message = reasons.SOME_QUARANTINED.format(
            quarantined=f"{quarantined:,}", total=f"{loaded.total:,}"
        )
    else:
        status = SubmissionStatus.ACCEPTED
        message = reasons.ALL_ACCEPTED.format(total=f"{loaded.total:,}")
    return _Result(
        status=status,
        rows_total=loaded.total,
        rows_accepted=accepted,
        rows_quarantined=quarantined,
        message="; ".join([message, *loaded.notes]),
        errors_by_reason={f"{r['column']}: {r['reason']}": int(r["n"]) for r in summary},
        period=resolved,
        encoding=loaded.source.encoding,
        file_format=loaded.source.format.value,
        staged=staged,
    )


def _other_month(
    contract: Contract, rows: ir.Table, period: str, summary: list[dict[str, Any]], total: int
) -> str:
    """When every row is outside the period given, the month the rows are in: a file sent
    with the wrong period more often than a month of wrong dates."""
    column = contract.period_column
    outside = reasons.OUTSIDE_PERIOD.format(period=period)
    held = sum(int(r["n"]) for r in summary if r["column"] == column and r["reason"] == outside)
    if not column or not total or held < total:
        return ""
    try:
        month, _ = _resolve_period(contract, rows, None)
    except InputError:
        return ""
    return reasons.ROWS_IN_MONTH.format(month=month, period=period) if month != period else ""


def _write_quarantine(
    backend: Any,
    bad: ir.Table,
    unreadable: list[readers.Unreadable],
    errors_file: Path,
    target: Path,
) -> None:
    """The quarantined rows with their reasons, and the unreadable lines as sent."""
    found = backend.read_parquet(errors_file)
    # Each reason names its column, as the error report does: "duration_s: below the minimum 0".
    why = found.group_by("row").agg(
        reasons=(found.column + ibis.literal(": ") + found.reason).group_concat("; ")
    )
    bad = bad.left_join(why, bad.source_row == why.row).drop("row")
    if unreadable:
        # Kept as sent (identifiers masked): the reader could not tell its values apart.
        bad = ibis.union(
            bad.mutate(raw_line=ibis.null("string")),
            _unreadable_quarantine(unreadable, bad.schema()),
        )
    backend.to_parquet(bad.order_by("source_row"), target)


def _read(
    backend: Any, contract: Contract, *, path: Path, filename: str, workdir: Path
) -> tuple[readers.Source, list[str], list[readers.Unreadable]]:
    """The file read into the work table with its row rules checked (see ``validate``), read
    again as GB18030 where its later lines show it is: its source, notes and unreadable
    lines."""
    con = backend.con
    # The format is told from the file's first bytes, and a format the dataset does not
    # take is refused before the file is read (a large GeoJSON is parsed whole).
    sent = readers.sniff_format(path, display_name=filename)
    if sent not in contract.formats:
        accepted_formats = ", ".join(f.value for f in contract.formats)
        raise InputError(
            reasons.WRONG_FORMAT.format(
                dataset=contract.name, formats=accepted_formats, format=sent.value
            )
        )
    source = readers.open_source(
        con,
        path,
        display_name=filename,
        workdir=workdir,
        geometry_column=contract.geometry_column,
        known_headers=contract.header_map(),
        file_format=sent,
    )
    mapping, notes = _mapping_sql(contract, source)
    try:
        _read_and_check(backend, contract, mapping)
    except duckdb.InvalidInputException as err:
        if source.format is not FileFormat.CSV or not readers.is_encoding_error(err):
            raise InputError(
                reasons.CANNOT_READ.format(detail=readers.first_line(err)), where=filename
            ) from err
        # The head looked like UTF-8 but later bytes are not: operators' GBK exports do this.
        source = readers.reopen_as_gb18030(con, path, workdir, filename)
        mapping, notes = _mapping_sql(contract, source)
        try:
            _read_and_check(backend, contract, mapping)
        except duckdb.Error as again:
            raise InputError(
                reasons.CANNOT_READ_GBK.format(detail=readers.first_line(again)), where=filename
            ) from again
    unreadable = readers.csv_unreadable(con) if source.format is FileFormat.CSV else []
    if (
        source.encoding == "utf-8"
        and any(u.bad_encoding for u in unreadable)
        and readers.head_is_ascii(path)
    ):
        # An English header and plain rows first, Chinese text in GBK further down: the
        # head read as UTF-8, and the reader set the later lines aside as unreadable.
        try:
            source = readers.reopen_as_gb18030(con, path, workdir, filename)
        except InputError:
            pass  # not GB18030 either: the lines stay unreadable, each with its reason
        else:
            mapping, notes = _mapping_sql(contract, source)
            try:
                _read_and_check(backend, contract, mapping)
            except duckdb.Error as again:
                raise InputError(
                    reasons.CANNOT_READ_GBK.format(detail=readers.first_line(again)),
                    where=filename,
                ) from again
            unreadable = readers.csv_unreadable(con)
    return source, notes, unreadable


def _load(
    backend: Any, contract: Contract, *, path: Path, filename: str, workdir: Path, lines: int
) -> _Loaded:
    """Read the file once, checking each row's own rules on the way (see ``validate``).
    ``lines``: the file's lines, which tell whether the CSV reader skipped empty ones."""
    con = backend.con
    source, notes, unreadable = _read(
        backend, contract, path=path, filename=filename, workdir=workdir
    )
    notes += source.notes
    if normalised := _second_chance(backend, contract):
        notes.append(reasons.NORMALISED.format(count=normalised))
    blank = " AND ".join(f'"{c.name}" IS NULL' for c in contract.columns)
    kept, empty = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({blank})), count(*) FILTER (WHERE {blank}) "
        f"FROM {_CHECKED}"
    ).fetchone() or (0, 0)
    skipped = [u.line for u in unreadable]
    read = 1 + int(kept) + int(empty) + len(unreadable)
    if _lines_unaccounted(source, lines - source.title_lines, read):
        skipped += readers.empty_lines(source.text_path) if source.text_path else []
    if skipped:
        readers.renumber_after_rejects(con, _CHECKED, skipped)
    # (lines are counted from the header; a title above it moves them all down)
    below = source.title_lines
    numbered = f"SELECT * REPLACE (coalesce({ROW}, rowid + 2) + {below} AS {ROW}) FROM {_CHECKED}"
    unreadable = [replace(u, line=u.line + below) for u in unreadable]
    if empty:
        # A row with no value at all (``,,,,``: Excel saves formatted empty rows so) is no
        # record: it is skipped and counted in a note, not quarantined column by column.
        numbered = f"SELECT * FROM ({numbered}) WHERE NOT ({blank})"
        notes.append(reasons.BLANK_ROWS.format(count=int(empty)))
    rows = _view(backend, "numbered_rows", numbered)
    total = int(kept) + len(unreadable)
    if total == 0:
        raise InputError(reasons.NO_DATA_ROWS)
    return _Loaded(rows, unreadable, source, notes, total)


def _lines_unaccounted(source: readers.Source, lines: int, read: int) -> bool:
    """Whether a CSV has lines the reader gave neither as rows nor as unreadable: empty
    lines, which it skips without a word (or quoted values running over several lines).
    ``lines`` counts the file's newlines, which UTF-16 spells otherwise: such a file (a
    small Excel export) is always looked through."""
    if source.format is not FileFormat.CSV:
        return False
    return source.encoding == "utf-16" or lines > read


def _set_rules(
    backend: Any,
    settings: Settings,
    contract: Contract,
    rows: ir.Table,
    operator: str,
    period: str,
) -> list[Check]:
    rules = set_checks(
        contract,
        rows,
        references=_references(backend, settings, contract, operator),
        period=Period(period) if contract.period_column else None,
    )
    return rules + _geometry_checks(contract, rows, settings.region_code)


def _write_errors(
    backend: Any,
    contract: Contract,
    loaded: _Loaded,
    set_failures: tuple[ir.Table, list[Check]],
    target: Path,
) -> list[dict[str, Any]]:
    """Write the error report; returns the counts of its most frequent reasons."""
    rows = loaded.rows
    row_bad = rows.filter(rows[_ROW_BAD])
    row_rules = row_checks(contract, row_bad)
    # The bad rows' flags are kept as a table first: each rule's part of the report is then a
    # plain filter of it, not the whole flagging expression again, which Ibis would compile
    # once per rule (seconds for a contract of many rules, for a file of a few bad rows).
    flagged = _materialise(backend, "row_failed", flag_rows(row_bad, row_rules, prefix="__chk_r"))
    parts = error_rows(flagged, row_rules, prefix="__chk_r")
    parts += error_rows(*set_failures, prefix="__chk_s")
    if loaded.unreadable:
        parts.append(_unreadable_rows(loaded.unreadable))
    errors = _without_second_reason(ibis.union(*parts))
    errors = _mask_identifiers(errors, contract)
    backend.to_parquet(errors.order_by(["row", "column"]), target)
    summary: list[dict[str, Any]] = (
        backend.read_parquet(target)
        .group_by(["column", "reason"])
        .agg(n=ibis._.count())
        .order_by(ibis.desc("n"))
        .limit(50)
        .to_pyarrow()
        .to_pylist()
    )
    return summary


def _without_second_reason(errors: ir.Table) -> ir.Table:
    """The errors but a date's "outside the period" where its year was misread (``21-11-05``
    is outside any period for being in the year 21: that is said once). Looked at here, on
    the bad rows' errors, rather than in the period rule over every row."""
    year = reasons.IMPLAUSIBLE_YEAR.format(first=FIRST_YEAR, last=LAST_YEAR)
    misread = errors.filter(errors.reason == year).select(m_row=errors.row, m_column=errors.column)
    outside = reasons.OUTSIDE_PERIOD.format(period="")
    return errors.anti_join(
        misread,
        [
            errors.row == misread.m_row,
            errors.column == misread.m_column,
            errors.reason.startswith(outside),
        ],
    )


def _read_and_check(backend: Any, contract: Contract, mapping: str) -> ir.Table:
    """Read the file once into a table of its values and whether the row breaks a row rule."""
    mapped = _view(backend, "mapped_rows", mapping)
    rules = row_checks(contract, mapped, flag_only=True)
    # One flag per row; which rules a bad row breaks is worked out later, on bad rows only.
    broken = ibis.or_(*[rule.fails.fill_null(False) for rule in rules]) if rules else False
    return _materialise(backend, _CHECKED, mapped.mutate(**{_ROW_BAD: broken}))


#: Full-width forms of ASCII (as Chinese input methods type digits and letters), and the
#: ASCII they stand for.
_FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F))
_HALF_WIDTH = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F))
#: Spaces that a copy from a web page or a document leaves around a value, and a line
#: break typed at the end of a cell (Alt+Enter).
_SPACES = " \t\r\n\u00a0\u3000"


def _second_chance(backend: Any, contract: Contract) -> int:
    """Rows that break a row rule only for full-width characters (``１３８…``, ``５Ｇ``),
    tabs and wide spaces around a value, a listed value written by its Chinese name
    (规划 for ``planning``), a date as spreadsheets give it (``44531``, ``2021年12月1日``)
    or a number as they and pandas do (``1,234``, ``13812341234.0``): those
    values normalised, the rows pass. Returns how many did.

    Only rows already found bad are looked at, so a clean file pays one count. Free text
    keeps its characters (full-width punctuation is normal in Chinese), and a row that
    stays bad keeps its values as sent, for its report.
    """
    con = backend.con
    columns = [
        c for c in contract.columns if not c.masks_numbers and c.type is not ColumnType.GEOMETRY
    ]
    found = con.execute(f"SELECT count(*) FILTER (WHERE {_ROW_BAD}) FROM {_CHECKED}").fetchone()
    if not columns or not found or not found[0]:
        return 0
    full, half, spaces = (_sql_text(t) for t in (_FULL_WIDTH, _HALF_WIDTH, _SPACES))
    normalised = {
        c.name: _number_forms(
            _date_forms(
                _named_codes(
                    _cleaned(f"trim(translate({quote_name(c.name)}, {full}, {half}), {spaces})", c),
                    c,
                ),
                c,
            ),
            c,
        )
        for c in columns
    }
    replaced = ", ".join(f"{sql} AS {quote_name(name)}" for name, sql in normalised.items())
    changed = " OR ".join(
        f"{quote_name(n)} IS DISTINCT FROM {sql}" for n, sql in normalised.items()
    )
    # Kept as a table first (the bad rows only), so that Ibis compiles the rules over a
    # table rather than parsing this long query again for each of them.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE normalised_candidates AS "
        f"SELECT rowid AS __rid, * REPLACE ({replaced}) FROM {_CHECKED} "
        f"WHERE {_ROW_BAD} AND ({changed})"
    )
    candidates = backend.table("normalised_candidates")
    rules = row_checks(contract, candidates, flag_only=True)
    broken = ibis.or_(*[rule.fails.fill_null(False) for rule in rules]) if rules else False
    passed = _materialise(backend, "passed_once_normalised", candidates.filter(~broken))
    count = int(passed.count().to_pyarrow().as_py())
    if count:
        values = ", ".join(f"{quote_name(n)} = p.{quote_name(n)}" for n in normalised)
        con.execute(
            f"UPDATE {_CHECKED} SET {values}, {_ROW_BAD} = false "
            f"FROM passed_once_normalised p WHERE {_CHECKED}.rowid = p.__rid"
        )
    return count


def _named_codes(value: str, column: Column) -> str:
    """SQL for ``value`` with a listed value written by a Chinese name the contract gives
    it (``主叫`` for ``MO``: see :attr:`Column.labels`) or in another case (``mo``) read as
    its code."""
    if not column.enum:
        return value
    # (compared in lower case, as the value is: ``新建5G基站`` has a letter too)
    cases = [
        f"WHEN {_sql_text(name.lower())} THEN {_sql_text(code)}"
        for name, code in column.labels
        if code in column.enum
    ]
    cases += [
        f"WHEN {_sql_text(code.lower())} THEN {_sql_text(code)}"
        for code in column.enum
        if sum(c.lower() == code.lower() for c in column.enum) == 1
    ]
    return f"CASE lower({value}) {' '.join(cases)} ELSE {value} END"


def _date_forms(value: str, column: Column) -> str:
    """SQL for ``value`` with the dates spreadsheets give read as such: a day Excel keeps as
    its serial number (``44531`` is 2021-12-01; ``44531.5`` its noon), as a cell formatted
    "General" shows it, and ``2021年12月1日``; and, for a date standing for its month, the
    month alone (see :attr:`Column.month`)."""
    if column.type not in (ColumnType.DATE, ColumnType.TIMESTAMP):
        return value
    if column.month:
        # A month alone, for a date that stands for its month: its first day. With a
        # separator, the month may have one digit (2021-1, 2021年1月); without one, or after
        # a dot (2021.1 is how a spreadsheet shows 2021.10), it must have two, so that a
        # serial day (44531) or a shortened October is not read as a month.
        separated = "'^([0-9]{4})[-/年]([0-9]{1,2})月?$'"
        joined = "'^([0-9]{4})[.]?(0[1-9]|1[0-2])$'"
        value = (
            f"CASE WHEN regexp_full_match({value}, {separated}) "
            f"THEN regexp_replace({value}, {separated}, '\\1-\\2-01') "
            f"WHEN regexp_full_match({value}, {joined}) "
            f"THEN regexp_replace({value}, {joined}, '\\1-\\2-01') ELSE {value} END"
        )
    form = "%Y-%m-%d" if column.type is ColumnType.DATE else "%Y-%m-%d %H:%M:%S"
    number = f"TRY_CAST({value} AS DOUBLE)"
    serial = (
        f"strftime(TIMESTAMP '1899-12-30' + to_microseconds(CAST(round({number} * 86400e6) "
        f"AS BIGINT)), '{form}')"
    )
    chinese = (
        f"regexp_replace({value}, '^([0-9]{{4}})年([0-9]{{1,2}})月([0-9]{{1,2}})日 ?', "
        "'\\1-\\2-\\3 ')"
    )
    return (
        f"CASE WHEN regexp_full_match({value}, '[0-9]{{5}}(\\.[0-9]+)?') "
        f"AND {number} BETWEEN 20000 AND 80000 THEN {serial} "
        f"WHEN contains({value}, '年') THEN trim({chinese}) ELSE {value} END"
    )


def _number_forms(value: str, column: Column) -> str:
    """SQL for ``value`` with numbers as spreadsheets and pandas write them read as such:
    grouping commas in a number (``1,234``, as Excel's ``#,##0`` exports it), and a code
    or number sent as a float (``13812341234.0``, pandas' form of an integer column with gaps)
    where the column's form wants digits only; and a percentage as its share (``95%`` as
    0.95) where the column takes one (:attr:`Column.percent`)."""
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
        grouped = f"regexp_full_match({value}, '-?[0-9]{{1,3}}(,[0-9]{{3}})+(\\.[0-9]+)?')"
        number = f"CASE WHEN {grouped} THEN replace({value}, ',', '') ELSE {value} END"
        if not column.percent:
            return number
        # (``95%``, ``95 %``, ``95.5％``: the full-width sign is made ASCII before this)
        share = "'^(-?[0-9]+(\\.[0-9]+)?) *%$'"
        return (
            f"CASE WHEN regexp_full_match({value}, {share}) "
            f"THEN CAST(CAST(regexp_extract({value}, {share}, 1) AS DOUBLE) / 100 AS VARCHAR) "
            f"ELSE {number} END"
        )
    if column.type is ColumnType.STRING and column.pattern:
        # (only where the value as sent does not have the form: ``1.0`` may be a value)
        floated = (
            f"regexp_full_match({value}, '[0-9]+\\.0+') "
            f"AND NOT regexp_full_match({value}, {_sql_text(column.pattern.regex)})"
        )
        return f"CASE WHEN {floated} THEN regexp_replace({value}, '\\.0+$', '') ELSE {value} END"
    return value


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view(backend: Any, name: str, query: str) -> ir.Table:
    """``query`` as a temporary view: Ibis compiles an expression over a view by its name,
    where it would parse the query's text again (and copy its tree) at every compilation of
    an expression over ``backend.sql(query)``, a fifth of a small file's ingest."""
    backend.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {query}")
    return backend.table(name)


def _materialise(backend: Any, name: str, expr: ir.Table) -> ir.Table:
    backend.con.execute(f"DROP TABLE IF EXISTS {name}")
    return backend.create_table(name, expr, temp=True)


def _unreadable_rows(unreadable: list[readers.Unreadable]) -> ir.Table:
    return ibis.memtable(
        {
            "row": [u.line for u in unreadable],
            "column": ["*"] * len(unreadable),
            "reason": [_unreadable_reason(u) for u in unreadable],
            "value": [mask_digits(u.text)[:200] for u in unreadable],
        },
        schema={"row": "int64", "column": "string", "reason": "string", "value": "string"},
    )


def _unreadable_reason(line: readers.Unreadable) -> str:
    return reasons.UNREADABLE_LINE.format(detail=line.message[:200])


def _unreadable_quarantine(unreadable: list[readers.Unreadable], schema: ibis.Schema) -> ir.Table:
    """Quarantine rows for unreadable lines: no values, the reason, and the masked line."""
    n = len(unreadable)
    columns = {
        name: pa.nulls(n, kind.to_pyarrow()) for name, kind in schema.items() if name != "raw_line"
    }
    columns["source_row"] = pa.array([u.line for u in unreadable], pa.int64())
    columns["reasons"] = pa.array([f"*: {_unreadable_reason(u)}" for u in unreadable], pa.string())
    columns["raw_line"] = pa.array([mask_digits(u.text) for u in unreadable], pa.string())
    return ibis.memtable(pa.table(columns))


def quote_name(name: str) -> str:
    """``name`` as a quoted SQL identifier (a file's header may hold anything)."""
    return '"' + name.replace('"', '""') + '"'


def _cleaned(source: str, column: Column) -> str:
    """SQL for a text value without surrounding spaces, NULL when blank, identifiers normalised.

    Phone numbers lose a +86/0086/86 country prefix and ID numbers are upper-cased,
    so one subscriber gets one token. Each step is guarded by a cheap test
    that skips it for the usual value that does not need it.
    """
    text = f"CAST({source} AS VARCHAR)"
    # (a line break typed at the end of a cell, Alt+Enter, is trimmed as a space is)
    padded = (
        f"starts_with({text}, ' ') OR ends_with({text}, ' ') OR ends_with({text}, chr(10)) "
        f"OR ends_with({text}, chr(13))"
    )
    trimmed = f"trim({text}, ' ' || chr(9) || chr(10) || chr(13))"
    value = f"NULLIF(CASE WHEN {padded} THEN {trimmed} ELSE {text} END, '')"
    if column.identifier is IdentifierKind.PHONE:
        prefixed = (
            f"(starts_with({value}, '+86') OR starts_with({value}, '0086') "
            f"OR (starts_with({value}, '86') AND length({value}) = 13))"
        )
        return (
            f"CASE WHEN {prefixed} "
            f"THEN regexp_replace({value}, '^(?:\\+|00)?86(1[0-9]{{10}})$', '\\1') "
            f"ELSE {value} END"
        )
    if column.identifier is IdentifierKind.ID_NUMBER:
        return f"upper({value})"
    return value


def _mapping_sql(contract: Contract, source: readers.Source) -> tuple[str, list[str]]:
    """SQL that renames the file's headers to contract names, with cleaned values.

    Files missing a required column are refused; unknown columns are ignored
    and named in the submission's message.
    """
    mapping = contract.header_map()
    chosen: dict[str, str] = {}
    unknown: list[str] = []
    for header in source.columns:
        if header in source.unheaded:
            continue  # (named in the source's notes, by their place)
        name = mapping.get(normalise_header(header))
        if name is None:
            unknown.append(header)
        elif name in chosen:
            raise InputError(
                reasons.TWO_COLUMNS.format(
                    first=repr(chosen[name]), second=repr(header), name=repr(name)
                )
            )
        else:
            chosen[name] = header
    missing = [c.name for c in contract.columns if c.required and c.name not in chosen]
    if missing:
        expected = ", ".join(c.name for c in contract.columns)
        found = ", ".join(readers.shown_header(h) for h in source.columns) or "none"
        raise InputError(
            reasons.MISSING_COLUMNS.format(
                missing=", ".join(missing), expected=expected, found=found
            )
        )
    row = ROW if source.numbered else f"CAST(NULL AS BIGINT) AS {ROW}"
    selects = [row]
    for column in contract.columns:
        source_header = chosen.get(column.name)
        selects.append(
            f"{_cleaned(quote_name(source_header), column)} AS {quote_name(column.name)}"
            if source_header
            else f"CAST(NULL AS VARCHAR) AS {quote_name(column.name)}"
        )
    shown = ", ".join(readers.shown_header(h) for h in unknown)
    notes = [reasons.IGNORED_COLUMNS.format(columns=shown)] if unknown else []
    return f"SELECT {', '.join(selects)} FROM {source.relation}", notes


#: the share of a file's dated rows one month must hold to be taken as the file's month
#: when none is given: the rest are quarantined as outside it, each with its row number
_MONTH_MAJORITY = 0.95


def _resolve_period(contract: Contract, raw: ir.Table, period: str | None) -> tuple[str, list[str]]:
    """The submission's month, and a note when it was taken from most of the rows."""
    if period is not None:
        return period, []
    if contract.period_column is None:  # a standing list (see ``_check_period``)
        return datetime.now(UTC).strftime("%Y-%m"), []
    column = contract.column(contract.period_column)
    converted = typed(column, raw[column.name])
    # (a misread year names no month: its row is quarantined for it)
    values = raw.select(month=plausible(converted).ifelse(converted, None).cast("date"))
    values = values.select(month=values.month.strftime("%Y-%m"))
    dated = values.filter(values.month.notnull())
    months = dated.group_by("month").agg(n=dated.count()).order_by([ibis.desc("n"), "month"])
    counts = [(str(r["month"]), int(r["n"])) for r in months.to_pyarrow().to_pylist()]
    if not counts:
        raise InputError(reasons.NO_PERIOD.format(column=column.name))
    if len(counts) == 1:
        return counts[0][0], []
    month, most = counts[0]
    total = sum(n for _, n in counts)
    if most < _MONTH_MAJORITY * total:
        first, last = min(m for m, _ in counts), max(m for m, _ in counts)
        raise InputError(reasons.SPANS_MONTHS.format(first=first, last=last))
    # A mistyped date or two should not cost the whole file: they are quarantined.
    return month, [reasons.MONTH_FROM_ROWS.format(period=month, outside=f"{total - most:,}")]


def _references(
    backend: Any, settings: Settings, contract: Contract, operator: str
) -> dict[str, ir.Column]:
    found: dict[str, ir.Column] = {}
    for column in contract.columns:
        ref = column.references
        if ref is None:
            continue
        if ref.dataset.startswith("region:"):
            regions = load_regions(settings.region_code)
            levels = ref.dataset.removeprefix("region:").split("+")
            members = (regions.cities if "city" in levels else ()) + (
                regions.counties if "county" in levels else ()
            )
            found[column.name] = ibis.memtable({"code": [r.code for r in members]}).code
            continue
        with session_scope(settings) as session:
            files = lake.current_files(
                session, settings, ref.dataset, operators=[operator] if ref.same_operator else None
            )
        if files:
            found[column.name] = backend.read_parquet([str(f) for f in files])[ref.column].cast(
                "string"
            )
        else:
            found[column.name] = ibis.memtable({"v": []}, schema={"v": "string"}).v
    return found


#: How far outside the region's boundary a feature may lie and still be its own: about 20
#: km, so that a corridor's end beyond the border, or GCJ-02 input, is not refused.
_REGION_MARGIN_DEG = 0.2


@cache
def _near_region(region_code: str) -> BaseGeometry:
    """The region's boundary widened by the margin, once per region and process.

    (Buffering a province's full boundary takes a tenth of a second or more.)
    """
    return shapely.buffer(load_regions(region_code).province.geometry, _REGION_MARGIN_DEG)


def _geometry_checks(contract: Contract, raw: ir.Table, region_code: str) -> list[Check]:
    checks: list[Check] = []
    for column in contract.columns:
        if column.type is not ColumnType.GEOMETRY:
            continue
        region = load_regions(region_code).province
        near = _near_region(region_code)
        present = raw.filter(~blank(raw[column.name])).select(ROW, column.name).to_pyarrow()
        geoms = shapely.from_wkt(
            np.asarray(present[column.name].to_pylist(), dtype=object), on_invalid="ignore"
        )
        bad_syntax = np.asarray([g is None for g in geoms], dtype=bool)
        kinds = np.asarray([g.geom_type if g is not None else "" for g in geoms], dtype=object)
        wrong_kind = ~bad_syntax & (
            ~np.isin(kinds, list(column.geometry_types)) if column.geometry_types else False
        )
        readable = np.where(bad_syntax, None, geoms)
        invalid = ~bad_syntax & ~shapely.is_valid(readable)
        # (NaN bounds of empty geometries compare false: they are not outside)
        west, south, east, north = shapely.bounds(readable).T
        outside = (west < -180) | (east > 180) | (south < -90) | (north > 90)
        empty = ~bad_syntax & shapely.is_empty(readable)
        # (a corridor abroad, or longitude and latitude swapped: figures of the region that
        # are not about it)
        away = ~bad_syntax & ~empty & ~outside & ~shapely.intersects(readable, near)
        rows = present[ROW].to_numpy()
        wanted = ", ".join(column.geometry_types or ())
        for mask, reason in (
            (bad_syntax, reasons.UNREADABLE_GEOMETRY),
            (wrong_kind, reasons.WRONG_GEOMETRY.format(kinds=wanted)),
            (invalid, reasons.INVALID_GEOMETRY),
            (outside, reasons.OUTSIDE_LONLAT),
            (empty, reasons.EMPTY_GEOMETRY),
            (away, reasons.AWAY_FROM_REGION.format(region=f"{region.name} ({region.code})")),
        ):
            if np.any(mask):
                flagged = ibis.memtable({"r": rows[mask]}).r
                checks.append(Check(column.name, raw[ROW].isin(flagged), ibis.literal(reason)))
    return checks


def _token_maps(
    backend: Any, settings: Settings, contract: Contract, raw: ir.Table
) -> dict[IdentifierKind, ir.Table]:
    """value → token tables, one per identifier kind, for the distinct values in the file."""
    pseudonymiser = Pseudonymiser(settings.secret("pseudonym_key"))
    maps: dict[IdentifierKind, ir.Table] = {}
    kinds = {c.identifier for c in contract.identifier_columns if c.identifier}
    for kind in kinds:
        columns = [c for c in contract.identifier_columns if c.identifier is kind]
        values = (
            ibis.union(*[raw.select(v=raw[c.name]) for c in columns])
            .filter(lambda t: ~blank(t.v))
            .distinct()
        )
        clear = values.to_pyarrow().column("v").to_pylist()
        table = pa.table(
            {
                "clear": pa.array(clear, pa.string()),
                "token": pa.array(pseudonymiser.tokens(clear), pa.string()),
            }
        )
        name = f"tokens_{kind.value}"
        backend.con.register(f"{name}_arrow", table)
        backend.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        backend.con.unregister(f"{name}_arrow")
        maps[kind] = backend.table(name)
    return maps


def _tokenised(
    rows: ir.Table,
    contract: Contract,
    tokens: dict[IdentifierKind, ir.Table],
    *,
    typed_values: bool,
) -> ir.Table:
    """Rows with identifiers replaced by tokens; typed values for the lake, text for quarantine."""
    result = rows
    for column in contract.identifier_columns:
        assert column.identifier is not None
        lookup = tokens[column.identifier].select(
            **{f"__clear_{column.name}": "clear", f"__token_{column.name}": "token"}
        )
        result = result.left_join(lookup, result[column.name] == lookup[f"__clear_{column.name}"])
    selected: dict[str, ir.Value] = {"source_row": result[ROW]}
    for column in contract.columns:
        if column.identifier is not None:
            selected[column.name] = result[f"__token_{column.name}"]
            if column.kept_prefix is not None:
                name, length = column.kept_prefix
                selected[name] = _kept_prefix(result[column.name], column, length)
        elif typed_values and column.masks_numbers:
            selected[column.name] = _numbers_masked(result[column.name])
        elif typed_values:
            selected[column.name] = typed(column, result[column.name])
        elif column.type in (ColumnType.FLOAT, ColumnType.GEOMETRY):
            # (long runs of digits are a coordinate's decimals here, not someone's number)
            selected[column.name] = result[column.name]
        else:
            # Quarantined text that looks like an identifier (an ID number in a date column,
            # a phone number in a name) is masked: it is not pseudonymised, and the
            # quarantine is shown on screens.
            text = result[column.name].cast("string")
            selected[column.name] = ibis.ifelse(_looks_identifying(text), _masked(text), text)
    return result.select(**selected)


def _kept_prefix(value: ir.StringValue, column: Column, length: int) -> ir.StringValue:
    """The value's first ``length`` characters where it has the column's form (an IMEI's
    TAC), else null: the start of another kind of value (a phone number where the IMEI
    belongs) is part of someone's number, and beside its masked form would show it whole."""
    assert column.pattern is not None, "a kept prefix needs a form (see Column)"
    has_form = value.re_search(f"^(?:{column.pattern.regex})$")
    kept: ir.StringValue = ibis.ifelse(has_form, value.left(length), ibis.null("string"))
    return kept


def _numbers_masked(text: ir.StringValue) -> ir.StringValue:
    """Free text with each phone or ID number in it masked to its first 3 and last 4
    characters (``138-1234-5678`` → ``138****5678``; see ``WRITTEN_NUMBER``): it is not one
    of the contract's identifier columns, so it is not pseudonymised, yet it names someone."""
    masked: ir.StringValue = text.re_replace(WRITTEN_NUMBER, r"\1****\2")
    return masked


def _mask_identifiers(errors: ir.Table, contract: Contract) -> ir.Table:
    """Error reports show at most the first 3 and last 4 characters of an identifier, and of
    a value that looks like one in any column (an ID number in the wrong column)."""
    names = [c.name for c in contract.identifier_columns]
    value = errors.value
    hidden = errors.column.isin(names) if names else ibis.literal(False)
    return errors.mutate(
        value=ibis.ifelse(hidden | _looks_identifying(value), _masked(value), value)
    )


def _looks_identifying(value: ir.StringValue) -> ir.BooleanValue:
    """Whether a value holds a phone or ID number, as digits or as people write one
    (``+86 182 2755 6502``, full-width digits: see ``WRITTEN_NUMBER``)."""
    found: ir.BooleanValue = value.re_search(WRITTEN_NUMBER).fill_null(False)
    return found


def _masked(value: ir.StringValue) -> ir.StringValue:
    """At most the first 3 and last 4 characters; stars only for a short value."""
    masked: ir.StringValue = ibis.ifelse(
        value.length() >= 11,
        value.left(3) + ibis.literal("*").repeat(value.length() - 7) + value.right(4),
        ibis.literal("*").repeat(value.length()),
    )
    return masked


def _to_wgs84(backend: Any, contract: Contract, good: ir.Table) -> ir.Table:
    """Convert GCJ-02 coordinates and geometries of accepted rows to WGS-84."""
    backend.con.execute("DROP TABLE IF EXISTS good_gcj")
    backend.create_table("good_gcj", good, temp=True)
    table = backend.table("good_gcj")
    data = table.to_pyarrow()
    replaced: dict[str, pa.Array] = {}
    if contract.coordinates:
        lon_col, lat_col = contract.coordinates
        lon = data[lon_col].to_numpy(zero_copy_only=False).astype(float)
        lat = data[lat_col].to_numpy(zero_copy_only=False).astype(float)
        wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
        replaced[lon_col] = pa.array(np.round(wgs_lon, 7))
        replaced[lat_col] = pa.array(np.round(wgs_lat, 7))
    if contract.geometry_column:
        geoms = shapely.from_wkt(
            np.asarray(data[contract.geometry_column].to_pylist(), dtype=object)
        )

        def shift(coords: np.ndarray) -> np.ndarray:
            return np.column_stack(gcj02_to_wgs84(coords[:, 0], coords[:, 1]))

        replaced[contract.geometry_column] = pa.array(
            shapely.to_wkt(shapely.transform(geoms, shift), rounding_precision=7).tolist()
        )
    for name, array in replaced.items():
        data = data.set_column(data.schema.get_field_index(name), name, array)
    return ibis.memtable(data)
