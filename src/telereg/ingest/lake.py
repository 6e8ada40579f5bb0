"""The lake: where accepted rows, quarantined rows and error reports live.

Layout under ``<data_dir>/lake``::

    <dataset>/operator=<op>/period=<yyyy-mm>/<file_id>.parquet   accepted rows
    _quarantine/<dataset>/<file_id>.parquet                       rejected rows
    _errors/<file_id>.parquet                                     one row per broken rule
    _staging/<uuid>/                                              finished files, unpublished
    _pending/<file_id>.json                                       files published, not yet recorded

Work on clear values (a GBK file transcoded to UTF-8, DuckDB's spill) happens in
``<data_dir>/scratch/<uuid>/``, outside the lake, which holds pseudonymised data only.
A submission's files are written to staging and moved into place before its
record is committed; readers ask the state DB which submissions are current,
so they see a superseded slot either wholly before or wholly after the change,
and files of an interrupted ingest are never read.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core import workdirs
from telereg.core.db import session_scope
from telereg.core.models import Operator
from telereg.core.settings import Settings
from telereg.ingest.models import Submission


def accepted_path(
    settings: Settings, dataset: str, operator: str, period: str, file_id: str
) -> Path:
    return (
        settings.lake_dir
        / dataset
        / f"operator={operator}"
        / f"period={period}"
        / f"{file_id}.parquet"
    )


def quarantine_path(settings: Settings, dataset: str, file_id: str) -> Path:
    return settings.lake_dir / "_quarantine" / dataset / f"{file_id}.parquet"


def errors_path(settings: Settings, file_id: str) -> Path:
    return settings.lake_dir / "_errors" / f"{file_id}.parquet"


def staging(settings: Settings) -> contextlib.AbstractContextManager[Path]:
    """A private directory for finished files, inside the lake (moves out are atomic)."""
    return workdirs.private_directory(workdirs.staging_root(settings))


def scratch(settings: Settings) -> contextlib.AbstractContextManager[Path]:
    """A private work directory for clear values, outside the lake."""
    return workdirs.private_directory(workdirs.scratch_root(settings))


def sweep_leftovers(settings: Settings, *, older_than_s: float = workdirs.DAY_S) -> int:
    """Remove what interrupted ingests left behind; returns how many.

    That is their staging and scratch directories, as soon as the process that made one has
    ended (:func:`workdirs.sweep`: never one a running process works in), and, once
    ``older_than_s`` old, the files of an ingest killed
    between publishing them and recording its submission. Such an ingest left the note it
    wrote before publishing (``_pending/<file_id>.json``, naming its files); the files are
    removed only when the state DB answers that no submission names that file id. Files
    with no note are never touched, so a state DB that does not match the lake (a wrong
    URL, an older restore) costs nothing. (The vault chunk of such an ingest stays: the
    same file sent again finds its identifiers known and stores none.)
    """
    removed = sum(
        workdirs.sweep(root, older_than_s=older_than_s)
        for root in (workdirs.staging_root(settings), workdirs.scratch_root(settings))
    )
    return removed + _sweep_unrecorded(settings, time.time() - older_than_s)


def _pending_root(settings: Settings) -> Path:
    return settings.lake_dir / "_pending"


def _pending_note(settings: Settings, file_id: str) -> Path:
    return _pending_root(settings) / f"{file_id}.json"


def _sweep_unrecorded(settings: Settings, cutoff: float) -> int:
    """Files of notes older than ``cutoff`` whose file id no submission names: removed."""
    root = _pending_root(settings)
    if not root.is_dir():
        return 0
    notes = []
    for note in root.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            if note.stat().st_mtime < cutoff:
                notes.append(note)
    removed = 0
    for note in notes:
        named = _maybe_named(settings, note.stem, trust_an_empty_table=False)
        if named is False:
            try:
                listed = json.loads(note.read_text())["files"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a note it cannot read names nothing it may remove
            inside = [Path(p) for p in listed if not Path(p).is_absolute()]
            paths = [settings.lake_dir / p for p in inside if ".." not in p.parts]
            _remove(paths)
            removed += len(paths)
        if named is not None:
            note.unlink(missing_ok=True)
    return removed


def publish(staged: Path, final: Path) -> None:
    """Move a finished file into place; the rename is atomic on one file system."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(final)


@contextmanager
def withdrawn_unless_recorded(
    settings: Settings, file_id: str, published: list[Path]
) -> Iterator[Callable[[bool], None]]:
    """Remove the ``published`` files of ``file_id`` when no submission came to name them.

    The block calls the function it is given once its transaction is committed: with
    ``True`` when the new submission names the files, ``False`` when it does not (the
    same bytes were recorded meanwhile). When the block raises, the state DB is asked
    whether a submission names ``file_id`` (the commit may have happened before the
    error); the files are removed only when it answers that none does. An orphan is
    harmless, a submission without its files is not.
    """
    note = _pending_note(settings, file_id)
    note.parent.mkdir(parents=True, exist_ok=True)
    staged = note.with_suffix(".tmp")
    staged.write_text(
        json.dumps({"files": [str(p.relative_to(settings.lake_dir)) for p in published]})
    )
    staged.replace(note)
    named: list[bool] = []
    try:
        yield named.append
    except BaseException:
        answer = _maybe_named(settings, file_id, trust_an_empty_table=True)
        if answer is False:
            _remove(published)
        if answer is not None:  # unanswered: the note stays for the sweep to ask again
            note.unlink(missing_ok=True)
        raise
    if named == [False]:
        _remove(published)
    note.unlink(missing_ok=True)


def _maybe_named(settings: Settings, file_id: str, *, trust_an_empty_table: bool) -> bool | None:
    """Whether a submission names ``file_id``; None when the state DB does not answer.

    Days later, an empty submissions table is no answer either: it is more likely a state
    DB that is not this lake's (a new one, a wrong URL) than one that forgot an ingest.
    """
    try:
        with session_scope(settings) as session:
            empty = session.scalar(select(Submission.id).limit(1)) is None
            if empty and not trust_an_empty_table:
                return None
            found = session.scalar(select(Submission.id).where(Submission.file_id == file_id))
    except Exception:  # noqa: BLE001 - an unanswered question keeps the files
        return None
    return found is not None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def current_files(
    session: Session,
    settings: Settings,
    dataset: str,
    *,
    operators: list[str] | None = None,
    periods: list[str] | None = None,
) -> list[Path]:
    """The accepted files of the current submissions of a dataset, in submission order."""
    query = (
        select(Submission.lake_path)
        .join(Operator)
        .where(Submission.dataset == dataset, Submission.current, Submission.lake_path != "")
    )
    if operators is not None:
        query = query.where(Operator.code.in_(operators))
    if periods is not None:
        query = query.where(Submission.period.in_(periods))
    return [settings.lake_dir / p for p in session.scalars(query.order_by(Submission.id))]


def files_as_of(
    session: Session, settings: Settings, dataset: str, period: str, *, or_first: bool = True
) -> list[Path]:
    """A monthly list (such as an operator's cells) as it stood in ``period``.

    Per operator, the current files of its latest month up to ``period``; an operator whose
    first list is later than ``period`` is read from that first list, its best knowledge
    (unless ``or_first`` is false: then that operator has no list yet).
    """
    query = (
        select(Operator.code, Submission.period, Submission.lake_path)
        .join(Operator)
        .where(Submission.dataset == dataset, Submission.current, Submission.lake_path != "")
        .order_by(Submission.id)
    )
    by_operator: dict[str, dict[str, list[str]]] = {}
    for code, month, path in session.execute(query):
        by_operator.setdefault(code, {}).setdefault(month, []).append(path)
    found: list[Path] = []
    for months in by_operator.values():
        earlier = [m for m in months if m <= period]
        if not earlier and not or_first:
            continue
        chosen = max(earlier) if earlier else min(months)
        found += [settings.lake_dir / p for p in months[chosen]]
    return found


def current_periods(session: Session, dataset: str) -> list[str]:
    """The months with accepted rows of ``dataset`` in a current submission, latest first."""
    query = (
        select(Submission.period)
        .where(Submission.dataset == dataset, Submission.current, Submission.lake_path != "")
        .distinct()
    )
    return sorted(session.scalars(query), reverse=True)
