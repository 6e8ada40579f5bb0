"""Property tests over contracts, and an ingest killed halfway."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.settings import Settings, load_settings
from telereg.ingest import lake
from telereg.ingest import service as ingest_service
from telereg.ingest.contracts import PERSONAL_NUMBER, Column, ColumnType, Contract
from telereg.ingest.models import Submission
from telereg.ingest.reasons import WRONG_FORM
from telereg.ingest.service import ingest_file
from telereg.ingest.submissions import error_report_csv
from telereg.ingest.validate import FIRST_YEAR, LAST_YEAR
from telereg.reference.directory import ADMINISTRATION
from telereg.reference.regions import load_regions
from telereg.scenario.demo import prepare
from tests.conftest import ROOT

REGIONS = load_regions("140000")
COUNTY = REGIONS.counties[5]
CITY = COUNTY.parent or ""
#: The cells the call records of the property test refer to (ingested for CUCC).
CELL_IDS = ("PC0001", "PC0002", "PC0003")
#: The month the calls fall in (local calendar time, as the records carry it).
PERIOD_START = dt.datetime(2021, 11, 1)  # noqa: DTZ001
PERIOD_END = dt.datetime(2021, 11, 30, 23, 59, 59)  # noqa: DTZ001
#: Who submits each dataset in the property test: the calls' operator has the cells above
#: (ingested for it once, in another month, so that no example's cells replace them).
SUBMITTER = {"voice_cdr": "CUCC"}
#: Every tabular contract; the GeoJSON ones (corridors, key places) have tests of their own.
TABULAR_DATASETS = sorted(
    name for name, c in registry.CONTRACTS.items() if c.geometry_column is None
)
#: The contracts whose generated rows the default run checks (identifiers, times, ranges,
#: enumerations, coordinates and region codes among their rules); the others run with the
#: slow tests (``pytest -m slow``, which CI runs as well).
EVERY_RULE_KIND = {"voice_cdr", "sites", "subscriptions"}
#: Region codes for a key made of a region column, by the level it refers to.
REGION_CODES = {
    "region:city": [c.code for c in REGIONS.cities],
    "region:county": [c.code for c in REGIONS.counties],
    "region:city+county": [c.code for c in (*REGIONS.cities, *REGIONS.counties)],
}


def valid_value(contract: Contract, column: Column) -> st.SearchStrategy[str]:
    """Text that satisfies every rule of ``column``."""
    if column.references and column.references.dataset in REGION_CODES:
        return st.sampled_from(REGION_CODES[column.references.dataset])
    if column.name == contract.period_column and column.type is ColumnType.DATE:
        return st.dates(PERIOD_START.date(), PERIOD_END.date()).map(lambda d: d.isoformat())
    if column.references and column.references.dataset == "cells":
        return st.sampled_from(CELL_IDS)
    if column.enum:
        return st.sampled_from(column.enum)
    if column.pattern:
        # (the form's example too: what the error report shows as valid must pass)
        drawn = st.just(column.pattern.example) | st.from_regex(
            column.pattern.regex, fullmatch=True
        ).filter(lambda v: v.strip() == v)
        if column.pattern.refuses_personal_numbers:
            return drawn.filter(lambda v: not re.fullmatch(PERSONAL_NUMBER, v))
        return drawn
    if column.type is ColumnType.FLOAT:
        low = column.minimum if column.minimum is not None else -1e6
        high = column.maximum if column.maximum is not None else 1e6
        return st.floats(low, high, allow_nan=False).map(lambda v: f"{v:.6f}")
    if column.type is ColumnType.BOOLEAN:
        return st.sampled_from(["true", "false", "1", "0", "是", "否"])
    if column.type is ColumnType.DATE:
        years = st.dates(dt.date(FIRST_YEAR, 1, 1), dt.date(LAST_YEAR, 12, 31))
        return years.map(lambda d: d.isoformat())
    if column.type is ColumnType.TIMESTAMP:
        moments = st.datetimes(min_value=PERIOD_START, max_value=PERIOD_END)
        return moments.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))
    if column.type is ColumnType.INTEGER:
        low = int(column.minimum if column.minimum is not None else -(10**6))
        high = int(column.maximum if column.maximum is not None else 10**6)
        return st.integers(low, high).map(str)
    return st.text(
        st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=20
    )


def outside_the_period(column: Column) -> str:
    return "2021-12-15" if column.type is ColumnType.DATE else "2021-12-15 10:00:00"


MUTATIONS = {
    "required": ("", "required value is missing"),
    "type": ("not-a-value", "not a valid"),
    "minimum": ("", "below the minimum"),  # (the bound, less one)
    "maximum": ("", "above the maximum"),  # (the bound, plus one)
    "pattern": ("@@ bad @@", "does not have the expected form"),
    "personal": ("13812345678", "looks like a phone or ID-card number"),
    "enum": ("ZZZ", "not one of"),
    "reference": ("999999", "unknown value"),
    "too_long": ("", "longer than"),  # (one character too many)
    "period": ("2021-12-15 10:00:00", "outside the period"),
    "year": ("21-11-05", "the year is not between"),  # (read as the year 21)
    "duplicate": ("", "duplicate"),  # (the value of the row before)
}


def applicable(contract: Contract, column: Column) -> list[str]:
    kinds = []
    if column.required:
        kinds.append("required")
    if column.type in (
        ColumnType.FLOAT,
        ColumnType.INTEGER,
        ColumnType.DATE,
        ColumnType.TIMESTAMP,
        ColumnType.BOOLEAN,
    ):
        kinds.append("type")
    if column.minimum is not None:
        kinds.append("minimum")
    if column.maximum is not None:
        kinds.append("maximum")
    if column.pattern and not column.references:
        kinds.append("pattern")
        if column.pattern.refuses_personal_numbers:
            kinds.append("personal")
    if column.enum:
        kinds.append("enum")
    if column.references:
        kinds.append("reference")
    if column.type is ColumnType.STRING and not (column.enum or column.references):
        kinds.append("too_long")
    if column.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
        kinds.append("year")
    if contract.period_column == column.name:
        kinds.append("period")
    if (column.name,) in contract.unique:
        kinds.append("duplicate")
    return kinds


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("props") / "var")
    prepare(settings, principal=ROOT)
    cells = tmp_path_factory.mktemp("cells") / "cells.csv"
    cells.write_text(
        "cell_id,site_id,longitude,latitude,city_code,technology\n"
        + "".join(f"{c},S1,112.5,37.8,{CITY},4G\n" for c in CELL_IDS)
    )
    record = ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract("cells"),
        path=cells,
        filename=cells.name,
        operator=SUBMITTER["voice_cdr"],
        period="2021-11",
    )
    assert record.status == "accepted", record.message
    return settings


@st.composite
def valid_row(draw: st.DrawFn, contract: Contract) -> dict[str, str]:
    """A row whose every value is valid, and whose numbers keep the ranges the contract's
    rules across columns set where they apply (a coverage target's value is a share)."""
    row = draw(st.fixed_dictionaries({c.name: valid_value(contract, c) for c in contract.columns}))
    for rule in contract.ranges_when:
        if row[rule.when] not in rule.values:
            continue
        column = contract.column(rule.column)
        low = max((b for b in (column.minimum, rule.minimum) if b is not None), default=-1e6)
        high = min((b for b in (column.maximum, rule.maximum) if b is not None), default=1e6)
        drawn = (
            st.integers(math.ceil(low), math.floor(high)).map(float)
            if rule.whole
            else st.floats(low, high, allow_nan=False)
        )
        row[rule.column] = draw(drawn.map(lambda v: f"{v:.6f}"))
    return row


def rows_strategy(contract: Contract) -> st.SearchStrategy[list[dict[str, str]]]:
    """Valid rows, their unique keys distinct (a key's values compare trimmed, any case)."""
    row = valid_row(contract)
    if not contract.unique:
        return st.lists(row, min_size=2, max_size=6)

    def key_of(key: tuple[str, ...]) -> Callable[[dict[str, str]], tuple[str, ...]]:
        return lambda r: tuple(r[name].strip().lower() for name in key)

    by_key = tuple(key_of(key) for key in contract.unique)
    return st.lists(row, min_size=2, max_size=6, unique_by=by_key)


def write(contract: Contract, rows: list[dict[str, str]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, [c.name for c in contract.columns])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "dataset",
    [
        pytest.param(name, marks=() if name in EVERY_RULE_KIND else pytest.mark.slow)
        for name in TABULAR_DATASETS
    ],
)
# (a generated row's regex-drawn values take seconds on a loaded 2-core machine: how fast
# they are drawn is not under test)
@hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_valid_rows_pass_and_each_mutation_is_caught(
    env: Settings, tmp_path_factory, dataset, data
):
    contract = registry.contract(dataset)
    rows = data.draw(rows_strategy(contract))
    target = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from([c for c in contract.columns if applicable(contract, c)]))
    kind = data.draw(st.sampled_from(applicable(contract, column)))
    value, reason = MUTATIONS[kind]
    if kind == "period":
        value = outside_the_period(column)
    if kind == "year" and column.type is ColumnType.TIMESTAMP:
        value += " 10:00:00"
    if kind == "too_long":
        value = "9" * (column.max_length + 1)
    if kind in ("minimum", "maximum"):  # just past the bound
        bound = column.minimum if kind == "minimum" else column.maximum
        assert bound is not None
        past = bound - 1 if kind == "minimum" else bound + 1
        value = str(int(past)) if column.type is ColumnType.INTEGER else repr(float(past))
    if kind == "duplicate":
        target = max(target, 1)  # the later of two rows is the duplicate
        value = rows[target - 1][column.name]
    if kind == "pattern":  # the form in words and by example, not the regular expression
        assert column.pattern is not None
        reason = WRONG_FORM.format(form=column.pattern.words, example=column.pattern.example)
    rows[target][column.name] = value
    path = write(contract, rows, tmp_path_factory.mktemp("f") / f"{dataset}.csv")
    record = ingest_file(
        env,
        principal=ROOT,
        contract=contract,
        path=path,
        filename=path.name,
        # (the administration's own datasets are sent under its code)
        operator=SUBMITTER.get(dataset, ADMINISTRATION if contract.administration_only else "CTCC"),
        period="2021-11",
    )
    assert record.rows_accepted == len(rows) - 1, (record.message, record.errors_by_reason)
    with session_scope(env) as session:
        submission = session.get(Submission, record.id)
        text = "".join(error_report_csv(env, submission)).lstrip("\ufeff")
    errors = list(csv.DictReader(io.StringIO(text)))
    assert {e["row"] for e in errors} == {str(target + 2)}
    assert any(e["column"] == column.name and reason in e["reason"] for e in errors), errors


def _big_cdr(tmp_path: Path, settings: Settings) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from ingest_cdr import generate

    cells, cdr = generate(tmp_path, 1_500_000)
    ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract("cells"),
        path=cells,
        filename="cells.csv",
        operator="CMCC",
        period="2021-11",
    )
    return cdr


def test_an_ingest_killed_halfway_leaves_nothing_visible(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    cdr = _big_cdr(tmp_path, settings)
    command = [
        sys.executable,
        "-m",
        "telereg",
        "ingest",
        str(cdr),
        "--dataset",
        "voice_cdr",
        "--operator",
        "CMCC",
        "--period",
        "2021-11",
        "--data-dir",
        str(settings.data_dir),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The work directory (outside the lake: it holds clear values) appears once it has begun.
    scratch = settings.data_dir / "scratch"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (scratch.exists() and any(scratch.glob("*"))):
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the work: reading and checking a 1.5M-row file
    assert process.poll() is None, "the ingest finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with session_scope(settings) as session:
        assert session.query(Submission).filter_by(dataset="voice_cdr").count() == 0
        assert lake.current_files(session, settings, "voice_cdr") == []
    assert (
        not list((settings.lake_dir / "voice_cdr").rglob("*.parquet"))
        if (settings.lake_dir / "voice_cdr").exists()
        else True
    )
    # The same file goes through afterwards, and the leftovers are swept.
    record = ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract("voice_cdr"),
        path=cdr,
        filename=cdr.name,
        operator="CMCC",
        period="2021-11",
    )
    assert record.status == "accepted"
    # The killed one's work directory (it may hold clear values) went at once, not a day
    # later: its process is gone.
    assert not list(scratch.iterdir())


def _ingest_one_cell(settings: Settings, tmp_path: Path, cell_id: str):
    """A cells file of one cell, ingested for CBN in 2021-11."""
    path = tmp_path / f"{cell_id}.csv"
    path.write_text(
        f"cell_id,site_id,longitude,latitude,city_code,technology\n{cell_id},S1,112.5,37.8,{CITY},4G\n"
    )
    return ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract("cells"),
        path=path,
        filename=path.name,
        operator="CBN",
        period="2021-11",
    )


def test_a_crash_between_files_and_record_is_invisible(env: Settings, tmp_path: Path, monkeypatch):
    def crash(*_args, **_kwargs):
        raise RuntimeError("power cut")

    with session_scope(env) as session:
        before = lake.current_files(session, env, "cells", operators=["CBN"])
    files_before = set(env.lake_dir.rglob("*.parquet"))
    monkeypatch.setattr(ingest_service, "_record", crash)
    with pytest.raises(RuntimeError):
        _ingest_one_cell(env, tmp_path, "K0001")
    with session_scope(env) as session:
        assert lake.current_files(session, env, "cells", operators=["CBN"]) == before
    # and the files published for the record that never came are withdrawn
    assert set(env.lake_dir.rglob("*.parquet")) == files_before


_KILLED_BETWEEN_FILES_AND_RECORD = """
import os, signal, sys
from pathlib import Path
from telereg import registry
from telereg.core.principal import cli_principal
from telereg.core.settings import load_settings
from telereg.ingest import service

service._record = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
service.ingest_file(
    load_settings(data_dir=Path(sys.argv[1])),
    principal=cli_principal("pytest"),
    contract=registry.contract("cells"),
    path=Path(sys.argv[2]),
    filename="cells.csv",
    operator="CBN",
    period="2021-11",
)
"""


def test_files_an_ingest_killed_before_its_record_left_are_swept_a_day_later(
    env: Settings, tmp_path: Path
):
    # A hard kill between moving the files into place and recording them: nothing names
    # the files, readers never see them, and the note written before publishing says so.
    recorded = _ingest_one_cell(env, tmp_path, "K0003")
    lake_files = set(env.lake_dir.rglob("*.parquet"))
    cells = tmp_path / "killed.csv"
    cells.write_text(
        f"cell_id,site_id,longitude,latitude,city_code,technology\nK0005,S1,112.5,37.8,{CITY},4G\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN_FILES_AND_RECORD, str(env.data_dir), str(cells)],
        check=False,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (note,) = (env.lake_dir / "_pending").glob("*.json")
    left = set(env.lake_dir.rglob("*.parquet")) - lake_files
    assert left, "the killed ingest had published its files"
    # A note of an ingest killed after its commit, and a file no note names (a state DB
    # that is not this lake's would name none): neither costs a recorded file.
    with session_scope(env) as session:
        named_id = session.get(Submission, recorded.id).file_id
    stale_note = env.lake_dir / "_pending" / f"{named_id}.json"
    stale_note.write_text(note.read_text())
    unnoted = env.lake_dir / "_errors" / f"{uuid.uuid4().hex}.parquet"
    unnoted.parent.mkdir(parents=True, exist_ok=True)
    unnoted.write_bytes(b"PAR1")
    day_and_more = time.time() - 25 * 3600
    for path in (note, stale_note, unnoted):
        os.utime(path, (day_and_more, day_and_more))

    assert _ingest_one_cell(env, tmp_path, "K0004").status == "accepted"  # the sweep runs first
    assert not any(p.exists() for p in left)
    assert not note.exists()
    assert not stale_note.exists()
    assert unnoted.exists()
    with session_scope(env) as session:
        kept = lake.current_files(session, env, "cells", operators=["CBN"])
        assert kept
        assert all(f.exists() for f in kept)
        assert (env.lake_dir / session.get(Submission, recorded.id).lake_path).exists()


def test_an_error_after_the_record_is_committed_keeps_its_files(
    env: Settings, tmp_path: Path, monkeypatch
):
    # The record is committed, then the process is interrupted (Ctrl-C, a connection lost
    # while COMMIT was acknowledged): the submission names its files, so they must stay.
    real_scope = ingest_service.session_scope
    calls = []

    @contextlib.contextmanager
    def interrupted_after_commit(settings):
        calls.append(1)
        with real_scope(settings) as session:
            yield session
        if len(calls) == 2:  # the second scope is the one that records
            raise KeyboardInterrupt

    monkeypatch.setattr(ingest_service, "session_scope", interrupted_after_commit)
    with pytest.raises(KeyboardInterrupt):
        _ingest_one_cell(env, tmp_path, "K0002")
    with session_scope(env) as session:
        files = lake.current_files(session, env, "cells", operators=["CBN"])
    assert files, "the submission was recorded"
    assert all(f.exists() for f in files)


def test_two_records_for_one_slot_at_once_leave_one_current(db_settings: Settings):
    # The last step of two ingests of one slot, overlapping: the first has written its
    # record but not committed when the second begins. The second must wait for it and
    # supersede it; without the wait, on PostgreSQL, both would stay current.
    import threading
    from datetime import timedelta

    from telereg.core.accounts import get_operator
    from telereg.core.db import utcnow
    from telereg.ingest import service
    from telereg.ingest.models import SubmissionStatus

    prepare(db_settings, principal=ROOT)
    with session_scope(db_settings) as session:
        operator_id = get_operator(session, "CMCC").id
    contract = registry.contract("cells")
    received = utcnow()

    def record(session, n: int) -> None:
        service._record(
            session,
            settings=db_settings,
            principal=ROOT,
            contract=contract,
            operator_id=operator_id,
            filename=f"cells-{n}.csv",
            digest=f"{n:064x}",
            size=1,
            file_id=f"{n:032x}",
            result=service._Result(SubmissionStatus.ACCEPTED, rows_total=1, period="2021-11"),
            accepted_path=None,
            crs="wgs84",
            received=received + timedelta(seconds=n),
            period="2021-11",
        )

    first_recorded, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with session_scope(db_settings) as session:
                record(session, 1)
                first_recorded.set()
                release.wait(10)
        except BaseException as err:  # noqa: BLE001 (a thread's error, reported below)
            errors.append(err)
            first_recorded.set()

    def second() -> None:
        try:
            with session_scope(db_settings) as session:
                record(session, 2)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    a = threading.Thread(target=first)
    a.start()
    assert first_recorded.wait(10)
    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.5)
    release.set()
    a.join(10)
    b.join(10)
    assert errors == []
    with session_scope(db_settings) as session:
        current = session.scalars(
            select(Submission.filename).where(Submission.dataset == "cells", Submission.current)
        ).all()
    assert current == ["cells-2.csv"]
