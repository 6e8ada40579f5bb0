"""The build-out demo's planted gaps are found, and nothing else is reported."""

from __future__ import annotations

import io
import json

import pytest

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.settings import load_settings
from telereg.domains.buildout.service import coverage
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario
from tests.conftest import ROOT

TOLERANCE_KM = 1.0  # the line bends; a site reaches further across a bend than along it


@pytest.mark.parametrize("seed", [5, pytest.param(23, marks=pytest.mark.slow)])
def test_planted_gaps_are_found_and_nothing_else(tmp_path, seed: int) -> None:
    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    summary = run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=seed,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    truth = json.loads(summary.truth_file.read_text())["buildout"]
    assert truth["corridor_gaps"], "the scenario plants at least one gap"
    with session_scope(settings) as session:
        report = coverage(session, settings=settings, principal=ROOT)
    reported = [
        (c["corridor_id"], g["start_km"], g["end_km"]) for c in report.corridors for g in c["gaps"]
    ]
    for gap in truth["corridor_gaps"]:
        assert any(
            cid == gap["corridor_id"]
            and abs(start - gap["start_km"]) <= TOLERANCE_KM
            and abs(end - gap["end_km"]) <= TOLERANCE_KM
            for cid, start, end in reported
        ), (gap, reported)
    for cid, start, end in reported:
        assert (end - start) * 1000 >= 500
        assert any(
            g["corridor_id"] == cid
            and start < g["end_km"] + TOLERANCE_KM
            and end > g["start_km"] - TOLERANCE_KM
            for g in truth["corridor_gaps"]
        ), f"reported gap {cid} {start}-{end} km was not planted"
    uncovered = sorted(p["place_id"] for p in report.key_places if not p["covered"]["ANY"])
    assert uncovered == truth["uncovered_places"]
    assert report.key_place_rates["all"]["ANY"] == pytest.approx(0.95, abs=0.02), "about 95 %"
    assert report.corridor_rates["hsr"]["ANY"] > 0.99


def test_demo_reproduces_the_sources_gigabit_figure_and_exports(tmp_path) -> None:
    import io

    from fastapi.testclient import TestClient
    from openpyxl import load_workbook

    from telereg.app import create_app
    from telereg.core import accounts
    from telereg.domains.buildout.service import figures
    from tests.conftest import PASSWORD

    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=5,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    with session_scope(settings) as session:
        result = figures(session, settings=settings, principal=ROOT)
        accounts.create_user(
            session, principal=ROOT, username="ann", role="analyst", password=PASSWORD
        )
        token = accounts.issue_token(session, principal=ROOT, username="ann").token
    assert result["gigabit"]["coverage"] == pytest.approx(0.551, abs=0.001), "source: 55.1 %"
    assert len(result["gigabit"]["cities"]) == 11
    province = next(t for t in result["targets"] if t["region_code"] == "140000")
    assert province["projected"] >= province["done"] > 0
    assert {p["batch"] for p in result["projects"]} == {6, 7}
    assert all(0 <= b["share"] <= 1 for b in result["beidou"])
    client = TestClient(create_app(settings))
    auth = {"Authorization": f"Bearer {token}"}
    csv_text = client.get("/api/v1/buildout/export/gaps?format=csv", headers=auth).text
    assert csv_text.lstrip("\ufeff").startswith("corridor_id,name,start_km")
    xlsx = client.get("/api/v1/buildout/export/gigabit_cities?format=xlsx", headers=auth)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == 12
    assert client.get("/api/v1/buildout/export/nothing", headers=auth).status_code == 404


def test_analysis_report_pdf_has_its_sections_and_figures(tmp_path) -> None:
    from pypdf import PdfReader

    from telereg.reports.buildout import buildout_report

    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    summary = run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=5,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    truth = json.loads(summary.truth_file.read_text())["buildout"]
    with session_scope(settings) as session:
        pdf = buildout_report(
            session,
            settings=settings,
            principal=ROOT,
            region_code="140000",
            period="2021-11",
            output="pdf",
        )
        english = buildout_report(
            session,
            settings=settings,
            principal=ROOT,
            region_code="140000",
            period="2021-11",
            language="en",
        )
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = "".join(page.extract_text() for page in PdfReader(path).pages)
    for section in (
        "山西省 网络建设分析报告",
        "主要指标",
        "目标进度",
        "各市排名",
        "未覆盖路段",
        "未覆盖的重点场所",
        "方法说明",
    ):
        assert section in text, section
    assert "55.1%" in text, "the source's gigabit coverage"
    assert "太原市" in text
    for gap in truth["corridor_gaps"]:
        assert gap["corridor_id"] in text
    assert b"Build-out analysis report" in english
    assert b"Key figures" in english


def test_an_xlsx_export_writes_no_formula_from_ingested_text() -> None:
    # A corridor's name comes from a file anyone with a GIS tool can write.
    import openpyxl

    from telereg.domains.buildout.export import to_xlsx

    data = to_xlsx([{"name": '=HYPERLINK("http://x","y")', "km": 3.5}], "corridors")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].data_type == "s"
    assert sheet["A2"].value == '\'=HYPERLINK("http://x","y")'
    assert sheet["B2"].value == 3.5
