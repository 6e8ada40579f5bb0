"""Reading submissions back: lists, one record, its error report, quarantined and accepted rows.

An operator sees only its own operator's submissions; asking for another's is
answered as if it did not exist.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg import registry
from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
from telereg.core.models import Operator
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.ingest import lake
from telereg.ingest.models import Submission
from telereg.ingest.service import SubmissionRecord, quote_name

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ERROR_COLUMNS = ("row", "column", "reason", "value")


def _visible(principal: Principal) -> Any:
    query = select(Submission).join(Operator)
    if principal.can(Permission.DATA_READ_ALL):
        return query
    principal.require(Permission.DATA_READ_OWN)
    return query.where(Operator.code == principal.operator_code)


def list_submissions(
    session: Session,
    *,
    principal: Principal,
    dataset: str | None = None,
    operator: str | None = None,
    status: str | None = None,
    period: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SubmissionRecord], int]:
    query = _visible(principal)
    if dataset:
        query = query.where(Submission.dataset == dataset)
    if operator:
        query = query.where(Operator.code == operator)
    if status:
        query = query.where(Submission.status == status)
    if period:
        query = query.where(Submission.period == period)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Submission.id.desc()).limit(limit).offset(offset)).all()
    return [SubmissionRecord.of(s) for s in rows], total


def get_submission(session: Session, *, principal: Principal, submission_id: int) -> Submission:
    found: Submission | None = session.scalar(
        _visible(principal).where(Submission.id == submission_id)
    )
    if found is None:
        raise NotFoundError(N_("no submission {id}").format(id=submission_id))
    return found


def accepted_file(settings: Settings, submission: Submission) -> Path:
    """The Parquet file of a submission's accepted rows, current or superseded.

    A superseded submission's rows stay where they were written: the record names them,
    and only the current submission of a slot is read by the analyses.
    """
    path = settings.lake_dir / submission.lake_path if submission.lake_path else None
    if path is None or not path.exists():
        raise NotFoundError(N_("submission {id} has no accepted rows").format(id=submission.id))
    return path


def _read_back(
    con: duckdb.DuckDBPyConnection, settings: Settings, submission: Submission, path: Path
) -> str:
    """SQL selecting a submission's file as it is read back: each identifier token (the
    lake's, 32 hex characters) replaced by one of this submission's own.

    A submitter reads back what it sent; were the lake's tokens in it, sending a number
    and reading its token would re-identify any token seen elsewhere (a suspect's, on a
    case) without the permission, the reason and the audit record that take. A read-back
    token is ``r`` and 31 hex characters of SHA-256 over a secret of the submission
    (derived from the pseudonym key) and the lake's token: the same number is the same
    token throughout one submission, and links to nothing outside it.
    """
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    contract = registry.CONTRACTS.get(submission.dataset)
    names = {c.name for c in contract.identifier_columns} if contract else set()
    salt = hmac.new(
        settings.secret("pseudonym_key"),
        f"read-back:{submission.id}".encode(),
        hashlib.sha256,
    ).hexdigest()
    columns = []
    for name, *_ in described:
        column = quote_name(str(name))
        if name in names:
            columns.append(
                f"CASE WHEN regexp_full_match({column}, '[0-9a-f]{{32}}') "
                f"THEN 'r' || left(sha256('{salt}' || {column}), 31) ELSE {column} END "
                f"AS {column}"
            )
        else:
            columns.append(column)
    return f"SELECT {', '.join(columns)} FROM read_parquet('{_sql_path(path)}')"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def accepted_parquet(settings: Settings, submission: Submission) -> Iterator[bytes]:
    """A submission's accepted rows as read back (see :func:`_read_back`), as a Parquet
    file's bytes. The file is written to a private work directory of the data dir, removed
    once read (or by the sweep of work left behind, if its reader went away)."""
    path = accepted_file(settings, submission)  # (no file: an error before the first byte)

    def chunks() -> Iterator[bytes]:
        with lake.scratch(settings) as work:
            target = work / "rows.parquet"
            con = duckdb.connect()
            selected = _read_back(con, settings, submission, path)
            con.execute(
                f"COPY ({selected} ORDER BY source_row) TO '{_sql_path(target)}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            with target.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk

    return chunks()


def accepted_rows_csv(settings: Settings, submission: Submission) -> Iterator[str]:
    """A submission's accepted rows as formula-safe CSV (identifiers as read back: see
    :func:`_read_back`), streamed."""
    path = accepted_file(settings, submission)
    con = duckdb.connect()
    reader = con.execute(f"{_read_back(con, settings, submission, path)} ORDER BY source_row")
    buffer = io.StringIO()
    csv.writer(buffer).writerow([d[0] for d in reader.description or []])
    yield "\ufeff" + buffer.getvalue()
    while batch := reader.fetchmany(10_000):
        buffer = io.StringIO()
        csv.writer(buffer).writerows([neutralise(c) for c in row] for row in batch)
        yield buffer.getvalue()


def neutralise(cell: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def error_report_csv(
    settings: Settings,
    submission: Submission,
    *,
    headers: Sequence[str] = ERROR_COLUMNS,
    reason: Callable[[str], str] | None = None,
    column: Callable[[str], str] | None = None,
) -> Iterator[str]:
    """The submission's error report as CSV text, streamed in chunks.

    The API's report is in English, with the contract's column names; a page passes its
    readers' ``headers``, a ``reason`` function that translates each reason and a
    ``column`` function that names each column in their words.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    yield "\ufeff" + buffer.getvalue()  # a BOM so that Excel opens Chinese text correctly
    path = lake.errors_path(settings, submission.file_id)
    if not path.exists():
        return
    reader = duckdb.connect().execute(
        'SELECT row, "column", reason, value FROM read_parquet(?) ORDER BY row', [str(path)]
    )
    while batch := reader.fetchmany(10_000):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if reason is not None or column is not None:
            say, name = reason or str, column or str
            batch = [(line, name(col), say(text), value) for line, col, text, value in batch]
        writer.writerows([neutralise(c) for c in row] for row in batch)
        yield buffer.getvalue()


def quarantined_rows(
    settings: Settings,
    submission: Submission,
    *,
    limit: int = 50,
    offset: int = 0,
    cut_at: int | None = None,
) -> tuple[list[str], list[tuple[Any, ...]], int]:
    """A page of quarantined rows (identifiers as read back: see :func:`_read_back`), with
    the column names and total.
    ``cut_at``: texts longer than that many characters are cut, ending in ``…`` (a page
    shows a 10 MB field's start; the API gives it whole)."""
    path = lake.quarantine_path(settings, submission.dataset, submission.file_id)
    if not path.exists():
        return [], [], 0
    con = duckdb.connect()
    total = int(con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0])  # type: ignore[index]
    con.execute(f"CREATE TEMP VIEW read_back AS {_read_back(con, settings, submission, path)}")
    described = con.execute("DESCRIBE SELECT * FROM read_back").fetchall()
    shown = {
        str(name): _cut(str(name), cut_at)
        if kind == "VARCHAR" and cut_at
        else quote_name(str(name))
        for name, kind, *_ in described
    }
    others = [sql for name, sql in shown.items() if name not in ("source_row", "reasons")]
    # Why a row was held back comes right after its number, before the row's values.
    result = con.execute(
        f"SELECT source_row, {shown['reasons']}, {', '.join(others)} FROM read_back "
        "ORDER BY source_row LIMIT ? OFFSET ?",
        [limit, offset],
    )
    columns = [d[0] for d in result.description]
    return columns, result.fetchall(), total


def _cut(name: str, chars: int | None) -> str:
    column = quote_name(name)
    return (
        f"CASE WHEN length({column}) > {chars} THEN left({column}, {chars}) || '…' "
        f"ELSE {column} END AS {column}"
    )
