"""The demo scenario at small scale: files as operators send them, loaded for real."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.settings import Settings, load_settings
from telereg.ingest.models import Submission
from telereg.ingest.submissions import error_report_csv
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import ScenarioSummary, run_scenario
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ScenarioSummary]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("demo") / "var")
    prepare(settings, principal=ROOT)
    summary = run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=11,
        synthesizers=registry.SYNTHESIZERS,
        contracts=registry.CONTRACTS,
    )
    return settings, summary


def test_every_file_is_loaded(demo: tuple[Settings, ScenarioSummary]) -> None:
    _, summary = demo
    assert summary.files == len(summary.records) > 10
    assert {r.status for r in summary.records} <= {"accepted", "partial"}
    assert summary.rows_accepted > 50_000
    datasets = {r.dataset for r in summary.records}
    assert {"sites", "cells", "voice_cdr"} <= datasets


def test_files_come_in_the_forms_operators_use(demo: tuple[Settings, ScenarioSummary]) -> None:
    settings, _ = demo
    with session_scope(settings) as session:
        rows = session.query(Submission.file_format, Submission.encoding).all()
    assert ("xlsx", "") in rows
    assert ("csv", "gb18030") in rows, "one GBK file with Chinese headers"


def test_every_planted_bad_row_is_reported(demo: tuple[Settings, ScenarioSummary]) -> None:
    settings, summary = demo
    truth = json.loads(Path(summary.truth_file).read_text())
    planted = [p for domain in truth.values() for p in domain.get("bad_rows", [])]
    assert len(planted) >= 6
    by_file: dict[str, Submission] = {}
    with session_scope(settings) as session:
        for s in session.query(Submission).all():
            session.expunge(s)
            by_file[f"{s.operator.code}/{s.period}/{s.filename}"] = s
    for bad in planted:
        submission = by_file[bad["file"]]
        text = "".join(error_report_csv(settings, submission)).lstrip("\ufeff")
        found = {(int(e["row"]), e["column"]) for e in csv.DictReader(io.StringIO(text))}
        assert (bad["row"], bad["column"]) in found, bad


def test_truth_is_kept_apart_and_never_ingested(demo: tuple[Settings, ScenarioSummary]) -> None:
    settings, summary = demo
    assert summary.truth_file is not None
    assert settings.lake_dir not in summary.truth_file.parents
    assert not any("truth" in p.name for p in settings.lake_dir.rglob("*"))


def test_running_again_changes_nothing(demo: tuple[Settings, ScenarioSummary]) -> None:
    settings, summary = demo
    again = run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=11,
        synthesizers=registry.SYNTHESIZERS,
        contracts=registry.CONTRACTS,
    )
    assert all(r.duplicate_of is not None for r in again.records)
    assert [r.id for r in again.records] == [r.id for r in summary.records]


def test_the_seed_decides_the_province(tmp_path: Path) -> None:
    from telereg.reference.regions import load_regions
    from telereg.scenario.model import build_sites

    regions = load_regions("140000")
    a = build_sites(regions, Scale.SMALL, 1)
    b = build_sites(regions, Scale.SMALL, 1)
    c = build_sites(regions, Scale.SMALL, 2)
    assert (a.lon == b.lon).all()
    assert not (a.lon == c.lon).all()
    in_service = ((a.technology == "5G") & (a.in_service_from <= 1)).sum()
    assert abs(in_service - 33_000 * 0.02) < 15, "small scale: 2 % of the source's 33,000 5G sites"
