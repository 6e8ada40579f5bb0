"""The demo scenario at small scale: files as operators send them, loaded for real."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.models import Operator
from telereg.core.settings import Settings, load_settings
from telereg.domains.fraud import casework, findings
from telereg.ingest.models import Submission
from telereg.ingest.submissions import error_report_csv
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import ScenarioSummary, run_scenario
from tests.conftest import ROOT, csrf_of


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


def hand_over(
    session, settings: Settings, case_ids: list[int], note: str, agency="POLICE-AF", **kw
):
    """Hand cases over to an agency (the police's anti-fraud centre) as the root principal."""
    from telereg.domains.fraud import handover

    return handover.export(
        session,
        settings=settings,
        principal=ROOT,
        case_ids=case_ids,
        agency_code=agency,
        note=note,
        **kw,
    )


def add_liaisons(session, agencies: dict[str, str]) -> None:
    """Liaison users of the named agencies, by user name (password: the tests' own)."""
    from telereg.core import accounts
    from telereg.core.permissions import Role
    from tests.conftest import PASSWORD

    for name, agency in agencies.items():
        accounts.create_user(
            session,
            principal=ROOT,
            username=name,
            role=Role.LIAISON,
            password=PASSWORD,
            agency=agency,
        )


def city_police(session) -> None:
    """A second police agency, the city's (added once)."""
    from telereg.core import accounts

    if "POLICE-CITY" not in {a.code for a in accounts.list_agencies(session)}:
        accounts.add_agency(
            session, principal=ROOT, code="POLICE-CITY", name="市公安局", kind="police"
        )


@pytest.fixture(scope="module")
def fraud_scan(demo: tuple[Settings, ScenarioSummary]) -> Settings:
    from telereg.domains.fraud import service as fraud

    settings, _ = demo
    with session_scope(settings) as session:
        fraud.scan(session, settings=settings, principal=ROOT, period="2021-11")
    return settings


def test_fraud_scan_finds_what_was_planted(
    demo: tuple[Settings, ScenarioSummary], fraud_scan: Settings
) -> None:
    """Thresholds were set on the demo's seed (2021); this province has seed 11."""
    from telereg.domains.fraud.evaluation import evaluate, recall_by_gateway

    _, summary = demo
    truth = json.loads(Path(summary.truth_file).read_text())
    scores = evaluate(fraud_scan, truth, "2021-11")
    sim_box = scores["sim_box (rules or model)"]
    assert sim_box.planted >= 40
    assert sim_box.precision >= 0.9
    assert sim_box.recall >= 0.9
    for pattern, score in scores.items():
        assert score.planted > 0, pattern
        assert score.precision >= 0.8, (pattern, score)
        if pattern.startswith("sim_box (model"):
            # The model alone is held to less: trained on about fifty confirmed lines of the
            # small scenario, it finds 90 of the 112 planted cards. (It used to vary between
            # runs, from 73 % to 100 %: its training rows were in token order, which changes
            # with each run's pseudonym key. They are now in feature order.)
            assert score.recall >= 0.75, (pattern, score)
            continue
        assert score.recall >= 0.8, (pattern, score)
    by_gateway = recall_by_gateway(fraud_scan, truth, "2021-11")
    modes = [by_gateway[g] for g in by_gateway if g.split()[0] in ("static", "moving", "throttled")]
    models = [by_gateway[g] for g in by_gateway if "model" in g]
    assert sum(m.planted for m in modes) == sum(m.planted for m in models) == sim_box.planted
    assert sum(m.hits for m in modes) == sim_box.hits
    for group, score in by_gateway.items():
        assert score.recall >= 0.75, (group, score)


def test_fraud_lines_are_seen_only_by_whom_may(fraud_scan: Settings) -> None:
    from telereg.core.errors import PermissionDeniedError
    from telereg.core.permissions import Role
    from tests.conftest import principal_of_role

    everyone = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-11")
    assert everyone["operator"].nunique() > 1
    operator = principal_of_role(Role.OPERATOR, operator_code="CMCC")
    own = findings.suspect_rows(fraud_scan, principal=operator, period="2021-11")
    assert len(own) > 0
    assert set(own["operator"]) == {"CMCC"}
    for role in (Role.LIAISON, Role.VIEWER):
        with pytest.raises(PermissionDeniedError):
            findings.suspect_rows(fraud_scan, principal=principal_of_role(role), period="2021-11")


def test_suspects_are_listed_a_page_at_a_time_by_kind_operator_and_city(
    fraud_scan: Settings,
) -> None:
    from telereg.core.errors import InputError
    from telereg.core.permissions import Role
    from tests.conftest import principal_of_role

    rows = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-11")
    first = findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11", limit=10)
    assert first["total"] == len(rows)
    scores = [s["score"] for s in first["suspects"]]
    assert len(scores) == 10
    assert scores == sorted(scores, reverse=True), "highest score first"
    assert scores[0] == rows["rule_score"].max()
    pages = [
        findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11", limit=40, offset=o)
        for o in range(0, len(rows), 40)
    ]
    listed = [s["line"] + s["kind"] for p in pages for s in p["suspects"]]
    assert len(listed) == len(set(listed)) == len(rows), "pages neither repeat nor skip"

    city = rows["home_city"].dropna().mode()[0]
    narrowed = findings.suspect_list(
        fraud_scan, principal=ROOT, period="2021-11", kind="card", operator="CMCC", city=city
    )
    expected = rows[(rows["kind"] == "card") & (rows["operator"] == "CMCC")]
    assert narrowed["total"] == int((expected["home_city"] == city).sum())
    assert all(
        (s["kind"], s["operator"], s["home_city"]) == ("card", "CMCC", city)
        for s in narrowed["suspects"]
    )
    operator = principal_of_role(Role.OPERATOR, operator_code="CUCC")
    theirs = findings.suspect_list(
        fraud_scan, principal=operator, period="2021-11", operator="CMCC"
    )
    assert theirs["total"] == 0, "an operator's user cannot list another operator's lines"
    with pytest.raises(InputError, match="kind 'domain' is not one of"):
        findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11", kind="domain")


def test_id_numbers_over_the_card_limit_are_listed_with_their_totals(
    fraud_scan: Settings,
) -> None:
    from telereg.core.permissions import Role
    from telereg.domains.fraud import service as fraud
    from tests.conftest import principal_of_role

    stored = fraud.load_result(fraud_scan, "2021-11", "over_limit")
    listed = findings.ids_over_limit(fraud_scan, principal=ROOT, period="2021-11", limit=None)
    assert listed["total"] == len(stored) > 0
    assert listed["limit_per_operator"] == 5
    cards = [r["cards"] for r in listed["ids"]]
    assert cards == sorted(cards, reverse=True), "most cards first"
    assert all(r["cards"] > 5 for r in listed["ids"])
    assert all(r["all_operators"] >= r["cards"] for r in listed["ids"])
    with session_scope(fraud_scan) as session:
        counted = findings.dashboard(session, settings=fraud_scan, principal=ROOT, period="2021-11")
    assert counted["counts"]["over_limit"] == len({r["id_number"] for r in listed["ids"]})
    operator = principal_of_role(Role.OPERATOR, operator_code="CMCC")
    own = findings.ids_over_limit(fraud_scan, principal=operator, period="2021-11", limit=None)
    assert {r["operator"] for r in own["ids"]} <= {"CMCC"}
    assert own["total"] == int((stored["operator"] == "CMCC").sum())
    page = findings.ids_over_limit(fraud_scan, principal=ROOT, period="2021-11", limit=2, offset=1)
    assert page["ids"] == listed["ids"][1:3]
    command = [sys.executable, "-m", "telereg", "fraud", "over-limit", "--period", "2021-11"]
    printed = subprocess.run(
        [*command, "--json", "--data-dir", str(fraud_scan.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(printed.stdout)["ids"] == listed["ids"][:50]


def test_cards_whose_holder_is_not_the_user_are_listed_with_their_signals(
    demo: tuple[Settings, ScenarioSummary], fraud_scan: Settings
) -> None:
    from telereg.core.permissions import Role
    from telereg.core.privacy import Pseudonymiser
    from telereg.domains.fraud import service as fraud
    from tests.conftest import principal_of_role

    listed = findings.identity_list(fraud_scan, principal=ROOT, period="2021-11", limit=None)
    cards = listed["cards"]
    assert listed["total"] == len(cards) > 0
    suspects = set(fraud.load_result(fraud_scan, "2021-11", "suspects")["line"])
    assert not {c["line"] for c in cards} & suspects, "SIM-box ports are listed as SIM boxes"
    for card in cards:
        assert card["signals"], card
        assert ("shared_handset" in card["signals"]) == (card["imei_identities"] >= 2)
    # The ring cards were planted on phones that carry several cards of the ring's people.
    _, summary = demo
    truth = json.loads(Path(summary.truth_file).read_text())
    token = Pseudonymiser(fraud_scan.secret("pseudonym_key")).token
    ring = {token(n) for r in truth["fraud"]["rings"] for n in r["lines"]}
    shared = {c["line"] for c in cards if "shared_handset" in c["signals"]}
    assert ring & shared, "ring cards on shared phones are found"
    # Borrowed identities call normally: only this list finds them, by the first-day signal.
    # Family handsets show the shared-handset signal and come after every new card.
    borrowed = {token(b["line"]) for b in truth["fraud"]["borrowed_identities"]}
    family = {token(n) for f in truth["fraud"]["family_handsets"] for n in f["lines"]}
    position = {c["line"]: i for i, c in enumerate(cards)}
    assert borrowed <= set(position)
    assert all(
        card["signals"] == ["away_from_day_one"] for card in cards if card["line"] in borrowed
    )
    assert not borrowed & set(fraud.load_result(fraud_scan, "2021-11", "cards")["line"])
    assert family <= set(position)
    assert max(position[line] for line in borrowed) < min(position[line] for line in family)
    with session_scope(fraud_scan) as session:
        shown = findings.dashboard(session, settings=fraud_scan, principal=ROOT, period="2021-11")
    assert shown["counts"]["identity"] == listed["total"]
    operator = principal_of_role(Role.OPERATOR, operator_code="CMCC")
    own = findings.identity_list(fraud_scan, principal=operator, period="2021-11", limit=None)
    assert own["total"] == sum(c["operator"] == "CMCC" for c in cards)
    assert {c["operator"] for c in own["cards"]} <= {"CMCC"}
    from typer.testing import CliRunner

    from telereg.cli import app

    where = ["--data-dir", str(fraud_scan.data_dir)]
    printed = CliRunner().invoke(
        app, ["fraud", "identity", "--period", "2021-11", "--json", *where]
    )
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["cards"] == cards[:50]


def test_an_operator_sees_its_own_lines_in_counts_rings_and_graphs(fraud_scan: Settings) -> None:
    from telereg.core.permissions import Role
    from telereg.domains.fraud import service as fraud
    from tests.conftest import principal_of_role

    with session_scope(fraud_scan) as session:
        everyone = findings.dashboard(
            session, settings=fraud_scan, principal=ROOT, period="2021-11"
        )
    assert {o for r in everyone["rings"] for o in r["operators"]} - {"CMCC"}, "rings span operators"
    operator = principal_of_role(Role.OPERATOR, operator_code="CMCC")
    with session_scope(fraud_scan) as session:
        own = findings.dashboard(session, settings=fraud_scan, principal=operator, period="2021-11")
    rows = findings.suspect_rows(fraud_scan, principal=operator, period="2021-11")
    assert own["counts"]["sim_box"] == int((rows["kind"] == "sim_box").sum())
    assert own["counts"]["sim_box"] < everyone["counts"]["sim_box"]
    assert 0 < own["lines"] < everyone["lines"], "lines scanned: the operator's own"
    assert own["trend"][-1]["sim_box"] == own["counts"]["sim_box"]
    assert {n["operator"] for n in own["graph"]["nodes"]} == {"CMCC"}
    assert all(r["operators"] == ["CMCC"] for r in own["rings"])
    # A suspect linked to other operators' lines: its page shows the links among CMCC's only.
    edges = fraud.load_result(fraud_scan, "2021-11", "ring_edges")
    nodes = fraud.load_result(fraud_scan, "2021-11", "ring_nodes").set_index("line")
    mixed = [
        line
        for a, b in zip(edges["a"], edges["b"], strict=True)
        for line, other in ((a, b), (b, a))
        if nodes.loc[line, "operator"] == "CMCC"
        and nodes.loc[other, "operator"] != "CMCC"
        and line in set(rows["line"])
    ]
    assert mixed, "the scenario links lines across operators"
    with session_scope(fraud_scan) as session:
        detail = findings.line_detail(
            session, settings=fraud_scan, principal=operator, period="2021-11", line=mixed[0]
        )
    assert {n["operator"] for n in detail["graph"]["nodes"]} == {"CMCC"}
    shown = {n["line"] for n in detail["graph"]["nodes"]}
    assert all(e["a"] in shown and e["b"] in shown for e in detail["graph"]["edges"])


def test_a_suspect_page_draws_each_call_on_a_timeline(
    fraud_scan: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from telereg.ingest import lake

    rows = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-11")
    box = rows[rows["kind"] == "sim_box"].iloc[0]
    with session_scope(fraud_scan) as session:
        files = lake.current_files(session, fraud_scan, "voice_cdr", periods=["2021-11"])
    names = ["caller", "operator", "direction", "start_time", "duration_s"]
    legs = pd.concat(pd.read_parquet(f, columns=names) for f in files)
    made = legs[
        (legs["caller"] == box["line"])
        & (legs["operator"] == box["operator"])
        & (legs["direction"].fillna("") != "MT")
    ].sort_values(["start_time", "duration_s"])
    expected = [
        [f"{t:%Y-%m-%d %H:%M:%S}", int(d)]
        for t, d in zip(made["start_time"], made["duration_s"], strict=True)
    ]

    def timeline() -> dict:
        with session_scope(fraud_scan) as session:
            return findings.line_detail(
                session, settings=fraud_scan, principal=ROOT, period="2021-11", line=box["line"]
            )["timeline"]

    whole = timeline()
    assert whole["total"] == whole["shown"] == len(made) > 100
    assert sorted(whole["calls"]) == sorted(expected), "every call, when and how long"
    assert [c[0] for c in whole["calls"]] == sorted(c[0] for c in expected), "in time order"
    monkeypatch.setattr(findings, "TIMELINE_CALLS", 10)
    first = timeline()
    assert (first["shown"], first["total"]) == (10, len(made))
    assert [c[0] for c in first["calls"]] == [c[0] for c in expected[:10]], "the first calls"


def test_a_suspect_page_compares_the_callees_with_the_month_before(fraud_scan: Settings) -> None:
    import pandas as pd

    from telereg.domains.fraud import service as fraud
    from telereg.ingest import lake

    def made(period: str) -> pd.DataFrame:
        """The month's originated legs, read from the lake's files directly."""
        with session_scope(fraud_scan) as session:
            files = lake.current_files(session, fraud_scan, "voice_cdr", periods=[period])
        names = ["caller", "callee", "operator", "direction"]
        legs = pd.concat(pd.read_parquet(f, columns=names) for f in files)
        return legs[legs["direction"].fillna("") != "MT"]

    october, november = made("2021-10"), made("2021-11")
    rows = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-11")
    boxes = rows[(rows["kind"] == "sim_box") & rows["line"].isin(set(october["caller"]))]
    assert len(boxes) > 0, "some planted SIM boxes worked in October too"
    box = boxes.iloc[0]
    with session_scope(fraud_scan) as session:
        history = findings.line_detail(
            session, settings=fraud_scan, principal=ROOT, period="2021-11", line=box["line"]
        )["history"]

    def of_the_box(legs: pd.DataFrame) -> pd.DataFrame:
        return legs[(legs["caller"] == box["line"]) & (legs["operator"] == box["operator"])]

    then = of_the_box(october)
    callees = set(of_the_box(november)["callee"].dropna())
    assert history["available"]
    assert history["previous_period"] == "2021-10"
    assert history["calls_before"] == len(then)
    assert history["callees"] == len(callees) == box["callees"]
    assert history["called_before"] == len(callees & set(then["callee"].dropna()))
    assert history["new_share"] >= 0.9, "a SIM box calls new numbers month after month"
    # Other operators' calls of October say nothing of this line: without its own
    # operator's, there is nothing to compare with (not "no calls then").
    with session_scope(fraud_scan) as session:
        own = session.scalars(
            select(Submission)
            .join(Operator)
            .where(
                Submission.dataset == "voice_cdr",
                Submission.period == "2021-10",
                Submission.current,
                Operator.code == box["operator"],
            )
        ).all()
        assert own
        for submission in own:
            submission.current = False
        session.flush()
        try:
            unknown = findings.line_detail(
                session, settings=fraud_scan, principal=ROOT, period="2021-11", line=box["line"]
            )["history"]
        finally:
            for submission in own:
                submission.current = True
    assert unknown == {"previous_period": "2021-10", "available": False}
    # October has no month before it in the lake: nothing to compare with.
    with session_scope(fraud_scan) as session:
        fraud.scan(session, settings=fraud_scan, principal=ROOT, period="2021-10")
        first = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-10").iloc[0]
        earlier = findings.line_detail(
            session, settings=fraud_scan, principal=ROOT, period="2021-10", line=first["line"]
        )["history"]
    assert earlier == {"previous_period": "2021-09", "available": False}


def test_suspect_pages_read_at_once_all_finish(fraud_scan: Settings) -> None:
    """A page's figures come in concurrent requests, and several analysts read at once.
    (Lines kept as Arrow tables that DuckDB scanned from Python deadlocked here, holding
    the interpreter: so the readers run in a child process, which a deadlock times out.)"""

    lines = findings.suspect_rows(fraud_scan, principal=ROOT, period="2021-11")["line"][:3].tolist()
    readers = f"""
import threading
from telereg.core.db import session_scope
from telereg.core.settings import load_settings
from telereg.domains.fraud import findings
from tests.conftest import ROOT

settings = load_settings(data_dir={str(fraud_scan.data_dir)!r})
done = []

def read(line):
    with session_scope(settings) as session:
        detail = findings.line_detail(
            session, settings=settings, principal=ROOT, period="2021-11", line=line
        )
    done.append(detail["history"]["available"])

threads = [threading.Thread(target=read, args=(line,)) for line in {lines!r} * 4]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(done), all(done))
"""
    finished = subprocess.run(
        [sys.executable, "-c", readers],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert finished.stdout.split() == ["12", "True"], finished.stderr


def test_a_handover_needs_a_real_reason_and_a_rolled_back_one_leaves_no_package(
    fraud_scan: Settings,
) -> None:
    from telereg.core.errors import InputError
    from telereg.domains.fraud import handover

    store = fraud_scan.data_dir / "handovers"
    before = sorted(p.name for p in store.rglob("*") if p.is_file())
    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open")
        case_id = [c for c in queue if c.subject["type"] == "sim_box"][-1].id
        casework.move_case(session, principal=ROOT, case_id=case_id, to="in_review", note="look")
        for step in ("referred", "resolved"):
            with pytest.raises(InputError, match=r"hand|disposal"):
                casework.move_case(session, principal=ROOT, case_id=case_id, to=step, note="skip")
        for reason in ("x", "  ab  "):
            with pytest.raises(InputError, match="at least 6 different letters"):
                hand_over(session, fraud_scan, [case_id], "n", reveal_reason=reason)
        assert casework.get_case(session, principal=ROOT, case_id=case_id).status == "in_review"
        # Subscribers' lines are the police's to act on, not the health commission's.
        with pytest.raises(InputError, match="handed over to a police agency; HEALTH is not"):
            hand_over(session, fraud_scan, [case_id], "wrong desk", agency="HEALTH")
        assert casework.get_case(session, principal=ROOT, case_id=case_id).status == "in_review"
    # A hand-over whose transaction is rolled back (a failed commit) writes no package.
    made: list[handover.Handover] = []

    def hand_over_then_fail() -> None:
        with session_scope(fraud_scan) as session:
            made.append(hand_over(session, fraud_scan, [case_id], "n", reveal_reason="   "))
            raise RuntimeError("the commit failed")

    with pytest.raises(RuntimeError):
        hand_over_then_fail()
    assert made[0].manifest["clear_values"] is False
    assert not made[0].path.exists()
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == before
    with session_scope(fraud_scan) as session:
        assert casework.get_case(session, principal=ROOT, case_id=case_id).status == "in_review"


def _sim_boxes(queue: list) -> list[int]:
    return [c.id for c in queue if c.subject.get("type") == "sim_box"]


def test_fraud_case_goes_to_the_police_and_back(fraud_scan: Settings, tmp_path: Path) -> None:
    import zipfile

    from telereg.cases.service import move
    from telereg.core.audit import AuditEntry
    from telereg.core.errors import (
        ConfigurationError,
        ConflictError,
        InputError,
        NotFoundError,
        SignatureError,
    )
    from telereg.core.permissions import Role
    from telereg.domains.fraud import handover
    from tests.conftest import principal_of_role

    settings = fraud_scan
    police = principal_of_role(Role.LIAISON, agency_code="POLICE-AF")
    health = principal_of_role(Role.LIAISON, agency_code="HEALTH")
    with session_scope(settings) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open")
        case, other = [c for c in queue if c.subject["type"] == "sim_box"][:2]
        case_id, token = case.id, case.subject["line"]
        # (the police's queue may hold a domain handed over by another test of this module)
        assert _sim_boxes(casework.case_queue(session, principal=police)) == []
        packages = set((settings.data_dir / "handovers").rglob("*.zip"))
        with pytest.raises(ConflictError, match="only cases in review"):
            hand_over(session, settings, [case_id], "too early")
        move(
            session,
            principal=ROOT,
            workflow=casework.WORKFLOW,
            case_id=case_id,
            to="in_review",
            note="calls like a gateway",
        )
        # One case not in review stops the whole hand-over: nothing moves, nothing is written.
        with pytest.raises(ConflictError, match=f"case {other.id} is open"):
            hand_over(session, settings, [case_id, other.id], "both")
        assert casework.get_case(session, principal=ROOT, case_id=case_id).status == "in_review"
        assert set((settings.data_dir / "handovers").rglob("*.zip")) == packages
        made = hand_over(
            session, settings, [case_id], "for investigation", reveal_reason="police request JQ-1"
        )
    manifest = handover.verify_archive(made.archive, settings.secret("handover_key"), where="-")
    assert manifest["cases"] == [case_id]
    # Clear numbers inside: kept encrypted, as the vault is, and readable by the owner only.
    assert made.path.stat().st_mode & 0o777 == 0o600
    assert made.path.parent.stat().st_mode & 0o777 == 0o700
    assert (settings.data_dir / "handovers").stat().st_mode & 0o777 == 0o700
    with zipfile.ZipFile(io.BytesIO(made.archive)) as package:
        text = package.read("cases.csv").decode("utf-8-sig")
    assert token in text
    assert ",1" in text  # the clear number from the vault starts with 1
    clear = next(csv.DictReader(io.StringIO(text)))["clear_value"]
    kept = made.path.read_bytes()
    assert not zipfile.is_zipfile(made.path)
    assert clear.encode() not in kept
    assert token.encode() not in kept
    assert handover.kept_archive(settings, made.path) == made.archive
    # Bound to its agency and name: moved to another agency's folder, it does not open.
    moved = settings.data_dir / "handovers" / "POLICE-CITY" / made.path.name
    moved.parent.mkdir(mode=0o700, exist_ok=True)
    moved.write_bytes(kept)
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        handover.kept_archive(settings, moved)
    moved.unlink()
    moved.parent.rmdir()
    [row] = list(csv.DictReader(io.StringIO(text)))
    # What the police need to find the device: its handsets and where it called from.
    assert row["imeis"], "a SIM-box line calls from a gateway's port"
    assert len(row["device_tacs"]) == 8
    assert row["main_cell"]
    assert row["city_code"].startswith("14")
    assert 110 < float(row["longitude"]) < 115
    clear_imeis = row["clear_imeis"].split("; ")
    assert len(clear_imeis) == len(row["imeis"].split("; "))
    assert all(i.isdigit() and len(i) == 15 for i in clear_imeis), "clear IMEIs, from the vault"
    assert all(i.startswith(row["device_tacs"]) for i in clear_imeis)
    # What the signals rest on, as figures.
    assert row["signals"]
    assert "calls_per_day=" in row["evidence"]
    assert "imei_lines=" in row["evidence"]
    with session_scope(settings) as session:
        assert _sim_boxes(casework.case_queue(session, principal=police)) == [case_id]
        assert casework.case_queue(session, principal=health) == []
        with pytest.raises(NotFoundError):
            casework.get_case(session, principal=health, case_id=case_id)
        with pytest.raises(NotFoundError):
            handover.record_disposal(
                session,
                principal=health,
                case_id=case_id,
                disposal="line_suspended",
                note="not ours",
            )
    with session_scope(settings) as session:
        assert handover.packages(session, settings, principal=health) == []
    with session_scope(settings) as session:
        with pytest.raises(NotFoundError):
            handover.package_for(
                session, settings, principal=health, agency="POLICE-AF", name=made.path.name
            )
        fetched = handover.package_for(
            session, settings, principal=police, agency="POLICE-AF", name=made.path.name
        )
        assert fetched == made.archive
        # Both the refusal and the fetch of a package with clear numbers are in the audit log.
        trail = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.in_(["fraud.handover.refused", "fraud.handover.fetched"]))
            .order_by(AuditEntry.id)
        ).all()
        assert [e.action for e in trail][-2:] == [
            "fraud.handover.refused",
            "fraud.handover.fetched",
        ]
        assert trail[-1].detail == {"clear_values": True}
        # A package kept before packages were encrypted (a plain archive) is still served.
        legacy = made.path.with_name("handover-20211201T000000-legacy.zip")
        legacy.write_bytes(made.archive)
        listed = handover.packages(session, settings, principal=police)
        assert {p["name"]: p["cases"] for p in listed}[legacy.name] == [case_id]
        assert {p["name"]: p["bytes"] for p in listed}[made.path.name] == len(made.archive)
        assert (
            handover.package_for(
                session, settings, principal=police, agency="POLICE-AF", name=legacy.name
            )
            == made.archive
        )
        legacy.unlink()
    with session_scope(settings) as session:
        with pytest.raises(InputError, match="disposal must be one of"):
            handover.record_disposal(
                session, principal=police, case_id=case_id, disposal="burned", note="gone"
            )
        with pytest.raises(InputError, match="a sim_box case cannot end with domain_blocked"):
            handover.record_disposal(
                session, principal=police, case_id=case_id, disposal="domain_blocked", note="x"
            )
        assert casework.get_case(session, principal=police, case_id=case_id).status == "referred"
        done = handover.record_disposal(
            session,
            principal=police,
            case_id=case_id,
            disposal="line_suspended",
            note="suspended on 3 Dec",
        )
        assert done.status == "resolved"
        move(
            session,
            principal=ROOT,
            workflow=casework.WORKFLOW,
            case_id=case_id,
            to="closed",
            note="line suspended",
        )
        actions = [a for (a,) in session.query(AuditEntry.action).all()]
        # Closing keeps the agency's disposal as the outcome (the note is in the audit).
        assert (
            casework.get_case(session, principal=ROOT, case_id=case_id).outcome == "line_suspended"
        )
    for step in ("in_review", "referred", "resolved", "closed"):
        assert f"cases.fraud_suspect.{step}" in actions
    assert "fraud.handover" in actions
    assert "privacy.reidentify" in actions
    # A package changed after signing no longer verifies.
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(io.BytesIO(made.archive)) as source, zipfile.ZipFile(forged, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            out.writestr(
                name, data.replace(b"sim_box", b"sim_bot") if name == "cases.csv" else data
            )
    with pytest.raises(SignatureError):
        handover.verify(forged, settings.secret("handover_key"))


@pytest.fixture(scope="module")
def signed_in(fraud_scan: Settings):
    """Signs a user of the scanned province in: an analyst (``analyst``) or CMCC's ``operator``."""
    from fastapi.testclient import TestClient

    from telereg.app import create_app
    from telereg.core import accounts
    from telereg.core.permissions import Role
    from tests.conftest import PASSWORD, csrf_of

    with session_scope(fraud_scan) as session:
        for name, role, binding in (
            ("analyst", Role.ANALYST, {}),
            ("operator", Role.OPERATOR, {"operator": "CMCC"}),
        ):
            accounts.create_user(
                session, principal=ROOT, username=name, role=role, password=PASSWORD, **binding
            )
    app = create_app(fraud_scan)

    def sign_in(name: str) -> TestClient:
        client = TestClient(app, follow_redirects=True)
        form = client.get("/login")
        client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        return client

    return sign_in


def test_the_card_lists_over_http_for_each_role(fraud_scan: Settings, signed_in) -> None:
    from telereg.core import accounts
    from telereg.core.permissions import Role
    from tests.conftest import PASSWORD

    with session_scope(fraud_scan) as session:
        accounts.create_user(
            session, principal=ROOT, username="watcher", role=Role.VIEWER, password=PASSWORD
        )
    analyst, operator, viewer = (signed_in(n) for n in ("analyst", "operator", "watcher"))
    for path, key in (("ids-over-limit", "ids"), ("identity-signals", "cards")):
        url = f"/api/v1/fraud/{path}"
        everyone = analyst.get(url, params={"period": "2021-11", "limit": 500}).json()
        assert everyone["total"] > 0
        assert {r["operator"] for r in everyone[key]} - {"CMCC"}, "several operators"
        own = operator.get(url, params={"period": "2021-11", "limit": 500}).json()
        assert 0 < own["total"] < everyone["total"]
        assert {r["operator"] for r in own[key]} == {"CMCC"}
        theirs = operator.get(url, params={"operator": "CUCC"}).json()
        assert theirs["total"] == 0, "another operator's rows are not an operator's to read"
        assert viewer.get(url).status_code == 403
        assert analyst.get(url, params={"limit": 0}).status_code == 422
        assert analyst.get(url, params={"period": "2021-13"}).status_code == 422
        assert analyst.get(url, params={"period": "2020-01"}).status_code == 404
    page = analyst.get("/fraud")
    assert "超量持卡证件" in page.text
    note = re.search(r'const limitNote = filled\(("[^"]*"), ', page.text)
    assert note is not None
    assert json.loads(note.group(1)) == "每家运营商上限 {n} 张"
    analyst.get("/lang/en?next=/")
    assert '"at most {n} cards per operator"' in analyst.get("/fraud").text


def test_the_case_queue_comes_a_page_at_a_time_with_titles_in_the_readers_language(
    fraud_scan: Settings, signed_in
) -> None:
    import re

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT)
        assert len(queue) > 60
        first_title = queue[0].title
        total = len(queue)
    assert first_title.startswith("SIM box suspect "), "stored in English, as the API gives it"
    analyst = signed_in("analyst")
    first = analyst.get("/fraud/cases").text
    rows = re.findall(r'<tr id="case-([0-9]+)"', first)
    assert len(rows) == 50
    assert "疑似猫池 " in first
    assert "SIM box suspect" not in first
    assert re.search(r"疑似猫池 (中国移动|中国联通|中国电信|中国广电) · 得分", first), (
        "operator by name"
    )
    assert not re.search(r"疑似猫池 (CMCC|CUCC|CTCC|CBN) ", first), "not by its code"
    assert f"1 / {-(-total // 50)} · {total:,}" in first
    second = analyst.get("/fraud/cases", params={"page": 2}).text
    assert set(re.findall(r'<tr id="case-([0-9]+)"', second)).isdisjoint(rows)
    beyond = analyst.get("/fraud/cases", params={"page": 999}).text
    assert re.findall(r'<tr id="case-([0-9]+)"', beyond), "a page past the end shows the last"


def test_the_case_queue_narrows_to_a_kind_and_can_put_the_highest_score_first(
    fraud_scan: Settings, signed_in
) -> None:

    from telereg.core.errors import InputError

    def listed(**how: str) -> list[tuple[int, str, float]]:
        """(id, kind, score, cards or number of signals) of the queue, in its order."""
        with session_scope(fraud_scan) as session:
            return [
                (
                    c.id,
                    c.subject["type"],
                    c.subject.get(
                        "score", c.subject.get("cards", len(c.subject.get("signals", [])))
                    ),
                )
                for c in casework.case_queue(session, principal=ROOT, **how)
            ]

    every = listed()
    first = listed(order="priority")
    assert sorted(first) == sorted(every), "the same cases, in another order"
    kinds = [kind for _, kind, _ in first]
    assert kinds == sorted(kinds, key=casework.CASE_KINDS.index), "kind by kind"
    for kind in casework.CASE_KINDS:
        weights = [w for _, k, w in first if k == kind]
        # (the new cards whose holder is not the user each show one of the two signals)
        if kind != "identity":
            assert len(set(weights)) > 1, f"{kind}: the scenario's cases differ in weight"
        assert weights == sorted(weights, reverse=True), f"{kind}: the highest first"
        assert listed(kind=kind, order="priority") == [c for c in first if c[1] == kind]
        assert listed(kind=kind) == [c for c in every if c[1] == kind]
    with session_scope(fraud_scan) as session:
        with pytest.raises(InputError, match="unknown case kind sim-box"):
            casework.case_queue(session, principal=ROOT, kind="sim-box")
        with pytest.raises(InputError, match="unknown order score"):
            casework.case_queue(session, principal=ROOT, order="score")

    analyst = signed_in("analyst")
    page = analyst.get("/fraud/cases", params={"kind": "card", "order": "priority"}).text
    cards = [c for c in first if c[1] == "card"]
    assert re.findall(r'<tr id="case-([0-9]+)"', page) == [str(c[0]) for c in cards[:50]]
    assert f"断卡风险 ({len(cards):,})</strong>" in page, "the chosen kind, with its count"
    assert f"全部 ({len(every):,})</a>" in page
    assert f"{cards[0][2]} 项信号" in page, "a card case is weighed by its signals"
    assert '<strong aria-current="true">得分高者优先</strong>' in page
    operators = re.findall(r'<td class="nowrap">(中国[^<]+|CMCC|CUCC|CTCC|CBN)</td>', page)
    assert operators, "each case names its operator"
    assert all(name.startswith("中国") for name in operators), "operators by name"
    # The other filters keep the chosen ones: a state link keeps the kind and the order.
    assert 'href="/fraud/cases?kind=card&amp;order=priority&amp;status=open"' in page
    english = analyst.get("/lang/en", params={"next": "/fraud/cases?kind=card&order=priority"})
    assert "Card-breaking risk" in english.text
    assert "highest score first" in english.text
    analyst.get("/lang/zh_CN?next=/")
    assert analyst.get("/fraud/cases", params={"kind": "sim-box"}).status_code == 422
    api = analyst.get("/api/v1/fraud/cases", params={"kind": "domain", "order": "priority"})
    assert [c["id"] for c in api.json()] == [c[0] for c in first if c[1] == "domain"]
    refused = analyst.get("/api/v1/fraud/cases", params={"order": "newest"})
    assert refused.status_code == 422
    assert "unknown order newest" in refused.text


def test_the_case_queue_narrows_to_an_operator_and_a_month(fraud_scan: Settings, signed_in) -> None:
    from collections import Counter

    from telereg.core.errors import InputError, NotFoundError
    from tests.conftest import csrf_of

    with session_scope(fraud_scan) as session:
        every = [(c.id, dict(c.subject)) for c in casework.case_queue(session, principal=ROOT)]
    operators = Counter(s["operator"] for _, s in every if s.get("operator"))
    assert len(operators) > 1, "the scenario's cases are of several operators"
    code, count = operators.most_common(1)[0]
    period = max(s["period"] for _, s in every)
    mine = [i for i, s in every if s.get("operator") == code]
    in_month = [
        i
        for i, s in every
        if s.get("operator") == code and period in casework.facet_values(s, "period")
    ]
    with session_scope(fraud_scan) as session:
        assert [c.id for c in casework.case_queue(session, principal=ROOT, operator=code)] == mine
        both = casework.case_queue(session, principal=ROOT, operator=code, period=period)
        assert [c.id for c in both] == in_month
        with pytest.raises(NotFoundError, match="no operator 'NOSUCH'"):
            casework.case_queue(session, principal=ROOT, operator="NOSUCH")
        with pytest.raises(InputError, match="'2021-13' is not a valid month: the month is 01"):
            casework.case_queue(session, principal=ROOT, period="2021-13")

    analyst = signed_in("analyst")
    page = analyst.get("/fraud/cases", params={"operator": code}).text
    assert re.findall(r'<tr id="case-([0-9]+)"', page) == [str(i) for i in mine[:50]]
    name = {"CMCC": "中国移动", "CUCC": "中国联通", "CTCC": "中国电信", "CBN": "中国广电"}[code]
    assert f"{name} ({count:,})</strong>" in page, "the chosen operator, by name, with its count"
    assert f"全部 ({count:,})</strong>" in page, "the kinds count that operator's cases"
    assert "涉诈域名 (0)" in page, "a domain case is no operator's"
    assert f'href="/fraud/cases?kind=card&amp;operator={code}"' in page, "a kind keeps it"
    listed = analyst.get("/fraud/cases.csv", params={"operator": code, "period": period})
    assert len(list(csv.reader(io.StringIO(listed.text)))) == len(in_month) + 1
    assert f"cases-{code}-{period}.csv" in listed.headers["content-disposition"]
    api = analyst.get("/api/v1/fraud/cases", params={"operator": code, "period": period})
    assert [c["id"] for c in api.json()] == in_month
    assert analyst.get("/api/v1/fraud/cases", params={"period": "November"}).status_code == 422
    assert analyst.get("/fraud/cases", params={"period": "2021-13"}).status_code == 422
    # A move comes back to the queue as it was filtered.
    token = csrf_of(page)
    sent = analyst.post(
        "/fraud/cases/moves",
        data={"case": [mine[0]], "to": "in_review", "move_note": "seen", "csrf_token": token}
        | {"operator": code, "period": period},
    )
    assert sent.url.query.decode() == f"status=in_review&operator={code}&period={period}"


def test_the_case_queue_downloads_as_filtered_and_ordered(fraud_scan: Settings, signed_in) -> None:

    with session_scope(fraud_scan) as session:
        expected = [
            (c.id, c.subject["domain"], c.subject["score"])
            for c in casework.case_queue(session, principal=ROOT, kind="domain", order="priority")
        ]
    analyst = signed_in("analyst")
    page = analyst.get("/fraud/cases", params={"kind": "domain", "order": "priority"}).text
    assert 'href="/fraud/cases.csv?kind=domain&amp;order=priority"' in page
    got = analyst.get("/fraud/cases.csv", params={"kind": "domain", "order": "priority"})
    assert got.headers["content-disposition"].endswith('filename="cases-domain.csv"')
    rows = list(csv.reader(io.StringIO(got.text.lstrip("\ufeff"))))
    assert rows[0][:6] == ["案件", "类型", "状态", "对象", "运营商", "月份"]
    assert [(int(r[0]), r[3], float(r[6])) for r in rows[1:]] == expected, "all, in order"
    assert {r[1] for r in rows[1:]} == {"涉诈域名"}
    cards = analyst.get("/fraud/cases.csv", params={"kind": "card"}).text
    assert "项信号" in cards
    assert "中国" in cards, "operators by name"
    operator = signed_in("operator")
    assert operator.get("/fraud/cases.csv").status_code == 403, "the queue is the administration's"


def test_a_case_page_tells_its_history_and_takes_the_next_step(
    fraud_scan: Settings, signed_in
) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import PASSWORD, csrf_of

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open", kind="card")
        case_id, line = queue[-2].id, queue[-2].subject["line"]
        add_liaisons(session, {"lee-police": "POLICE-AF", "lee-health": "HEALTH"})
    analyst = signed_in("analyst")
    address = f"/fraud/cases/{case_id}"

    def history(client: TestClient) -> str:
        page = client.get(address)
        assert page.status_code == 200, page.text
        return page.text.split('id="case-history"')[1]

    opened = history(analyst)
    assert "立案" in opened
    assert "/admin/audit?object=" not in analyst.get(address).text, "analysts read no audit log"
    assert f'href="/fraud/lines/{line}?period=2021-11"' in analyst.get(address).text
    token = csrf_of(analyst.get(address).text)
    # A step without a note is refused on the case's own page, and nothing is recorded.
    refused = analyst.post(
        address, data={"to": "in_review", "note": " ", "back": "case", "csrf_token": token}
    )
    assert refused.url.path == address
    assert 'role="alert"' in refused.text
    assert history(analyst) == opened
    assert 'name="read_as" value="open"' in analyst.get(address).text
    moved = analyst.post(
        address,
        data={
            "to": "in_review",
            "note": "one batch",
            "back": "case",
            "read_as": "open",
            "csrf_token": token,
        },
    )
    assert moved.url.path == address, "a step taken on the case's page comes back to it"
    assert "→ 研判中" in history(analyst)
    assert "one batch" in history(analyst)
    # A page read before that step (the case open then) closes nothing: it says the case
    # moved meanwhile, and the case stays where the first step put it.
    stale = analyst.post(
        address,
        data={
            "to": "closed",
            "note": "late",
            "back": "case",
            "read_as": "open",
            "csrf_token": token,
        },
    )
    assert 'role="alert"' in stale.text
    assert "已被他人改动" in stale.text
    assert "late" not in history(analyst)
    with session_scope(fraud_scan) as session:
        hand_over(session, fraud_scan, [case_id], "for the police")

    police = TestClient(analyst.app, follow_redirects=True)
    form = police.get("/login")
    police.post(
        "/login",
        data={"username": "lee-police", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    theirs = history(police)
    assert "移交 省公安厅反诈中心" in theirs
    assert "for the police" in theirs
    assert "one batch" not in theirs, "the administration's review notes stay its own"
    assert "立案" not in theirs
    disposed = police.post(
        f"/fraud/liaison/{case_id}",
        data={
            "disposal": "line_suspended",
            "note": "suspended on 3 Dec",
            "back": "case",
            "csrf_token": csrf_of(police.get(address).text),
        },
    )
    assert disposed.url.path == address
    assert "→ 已解决" in history(police)
    assert "suspended on 3 Dec" in history(analyst)

    health = TestClient(analyst.app, follow_redirects=True)
    form = health.get("/login")
    health.post(
        "/login",
        data={"username": "lee-health", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert health.get(address).status_code == 404, "another agency's case does not exist for it"
    assert analyst.get("/fraud/cases/999999").status_code == 404, "no such case"
    # The agency may not move cases itself, one or several: nothing moves.
    refused = police.post(
        "/fraud/cases/moves",
        data={
            "case": [case_id],
            "to": "closed",
            "move_note": "x",
            "csrf_token": csrf_of(police.get(address).text),
        },
    )
    assert refused.status_code == 403
    assert "→ 已办结" not in history(analyst)
    english = analyst.get("/lang/en", params={"next": address}).text
    assert "case opened" in english
    assert "handed over to Provincial police anti-fraud centre" in english
    analyst.get("/lang/zh_CN?next=/")
    assert health.get(f"/api/v1/fraud/cases/{case_id}").status_code == 404

    told = analyst.get(f"/api/v1/fraud/cases/{case_id}").json()
    assert [h["step"] for h in told["history"]] == ["open", "in_review", "referred", "resolved"]
    assert told["history"][2]["agency"] == "POLICE-AF"
    assert told["history"][2]["note"] == "for the police"
    assert [h["step"] for h in police.get(f"/api/v1/fraud/cases/{case_id}").json()["history"]] == [
        "referred",
        "resolved",
    ]
    about_line = analyst.get(f"/api/v1/fraud/lines/{line}", params={"period": "2021-11"}).json()
    assert {"id": case_id, "status": "resolved", "type": "card", "period": "2021-11"} in about_line[
        "cases"
    ]


def test_ticked_cases_move_together_or_not_at_all(fraud_scan: Settings, signed_in) -> None:
    from tests.conftest import csrf_of
    from tests.test_cli import telereg

    with session_scope(fraud_scan) as session:
        open_boxes = casework.case_queue(session, principal=ROOT, status="open", kind="sim_box")
        a, b, c, d = (case.id for case in open_boxes[10:14])
        casework.move_case(session, principal=ROOT, case_id=d, to="closed", note="a person")

    def states(*ids: int) -> list[str]:
        with session_scope(fraud_scan) as session:
            return [casework.get_case(session, principal=ROOT, case_id=i).status for i in ids]

    analyst = signed_in("analyst")
    page = analyst.get("/fraud/cases", params={"status": "open", "kind": "sim_box"})
    assert 'id="move-ticked"' in page.text
    token = csrf_of(page.text)

    def move(ids: list[int], note: str, to: str = "in_review") -> str:
        sent = analyst.post(
            "/fraud/cases/moves",
            data={"case": ids, "to": to, "move_note": note, "kind": "sim_box", "csrf_token": token},
        )
        assert sent.status_code == 200, sent.text
        if 'role="alert"' not in sent.text:
            assert sent.url.query.decode() == f"status={to}&kind=sim_box", "the queue as it was"
        return sent.text

    refused = move([a, b, d], "one batch")
    assert f"案件 {d} 当前为" in refused, "the page names the case that may not move"
    assert states(a, b, d) == ["open", "open", "closed"], "none moved"
    assert "请至少勾选" in move([], "one batch")
    move([a], " ")
    assert states(a) == ["open"], "a step needs a note"
    moved = move([a, b, c, a], "one batch")
    assert all(f'id="case-{i}"' in moved for i in (a, b, c)), "shown among the cases in review"
    assert states(a, b, c) == ["in_review"] * 3
    # The open queue read before that step closes none of them: they were moved meanwhile.
    assert 'name="read_as" value="open"' in page.text
    stale = analyst.post(
        "/fraud/cases/moves",
        data={
            "case": [a, b],
            "to": "closed",
            "move_note": "late",
            "read_as": "open",
            "csrf_token": token,
        },
    )
    assert "已被他人改动" in stale.text
    assert states(a, b) == ["in_review"] * 2
    told = analyst.get(f"/api/v1/fraud/cases/{c}").json()
    assert told["history"][-1] == {**told["history"][-1], "step": "in_review", "note": "one batch"}

    # (a browser's session calls the API with its CSRF token in a header)
    api = analyst.post(
        "/api/v1/fraud/cases/moves",
        json={"cases": [a, 999999], "to": "closed", "note": "x"},
        headers={"x-csrf-token": token},
    )
    assert api.status_code == 404
    assert states(a) == ["in_review"], "the API moves all or none too"
    api = analyst.post(
        "/api/v1/fraud/cases/moves",
        json={"cases": [a, b], "to": "closed", "note": "people"},
        headers={"x-csrf-token": token},
    )
    assert api.status_code == 200, api.text
    assert [m["status"] for m in api.json()] == ["closed", "closed"]
    where = ["--data-dir", str(fraud_scan.data_dir)]
    cli = telereg("fraud", "move", str(c), str(d), "--to", "closed", "--note", "x", *where)
    assert cli.returncode != 0
    assert f"case {d} is closed" in cli.stderr
    assert states(c) == ["in_review"]
    cli = telereg("fraud", "move", str(c), "--to", "closed", "--note", "done", *where)
    assert cli.returncode == 0, cli.stderr
    assert f"case {c} is now closed" in cli.stdout


def test_the_filtered_suspect_list_downloads_whole_in_the_readers_language(
    fraud_scan: Settings, signed_in
) -> None:

    expected = findings.suspect_list(
        fraud_scan, principal=ROOT, period="2021-11", kind="card", limit=1_000_000
    )
    analyst = signed_in("analyst")
    got = analyst.get("/fraud/suspects.csv", params={"period": "2021-11", "kind": "card"})
    assert got.headers["content-disposition"].endswith('filename="suspects-2021-11.csv"')
    rows = list(csv.reader(io.StringIO(got.text.lstrip("\ufeff"))))
    assert rows[0] == ["号码（假名）", "类型", "运营商", "地市", "得分", "日均呼出", "事由"]
    assert len(rows) - 1 == expected["total"] > 50, "every page, not the first"
    assert [r[0] for r in rows[1:]] == [s["line"] for s in expected["suspects"]]
    assert {r[1] for r in rows[1:]} == {"断卡风险"}
    assert any(r[3].endswith("市") for r in rows[1:]), "cities by name"
    assert any("、" in r[6] for r in rows[1:])
    assert not any(", " in r[6] for r in rows[1:])
    operator = signed_in("operator")
    own = list(csv.reader(io.StringIO(operator.get("/fraud/suspects.csv").text.lstrip("\ufeff"))))
    assert len(own) > 1
    assert {r[2] for r in own[1:]} == {"中国移动"}, "an operator downloads its own lines only"
    from telereg.core import audit

    with session_scope(fraud_scan) as session:
        found, _ = audit.entries(session, action="data.downloaded", obj="download:suspects.csv")
        taken = [(e.actor, e.detail.get("filters")) for e in found]
    assert ("analyst", {"period": "2021-11", "kind": "card"}) in taken, taken


def test_a_suspects_clear_number_takes_the_permission_and_a_reason_and_is_audited(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.core.models import AuditEntry
    from telereg.core.privacy import Vault
    from tests.conftest import csrf_of

    def reveals() -> list[AuditEntry]:
        with session_scope(fraud_scan) as session:
            found = select(AuditEntry).where(
                AuditEntry.action == "privacy.reidentify",
                AuditEntry.actor.in_(["analyst", "operator"]),
            )
            return list(session.scalars(found))

    suspect = findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11", operator="CUCC")
    line = suspect["suspects"][0]["line"]
    analyst = signed_in("analyst")
    page = analyst.get(f"/fraud/lines/{line}?period=2021-11")
    assert 'id="reveal-form"' in page.text
    # An address that names no suspect, or no month, is a missing page, said in Chinese.
    missing = analyst.get(f"/fraud/lines/{'0' * 32}?period=2021-11")
    assert missing.status_code == 404
    assert "不是 2021-11 的可疑号码" in missing.text
    bad_month = analyst.get(f"/fraud/lines/{line}?period=1999-99")
    assert bad_month.status_code == 422
    assert "1999-99" in bad_month.text, "the refusal names what is not a month"
    assert "String should match" not in bad_month.text
    csrf = csrf_of(page.text)

    short = analyst.post(
        f"/fraud/lines/{line}/reveal", data={"period": "2021-11", "reason": "x", "csrf_token": csrf}
    )
    assert (
        "查看明文需要填写说明用途的理由：至少 6 个不同的字母（中文至少 3 个不同的字）" in short.text
    )
    stranger = analyst.post(
        f"/fraud/lines/{'0' * 32}/reveal",
        data={"period": "2021-11", "reason": "checking a number", "csrf_token": csrf},
    )
    assert "不是 2021-11 的可疑号码" in stranger.text
    assert reveals() == [], "a refused look shows nothing"
    with session_scope(fraud_scan) as session:
        refused = select(AuditEntry).where(
            AuditEntry.action == "privacy.reidentify_refused", AuditEntry.actor == "analyst"
        )
        tried = [(e.objects, e.detail["refused"]) for e in session.scalars(refused)]
    assert tried == [
        ([f"token:{line}"], "invalid-input"),
        ([f"token:{'0' * 32}"], "not-found"),
    ], "but each refused look is audited, with why"

    shown = analyst.post(
        f"/fraud/lines/{line}/reveal",
        data={"period": "2021-11", "reason": "before the call to the police", "csrf_token": csrf},
    )
    clear = Vault.of(fraud_scan).reveal(line)
    assert shown.status_code == 200
    assert f"<strong>{clear}</strong>" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    # Reloading that address (or switching language on it) leads back to the suspect's
    # page, without the number.
    again = analyst.get(f"/fraud/lines/{line}/reveal?period=2021-11")
    assert again.status_code == 200
    assert again.url.path == f"/fraud/lines/{line}"
    assert clear not in again.text
    (record,) = reveals()
    assert (record.actor, record.reason) == ("analyst", "before the call to the police")
    assert record.objects == [f"token:{line}"]
    assert record.client == "testclient", "where the request came from (the test client's name)"

    operator = signed_in("operator")
    own = operator.get(f"/fraud/lines/{line}?period=2021-11")
    assert 'id="reveal-form"' not in own.text
    refused = operator.post(
        f"/fraud/lines/{line}/reveal",
        data={"period": "2021-11", "reason": "curious about it", "csrf_token": csrf_of(own.text)},
    )
    assert refused.status_code == 403
    assert clear not in refused.text
    assert len(reveals()) == 1
    with session_scope(fraud_scan) as session:
        denied = select(AuditEntry).where(
            AuditEntry.action == "privacy.reidentify_refused", AuditEntry.actor == "operator"
        )
        assert [e.detail["refused"] for e in session.scalars(denied)] == ["forbidden"]


def test_a_suspects_clear_number_can_be_revealed_for_one_of_its_cases(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.core.models import AuditEntry
    from tests.conftest import csrf_of

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open")
        boxes = [c for c in queue if c.subject.get("type") == "sim_box"]
        mine = boxes[0]
        other = next(c for c in boxes if c.subject["line"] != mine.subject["line"])
        line, case_id, other_id = mine.subject["line"], mine.id, other.id
    analyst = signed_in("analyst")
    page = analyst.get(f"/fraud/lines/{line}?period={mine.subject['period']}")
    assert 'id="reveal-case"' in page.text
    assert f'<option value="{case_id}">#{case_id} ' in page.text, "the line's case is offered"
    assert f'<option value="{other_id}">' not in page.text
    form = {"period": mine.subject["period"], "csrf_token": csrf_of(page.text)}

    wrong = analyst.post(
        f"/fraud/lines/{line}/reveal",
        data={**form, "reason": "police request JQ-5", "case_id": str(other_id)},
    )
    assert f"案件 {other_id} 与此号码无关" in wrong.text
    shown = analyst.post(
        f"/fraud/lines/{line}/reveal",
        data={**form, "reason": "police request JQ-5", "case_id": str(case_id)},
    )
    assert 'id="revealed"' in shown.text
    with session_scope(fraud_scan) as session:
        (record,) = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "privacy.reidentify",
                AuditEntry.reason == "police request JQ-5",
            )
        )
        assert record.objects == [f"token:{line}", f"case:{case_id}"]
    history = analyst.get(f"/fraud/cases/{case_id}")
    assert "为本案件查看明文：1" in history.text
    assert "police request JQ-5" in history.text


def test_a_suspects_page_with_four_eyes_points_to_the_cases_approval(
    fraud_scan: Settings, signed_in
) -> None:
    from fastapi.testclient import TestClient

    from telereg.app import create_app
    from telereg.core import approvals
    from telereg.core.models import ReidentifyApproval
    from tests.conftest import PASSWORD

    signed_in("analyst")  # (the analyst's account)
    four_eyes = fraud_scan.model_copy(update={"reidentify_needs_approval": True})
    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open")
        box = [c for c in queue if c.subject.get("type") == "sim_box"][-1]
        line, case_id, period = box.subject["line"], box.id, box.subject["period"]
    analyst = TestClient(create_app(four_eyes), follow_redirects=True)
    form = analyst.get("/login")
    analyst.post(
        "/login",
        data={"username": "analyst", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    analyst.get("/lang/en?next=/")  # (the words of the source, whatever the catalogue holds)

    page = analyst.get(f"/fraud/lines/{line}?period={period}")
    assert f'<a href="/fraud/cases/{case_id}#approval">#{case_id}</a>' in page.text
    assert "no approval asked for" in page.text
    assert '<option value="">' not in page.text, "a case is required"
    reveal = {"period": period, "csrf_token": csrf_of(page.text), "case_id": str(case_id)}
    refused = analyst.post(
        f"/fraud/lines/{line}/reveal", data={**reveal, "reason": "police request JQ-8"}
    )
    assert refused.status_code == 200
    assert 'id="revealed"' not in refused.text
    assert f"re-identifying the values of case {case_id} needs another user&#39;s approval" in (
        refused.text
    )
    assert "ask for it on the case&#39;s page" in refused.text

    case_page = analyst.get(f"/fraud/cases/{case_id}")
    analyst.post(
        f"/fraud/cases/{case_id}/approval",
        data={"reason": "police request JQ-8", "csrf_token": csrf_of(case_page.text)},
    )
    with session_scope(four_eyes) as session:
        (asked,) = session.scalars(
            select(ReidentifyApproval).where(ReidentifyApproval.case_id == case_id)
        )
        approvals.decide(
            session,
            settings=four_eyes,
            principal=ROOT,
            request_id=asked.id,
            approve=True,
            note="JQ-8 on file",
        )
    assert "approved by cli:" in analyst.get(f"/fraud/lines/{line}?period={period}").text
    shown = analyst.post(
        f"/fraud/lines/{line}/reveal", data={**reveal, "reason": "police request JQ-8"}
    )
    assert 'id="revealed"' in shown.text


def test_a_domain_blocked_by_its_agency_is_on_the_block_list_and_the_dashboard(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.cases.service import move
    from telereg.domains.fraud import handover

    with session_scope(fraud_scan) as session:
        case = next(
            c
            for c in casework.case_queue(session, principal=ROOT, status="open")
            if c.subject.get("type") == "domain"
        )
        domain, case_id = case.subject["domain"], case.id
        move(
            session,
            principal=ROOT,
            workflow=casework.WORKFLOW,
            case_id=case_id,
            to="in_review",
            note="imitates a bank",
        )
        hand_over(session, fraud_scan, [case_id], "block it")
        assert casework.blocked_domains(session, principal=ROOT) == [], "not before the disposal"
        handover.record_disposal(
            session, principal=ROOT, case_id=case_id, disposal="domain_blocked", note="blocked"
        )
    analyst = signed_in("analyst")
    listed = analyst.get("/api/v1/fraud/domains/blocked").json()
    assert [d["domain"] for d in listed["domains"]] == [domain]
    assert listed["domains"][0]["case"] == case_id
    operator = signed_in("operator")
    text = operator.get("/api/v1/fraud/domains/blocked", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == f"{domain}\n", "operators' resolvers read it too"
    shown = analyst.get("/api/v1/fraud/dashboard", params={"period": "2021-11"}).json()
    decided = {d["domain"]: d["decision"] for d in shown["domains"]}
    assert decided[domain] == {"case": case_id, "status": "resolved", "outcome": "domain_blocked"}
    assert any(d["status"] == "open" and d["outcome"] == "" for d in decided.values())


def test_an_analyst_decides_a_domain_without_a_hand_over(fraud_scan: Settings, signed_in) -> None:
    from telereg.core.errors import InputError
    from tests.conftest import csrf_of

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open")
        first, second = [c for c in queue if c.subject.get("type") == "domain"][-2:]
        line_case = next(c for c in queue if c.subject.get("type") == "sim_box")
        ids = first.id, second.id, line_case.id
        domains = first.subject["domain"], second.subject["domain"]
    analyst = signed_in("analyst")
    pages = (
        analyst.get("/fraud/cases", params={"status": "open", "page": n}) for n in range(1, 20)
    )
    page = next(p for p in pages if f'id="case-{ids[0]}"' in p.text)
    row = page.text.split(f'id="case-{ids[0]}"')[1].split("</tr>")[0]
    assert 'value="domain_blocked"' in row
    assert "决定" in row, "the decisions are offered on the domain's row"
    token = csrf_of(page.text)
    for case_id, decision in ((ids[0], "domain_blocked"), (ids[1], "no_action")):
        done = analyst.post(
            f"/fraud/cases/{case_id}",
            data={"to": decision, "note": "imitates a bank", "csrf_token": token},
        )
        assert done.status_code == 200, done.text
    listed = analyst.get("/api/v1/fraud/domains/blocked").json()
    assert domains[0] in [d["domain"] for d in listed["domains"]]
    assert domains[1] not in [d["domain"] for d in listed["domains"]]
    with session_scope(fraud_scan) as session:
        decided = casework.get_case(session, principal=ROOT, case_id=ids[1])
        assert (decided.status, decided.outcome) == ("closed", "no_action")
        with pytest.raises(InputError, match="domain_blocked is not decided on a sim_box case"):
            casework.move_case(
                session, principal=ROOT, case_id=ids[2], to="domain_blocked", note="not a domain"
            )


def test_a_domain_case_names_the_brand_it_imitates_in_the_readers_language(
    fraud_scan: Settings, signed_in
) -> None:
    from markupsafe import escape

    from telereg.domains.fraud import lookalike

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT)
        domains = (c for c in queue if c.subject.get("type") == "domain")
        case = next(c for c in domains if c.subject.get("brand"))
    brand = next(p for p in lookalike.load_protected() if p.name == case.subject["brand"])
    analyst = signed_in("analyst")
    row = analyst.get(f"/fraud/cases/{case.id}").text.split("仿冒对象")[1].split("</tr>")[0]
    assert brand.name_zh in row
    assert f">{brand.name}<" not in row
    english = analyst.get("/lang/en", params={"next": f"/fraud/cases/{case.id}"}).text
    analyst.get("/lang/zh_CN?next=/")
    assert f">{escape(brand.name_en)}<" in english.split("Imitates")[1].split("</tr>")[0]


def test_a_liaison_checks_a_package_it_was_given_without_a_key_of_its_own(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.core import audit
    from tests.conftest import csrf_of

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open", kind="sim_box")
        ids = [c.id for c in queue[-4:-2]]
        casework.move_cases(session, principal=ROOT, case_ids=ids, to="in_review", note="batch")
        made = hand_over(session, fraud_scan, ids, "for checking")
        city_police(session)
        add_liaisons(session, {"check-af": "POLICE-AF", "check-city": "POLICE-CITY"})
    archive = made.archive
    changed = bytearray(archive)
    changed[len(changed) // 2] ^= 1
    liaison, other = signed_in("check-af"), signed_in("check-city")

    def check(client, data: bytes):
        token = csrf_of(client.get("/fraud/liaison").text)
        return client.post(
            "/fraud/liaison/verify",
            data={"csrf_token": token},
            files={"file": (made.path.name, data, "application/zip")},
        )

    intact = check(liaison, archive)
    assert intact.status_code == 200, intact.text
    shown = intact.text.split('id="package-checked"')[1].split("</div>")[0]
    assert "移交包完整" in shown
    assert all(f'href="/fraud/cases/{i}"' in shown for i in ids)
    broken = check(liaison, bytes(changed))
    assert broken.status_code == 422
    assert 'id="package-checked"' not in broken.text
    assert "改动" in broken.text.split('role="alert"')[1].split("</p>")[0]
    liaison.get("/lang/en", params={"next": "/fraud/liaison"})
    english = check(liaison, archive).text.split('id="package-checked"')[1].split("</div>")[0]
    assert "The package is intact." in english
    assert "Handed over to" in english
    broken_en = check(liaison, bytes(changed)).text.split('role="alert"')[1].split("</p>")[0]
    assert "changed" in broken_en, broken_en
    liaison.get("/lang/zh_CN", params={"next": "/fraud/liaison"})
    theirs = check(other, archive)
    assert theirs.status_code == 422
    assert "其他单位" in theirs.text.split('role="alert"')[1].split("</p>")[0]
    # The API answers the same, for a script; a form without its CSRF token is refused.
    header = {"x-csrf-token": csrf_of(liaison.get("/fraud/liaison").text)}
    files = {"file": (made.path.name, archive, "application/zip")}
    api = liaison.post("/api/v1/fraud/handovers/verify", files=files, headers=header)
    assert api.status_code == 200, api.text
    assert api.json()["manifest"]["cases"] == ids
    files = {"file": (made.path.name, bytes(changed), "application/zip")}
    api = liaison.post("/api/v1/fraud/handovers/verify", files=files, headers=header)
    assert (api.status_code, api.json()["type"]) == (422, "urn:telereg:problem:bad-signature")
    forged = liaison.post("/fraud/liaison/verify", files=files)
    assert forged.status_code == 403
    with session_scope(fraud_scan) as session:
        found, _ = audit.entries(session, action="fraud.handover.checked")
        checks = [(e.actor, e.detail["intact"]) for e in found]
    web = [("check-af", True), ("check-af", False), ("check-city", False)]
    web += [("check-af", True), ("check-af", False)]  # (in English)
    assert sorted(checks) == sorted([*web, ("check-af", True), ("check-af", False)])


def test_an_identity_cases_line_has_its_page_with_the_signals_that_fired(
    fraud_scan: Settings, signed_in
) -> None:
    with session_scope(fraud_scan) as session:
        case = casework.case_queue(session, principal=ROOT, kind="identity")[0]
    subject = case.subject
    assert subject["home_city"], "where it was registered, to check 'used away from it'"
    assert set(subject["evidence"]) == {"first_day_away", "imei_identities"}
    analyst = signed_in("analyst")
    page = analyst.get(f"/fraud/cases/{case.id}").text
    address = f"/fraud/lines/{subject['line']}?period={subject['period']}"
    assert address in page
    reader = signed_in("analyst")
    english = reader.get("/lang/en", params={"next": address}).text
    assert "used away from its registration city on day one" in english
    chinese = re.findall(r"[\u4e00-\u9fff]+", english.split("<main")[1])
    assert chinese == [], f"the line page reads in English: {chinese}"
    about = analyst.get(f"/api/v1/fraud/lines/{subject['line']}", params={"period": "2021-11"})
    assert about.status_code == 200, about.text
    found = about.json()
    assert found["kind"] == "identity"
    assert found["rules"] == subject["signals"]
    assert set(found["features"]) == {"first_day_away", "imei_identities"}
    assert set(found["flagged"]) <= {"first_day_away", "imei_identities"}
    operator = signed_in("operator")
    theirs = operator.get(f"/api/v1/fraud/lines/{subject['line']}", params={"period": "2021-11"})
    assert theirs.status_code == (200 if subject["operator"] == "CMCC" else 404)


def test_the_cli_writes_a_package_for_its_owner_only_and_never_over_a_file(
    fraud_scan: Settings, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from telereg.cli import app

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open", kind="card")
        first, second = queue[-6].id, queue[-7].id
        casework.move_cases(
            session, principal=ROOT, case_ids=[first, second], to="in_review", note="cli"
        )
    out = tmp_path / "handover.zip"

    def export(case_id: int):
        args = ["fraud", "export", str(case_id), "--agency", "POLICE-AF", "--note", "cli"]
        return CliRunner().invoke(
            app, [*args, "--out", str(out), "--data-dir", str(fraud_scan.data_dir)]
        )

    made = export(first)
    assert made.exit_code == 0, made.output
    assert out.stat().st_mode & 0o777 == 0o600
    kept = out.read_bytes()
    again = export(second)
    assert again.exit_code != 0
    assert "exists; name a new file" in str(again.exception)
    assert out.read_bytes() == kept
    with session_scope(fraud_scan) as session:
        assert casework.get_case(session, principal=ROOT, case_id=second).status == "in_review"


def test_the_cli_lists_cases_by_kind_and_tells_a_cases_history(fraud_scan: Settings) -> None:
    from typer.testing import CliRunner

    from telereg.cli import app
    from tests.test_cli import telereg

    where = ["--data-dir", str(fraud_scan.data_dir)]
    args = ["fraud", "cases", "--kind", "domain", "--order", "priority", "--json", *where]
    listed = CliRunner().invoke(app, args)
    assert listed.exit_code == 0, listed.output
    domains = json.loads(listed.output)
    assert domains
    assert {c["type"] for c in domains} == {"domain"}
    shown = CliRunner().invoke(app, ["fraud", "case", str(domains[0]["id"]), "--json", *where])
    assert shown.exit_code == 0, shown.output
    case = json.loads(shown.output)
    assert case["id"] == domains[0]["id"]
    assert case["history"][0]["step"] == "open"
    table = CliRunner().invoke(app, ["fraud", "case", str(domains[0]["id"]), *where])
    assert "history" in table.output
    missing = telereg("fraud", "case", "999999", *where)
    assert missing.returncode != 0
    assert "no fraud case 999999" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong = telereg("fraud", "cases", "--kind", "sims", *where)
    assert wrong.returncode != 0
    assert "unknown case kind sims" in wrong.stderr


def test_the_cli_lists_suspects_and_the_block_list(fraud_scan: Settings) -> None:
    from typer.testing import CliRunner

    from telereg.cli import app

    where = ["--data-dir", str(fraud_scan.data_dir)]
    args = ["fraud", "suspects", "--period", "2021-11", "--kind", "sim_box", "--limit", "5"]
    listed = CliRunner().invoke(app, [*args, "--json", *where])
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.output)
    assert len(found["suspects"]) == 5 < found["total"]
    assert {s["kind"] for s in found["suspects"]} == {"sim_box"}
    scores = [s["score"] for s in found["suspects"]]
    assert scores == sorted(scores, reverse=True)
    table = CliRunner().invoke(app, [*args, *where])
    assert table.exit_code == 0, table.output
    assert found["suspects"][0]["line"] in table.output
    from tests.test_cli import telereg

    wrong = telereg("fraud", "suspects", "--period", "2021-11", "--kind", "x", *where)
    assert wrong.returncode != 0
    assert "kind 'x' is not one of: sim_box, card" in wrong.stderr, "a user's mistake, one line"
    assert "Traceback" not in wrong.stderr
    blocked = CliRunner().invoke(app, ["fraud", "blocklist", "--json", *where])
    assert blocked.exit_code == 0, blocked.output
    assert isinstance(json.loads(blocked.output), list)


def test_the_hand_over_form_offers_the_police_and_picks_one(
    fraud_scan: Settings, signed_in
) -> None:
    import re

    with session_scope(fraud_scan) as session:
        city_police(session)
        case_id = _sim_boxes(casework.case_queue(session, principal=ROOT, status="open"))[0]
        casework.move_case(session, principal=ROOT, case_id=case_id, to="in_review", note="form")
    page = signed_in("analyst").get("/fraud/cases", params={"status": "in_review"}).text
    (form,) = re.findall(r'<select name="agency">(.*?)</select>', page, re.DOTALL)
    assert re.findall(r'value="([^"]+)"', form) == ["POLICE-AF", "POLICE-CITY"]
    assert form.count("selected") == 1
    assert re.search(r'value="POLICE-AF"\s+selected', form), "the first police agency"


def test_domains_the_police_confirmed_are_marked_and_their_cases_say_why(
    fraud_scan: Settings,
) -> None:
    from telereg.domains.fraud.service import load_result

    domains = load_result(fraud_scan, "2021-11", "domains")
    confirmed = domains[[any(r["code"] == "confirmed" for r in rs) for rs in domains["reasons"]]]
    assert len(confirmed), "the demo's police feedback names domains seen in November"
    assert set(confirmed["level"]) == {"high"}
    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT)
    subjects = {c.subject["domain"]: c.subject for c in queue if c.subject["type"] == "domain"}
    for name in confirmed["domain"]:
        assert "confirmed" in subjects[name]["signals"]


def test_a_finding_seen_again_is_followed_on_its_case(fraud_scan: Settings) -> None:
    from telereg.cases import service as cases

    def again(case, **changes) -> cases.NewCase:
        return cases.NewCase(
            case.reference, case.title, {**case.subject, "period": "2021-12", **changes}
        )

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open", kind="sim_box")
        running, dismissed = queue[-1], queue[-2]
        # A gateway still running in December: its case lists both months, and shows
        # December's figures; November scanned again after that changes them no more.
        evidence = {**running.subject["evidence"], "callees": 4321}
        casework.seen_again(session, [again(running, score=99.0, evidence=evidence)], "2021-12")
        assert running.subject["seen_in"][-2:] == ["2021-11", "2021-12"]
        assert running.subject["latest_score"] == 99.0
        assert (running.subject["period"], running.subject["score"]) == ("2021-12", 99.0)
        assert running.subject["evidence"]["callees"] == 4321
        november = cases.NewCase(
            running.reference, running.title, {**running.subject, "period": "2021-11", "score": 1.0}
        )
        casework.seen_again(session, [november], "2021-11")
        assert (running.subject["period"], running.subject["score"]) == ("2021-12", 99.0)
        december = casework.case_queue(session, principal=ROOT, period="2021-12")
        assert running.id in {c.id for c in december}
        # A dismissed finding stays dismissed while it looks no worse, and is a new case,
        # naming the old one, once it scores higher.
        casework.move_case(
            session, principal=ROOT, case_id=dismissed.id, to="closed", note="a call centre"
        )
        same = casework.with_repeats(session, [again(dismissed)], "2021-12")
        assert same[0].reference == dismissed.reference, "the analyst's decision stands"
        worse = casework.with_repeats(
            session, [again(dismissed, score=dismissed.subject["score"] + 5)], "2021-12"
        )
        assert worse[0].reference == f"{dismissed.reference}@2021-12"
        assert worse[0].subject["repeat_of"] == dismissed.id


def test_a_wrong_filter_or_file_gets_a_clear_error(fraud_scan: Settings, tmp_path: Path) -> None:
    from telereg.core.errors import ConfigurationError, InputError, NotFoundError, SignatureError
    from telereg.domains.fraud import handover
    from telereg.domains.fraud import service as fraud

    with session_scope(fraud_scan) as session:
        with pytest.raises(InputError, match="unknown case state 'bogus'; the states are open"):
            casework.case_queue(session, principal=ROOT, status="bogus")
        with pytest.raises(NotFoundError, match="no operator 'XXXX'"):
            casework.case_queue(session, principal=ROOT, operator="XXXX")
        for month, said in (("nov", "write it YYYY-MM"), ("2021-13", "the month is 01 to 12")):
            with pytest.raises(InputError, match=said):
                fraud.check_scan(session, fraud_scan, month)
        lax = fraud_scan.model_copy(update={"fraud_rules": {"calls_per_day": -10}})
        with pytest.raises(ConfigurationError, match="calls_per_day below zero"):
            fraud.check_scan(session, lax, "2021-11")
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n" * 10)
    with pytest.raises(SignatureError, match="not a hand-over package"):
        handover.verify(text, fraud_scan.secret("handover_key"))


def test_a_card_hand_over_names_the_holder_and_the_sale(fraud_scan: Settings) -> None:
    import zipfile

    from telereg.domains.fraud import handover

    with session_scope(fraud_scan) as session:
        queue = casework.case_queue(session, principal=ROOT, status="open", kind="card")
        case = queue[-1]
        assert case.subject["id_number"]
        assert case.subject["activated_at"].startswith("2021-1")
        casework.move_case(session, principal=ROOT, case_id=case.id, to="in_review", note="ring")
        made = hand_over(
            session, fraud_scan, [case.id], "ring cards", reveal_reason="police request JQ-7"
        )
    handover.verify_archive(made.archive, fraud_scan.secret("handover_key"), where="-")
    with zipfile.ZipFile(io.BytesIO(made.archive)) as package:
        text = package.read("cases.csv").decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["id_number"] == case.subject["id_number"], "the holder, as a token"
    assert len(row["clear_id_number"]) == 18, "and in the clear, from the vault, with a reason"
    assert row["activated_at"] == case.subject["activated_at"]
    assert "novelty=" in row["evidence"]
    assert row["outlet_id"] == case.subject["outlet_id"]


def test_a_card_s_page_marks_the_figures_its_signals_rest_on(fraud_scan: Settings) -> None:
    from telereg.domains.fraud import findings
    from telereg.domains.fraud.service import load_result

    cards = load_result(fraud_scan, "2021-11", "cards")
    card = cards[[len(s) == 3 for s in cards["signals"]]].iloc[0]
    with session_scope(fraud_scan) as session:
        detail = findings.line_detail(
            session, settings=fraud_scan, principal=ROOT, period="2021-11", line=card["line"]
        )
    assert detail["kind"] == "card"
    assert detail["features"]["imei_identities"] >= 2
    assert detail["features"]["first_day_away"] is True
    assert {"calls_per_day", "novelty", "first_day_away", "imei_identities"} <= set(
        detail["flagged"]
    )


def test_ids_over_the_limit_and_borrowed_cards_become_cases(
    fraud_scan: Settings, signed_in
) -> None:
    import zipfile

    from telereg.core.errors import ConflictError, InputError
    from telereg.domains.fraud import cardbreak, handover
    from telereg.domains.fraud.service import _period_end, load_result
    from tests.conftest import csrf_of

    over = load_result(fraud_scan, "2021-11", "over_limit")
    holders = load_result(fraud_scan, "2021-11", "identity")
    cards = load_result(fraud_scan, "2021-11", "cards")
    with session_scope(fraud_scan) as session:
        limits = casework.case_queue(session, principal=ROOT, kind="id_limit", period="2021-11")
        borrowed = casework.case_queue(session, principal=ROOT, kind="identity", period="2021-11")
    assert len(over), "the scenario plants ID numbers over the limit"
    assert len(limits) == len(over), "one case per ID number and operator"
    found = {(c.subject["operator"], c.subject["id_number"]): c for c in limits}
    for row in over.itertuples():
        case = found[(row.operator, row.id_number)]
        assert case.subject["cards"] == row.cards > 5
        assert len(case.subject["lines"]) == row.cards, "the case names each of its cards"
        assert case.subject["evidence"]["all_operators"] == row.all_operators
    new = cardbreak.worth_a_case(
        holders[~holders["line"].isin(cards["line"])], period_end=_period_end("2021-11")
    )
    assert 0 < len(borrowed) == len(new) < len(holders), "new cards only, not risky cards again"
    assert {c.subject["line"] for c in borrowed} == set(new["line"])

    analyst = signed_in("analyst")
    decided, handed, refused = limits[0], limits[1], borrowed[0]
    page = analyst.get(f"/fraud/cases/{decided.id}").text
    assert 'value="cards_cancelled"' in page, "the administration decides it itself"
    assert 'id="case-lines"' in page
    assert page.count('title="号码（假名）"') >= 6
    assert "所有运营商的在用卡" in page, "the evidence, in words"
    english = analyst.get("/lang/en", params={"next": f"/fraud/cases/{decided.id}"}).text
    assert "ID over the card limit" in english
    assert "active cards at all operators" in english
    assert "Decide: excess cards cancelled" in english
    listed_en = analyst.get("/fraud/over-limit.csv", params={"period": "2021-11"}).text
    assert listed_en.lstrip("\ufeff").startswith("ID number (token),Operator,")
    analyst.get("/lang/zh_CN", params={"next": "/"})
    done = analyst.post(
        f"/fraud/cases/{decided.id}",
        data={"to": "cards_cancelled", "note": "ordered to cancel", "csrf_token": csrf_of(page)},
    )
    assert done.status_code == 200, done.text
    with session_scope(fraud_scan) as session:
        closed = casework.get_case(session, principal=ROOT, case_id=decided.id)
        assert (closed.status, closed.outcome) == ("closed", "cards_cancelled")
        with pytest.raises(InputError, match="cards_cancelled is not decided on a identity case"):
            casework.move_case(
                session, principal=ROOT, case_id=refused.id, to="cards_cancelled", note="no"
            )
        with pytest.raises(ConflictError, match="only open cases and cases in review"):
            casework.move_case(
                session, principal=ROOT, case_id=decided.id, to="no_action", note="again"
            )
        casework.move_case(
            session, principal=ROOT, case_id=handed.id, to="in_review", note="seller"
        )
        made = hand_over(
            session, fraud_scan, [handed.id], "card seller", reveal_reason="police request JQ-9"
        )
        with pytest.raises(InputError, match="cannot end with line_suspended"):
            handover.record_disposal(
                session, principal=ROOT, case_id=handed.id, disposal="line_suspended", note="x"
            )
        handover.record_disposal(
            session, principal=ROOT, case_id=handed.id, disposal="cards_cancelled", note="done"
        )
    with zipfile.ZipFile(io.BytesIO(made.archive)) as package:
        text = package.read("cases.csv").decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["type"], row["reference"]) == ("id_limit", handed.subject["id_number"])
    assert row["lines"].split("; ") == handed.subject["lines"]
    clear = row["clear_lines"].split("; ")
    assert len(clear) == handed.subject["cards"]
    assert all(re.fullmatch(r"1\d{10}", n) for n in clear)
    assert len(row["clear_id_number"]) == 18
    assert "all_operators=" in row["evidence"]


def test_a_month_its_case_was_found_in_scanned_again_opens_no_repeat(fraud_scan: Settings) -> None:
    from telereg.cases import service as cases

    with session_scope(fraud_scan) as session:
        case = casework.case_queue(session, principal=ROOT, kind="sim_box", status="open")[0]
        # Opened in October, found again in November; then the police suspended the line.
        case.subject = {**case.subject, "period": "2021-10", "seen_in": ["2021-10", "2021-11"]}
        case.status, case.outcome = "closed", "line_suspended"
        session.flush()
        found = cases.NewCase(case.reference, case.title, {**case.subject, "period": "2021-11"})
        [again] = casework.with_repeats(session, [found], "2021-11")
        assert again.reference == case.reference, "November's calls came before the action"
        later = dataclasses.replace(found, subject={**found.subject, "period": "2021-12"})
        [repeat] = casework.with_repeats(session, [later], "2021-12")
        assert repeat.reference == f"{case.reference}@2021-12"
        session.rollback()


def test_two_hand_overs_of_one_case_at_once_refer_it_once(fraud_scan: Settings) -> None:
    from telereg.core.errors import ConflictError
    from telereg.domains.fraud import handover

    with session_scope(fraud_scan) as session:
        city_police(session)
        case_id = casework.case_queue(session, principal=ROOT, status="open", kind="sim_box")[0].id
        casework.move_case(session, principal=ROOT, case_id=case_id, to="in_review", note="two")
    with session_scope(fraud_scan) as first:
        # The first request reads the case in review ...
        assert casework.get_case(first, principal=ROOT, case_id=case_id).status == "in_review"
        # ... while a second one hands it over and is done.
        with session_scope(fraud_scan) as second:
            hand_over(second, fraud_scan, [case_id], "second")
        with pytest.raises(ConflictError, match=r"moved by someone else|only cases in review"):
            hand_over(first, fraud_scan, [case_id], "first", agency="POLICE-CITY")
        first.rollback()
    with session_scope(fraud_scan) as session:
        history = casework.case_history(session, principal=ROOT, case_id=case_id)
        case = casework.get_case(session, principal=ROOT, case_id=case_id)
        assert case.agency is not None
        assert case.agency.code == "POLICE-AF"
    assert [h["step"] for h in history].count("referred") == 1
    with session_scope(fraud_scan) as session:
        packages = {p["agency"] for p in handover.packages(session, fraud_scan, principal=ROOT)}
    assert "POLICE-CITY" not in packages, "no package for the agency that lost the race"


def test_a_step_on_a_case_read_before_another_moved_it_is_refused(fraud_scan: Settings) -> None:
    from sqlalchemy import select

    from telereg.cases import service as cases
    from telereg.cases.models import Case
    from telereg.core.errors import ConflictError

    with session_scope(fraud_scan) as first:
        open_suspects = select(Case).where(
            Case.status == "open",
            Case.domain == casework.WORKFLOW.domain,
            Case.kind == casework.WORKFLOW.kind,
        )
        stale = first.scalars(open_suspects).first()
        assert stale is not None
        with session_scope(fraud_scan) as second:
            casework.move_case(second, principal=ROOT, case_id=stale.id, to="closed", note="b")
        assert stale.status == "open", "the first still holds what it read"
        with pytest.raises(ConflictError, match=f"case {stale.id} was moved by someone else"):
            cases.move(
                first,
                principal=ROOT,
                workflow=casework.WORKFLOW,
                case_id=stale.id,
                to="in_review",
                note="a",
            )
        first.rollback()


def test_queue_pages_keep_their_place_and_lists_download_whole(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.domains.fraud import findings

    analyst = signed_in("analyst")
    page = analyst.get("/fraud/cases", params={"kind": "card", "status": "open", "page": 2})
    case_id = re.findall(r'<tr id="case-([0-9]+)"', page.text)[0]
    assert 'name="from" value="status=open&amp;kind=card&amp;page=2"' in page.text
    moved = analyst.post(
        f"/fraud/cases/{case_id}",
        data={
            "to": "in_review",
            "note": "look",
            "from": "status=open&kind=card&page=2&evil=x",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert moved.headers["location"] == f"/fraud/cases?status=open&kind=card&page=2#case-{case_id}"
    assert analyst.get("/fraud/cases", params={"operator": "XXXX"}).status_code == 404
    one = analyst.get("/fraud/cases", params={"operator": "CMCC"}).text
    (facets,) = re.findall(r'<p id="operator-filter">(.*?)</p>', one, re.DOTALL)
    assert "中国联通 (" in facets, "the other operators keep their counts under a filter"
    # Every ID number over the limit and every card whose holder is not the user, as CSV.
    over = analyst.get("/fraud/over-limit.csv", params={"period": "2021-11"})
    holders = analyst.get("/fraud/identity.csv", params={"period": "2021-11"})
    listed = findings.ids_over_limit(fraud_scan, principal=ROOT, period="2021-11", limit=None)
    cards = findings.identity_list(fraud_scan, principal=ROOT, period="2021-11", limit=None)
    assert len(over.text.lstrip("\ufeff").splitlines()) == 1 + listed["total"] > 21
    assert len(holders.text.lstrip("\ufeff").splitlines()) == 1 + cards["total"] > 21
    assert holders.text.lstrip("\ufeff").startswith("号码（假名）,运营商")
    # A suspect's page without a month is the latest scan's, reveal form and all.
    line = findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11")["suspects"][0]
    shown = analyst.get(f"/fraud/lines/{line['line']}").text
    assert 'id="reveal-form"' in shown
    assert "period=2021-11" in shown


def test_a_line_s_charts_have_every_day_and_hour(fraud_scan: Settings) -> None:
    from telereg.domains.fraud import findings

    line = findings.suspect_list(fraud_scan, principal=ROOT, period="2021-11")["suspects"][0]
    with session_scope(fraud_scan) as session:
        detail = findings.line_detail(
            session, settings=fraud_scan, principal=ROOT, period="2021-11", line=line["line"]
        )
    days = [d["day"] for d in detail["by_day"]]
    assert days[0] == "2021-11-01"
    assert days[-1] == "2021-11-30"
    assert len(days) == 30
    assert [h["hour"] for h in detail["by_hour"]] == list(range(24))
    assert sum(h["calls"] for h in detail["by_hour"]) == sum(d["calls"] for d in detail["by_day"])
    assert 0 in [h["calls"] for h in detail["by_hour"]], "a quiet hour is there, as 0"


def test_a_hand_over_withdrawn_goes_back_to_review_and_the_agency_is_told(
    fraud_scan: Settings, signed_in
) -> None:
    from telereg.core.errors import ConflictError, NotFoundError
    from telereg.domains.fraud import handover

    with session_scope(fraud_scan) as session:
        city_police(session)
        add_liaisons(session, {"wd-af": "POLICE-AF", "wd-city": "POLICE-CITY"})
        case_id = casework.case_queue(session, principal=ROOT, status="open", kind="sim_box")[1].id
        casework.move_case(session, principal=ROOT, case_id=case_id, to="in_review", note="look")
        made = hand_over(session, fraud_scan, [case_id], "first hand-over")
    analyst, police, city = signed_in("analyst"), signed_in("wd-af"), signed_in("wd-city")
    package = f"/api/v1/fraud/handovers/POLICE-AF/{made.path.name}"
    assert police.get(package).status_code == 200
    page = analyst.get(f"/fraud/cases/{case_id}").text
    assert 'id="case-withdraw"' in page, "an analyst is offered the withdrawal"
    assert "撤回对" in page.split('id="case-withdraw"')[1].split("</form>")[0]
    english = analyst.get("/lang/en", params={"next": f"/fraud/cases/{case_id}"}).text
    assert "Withdraw the hand-over from" in english
    analyst.get("/lang/zh_CN", params={"next": "/"})
    assert 'id="case-withdraw"' not in police.get(f"/fraud/cases/{case_id}").text
    refused = police.post(
        f"/fraud/cases/{case_id}",
        data={"to": "in_review", "note": "not ours", "csrf_token": csrf_of(page)},
    )
    assert refused.status_code == 403, "the agency cannot withdraw it"
    no_note = analyst.post(
        f"/fraud/cases/{case_id}",
        data={"to": "in_review", "note": " ", "back": "case", "csrf_token": csrf_of(page)},
    )
    assert "说明" in no_note.text.split('role="alert"')[1].split("</p>")[0], "a note is needed"
    with session_scope(fraud_scan) as session:
        assert casework.get_case(session, principal=ROOT, case_id=case_id).status == "referred"
    withdrawn = analyst.post(
        f"/fraud/cases/{case_id}",
        data={
            "to": "in_review",
            "note": "交错单位：应移交市公安局",
            "back": "case",
            "csrf_token": csrf_of(page),
        },
    )
    assert withdrawn.status_code == 200, withdrawn.text
    with session_scope(fraud_scan) as session:
        case = casework.get_case(session, principal=ROOT, case_id=case_id)
        assert (case.status, case.agency, case.handler) == ("in_review", None, "")
    history = withdrawn.text.split('id="case-history"')[1]
    assert "撤回" in history
    assert "交错单位" in history
    # The agency no longer sees the case, and is told on its page why.
    assert police.get(f"/fraud/cases/{case_id}").status_code == 404
    told = police.get("/fraud/liaison").text
    assert f'id="case-{case_id}"' not in told
    notice = told.split('id="withdrawn"')[1].split("</section>")[0]
    assert f"#{case_id}" in notice
    assert "交错单位" in notice
    assert 'id="withdrawn"' not in city.get("/fraud/liaison").text, "only the agency's own"
    # The package is listed as withdrawn (no link to fetch it), on the page and in the API.
    assert f'href="{package}"' not in told
    assert "已撤回" in told.split(made.path.name, 1)[1].split("</li>", 1)[0]
    (listed,) = [
        p for p in police.get("/api/v1/fraud/handovers").json() if p["name"] == made.path.name
    ]
    assert listed["withdrawn"] is True
    assert listed["cases"] == [case_id]
    english = police.get("/lang/en", params={"next": "/fraud/liaison"}).text
    assert "Withdrawn hand-overs" in english.split('id="withdrawn"')[1].split("</section>")[0]
    police.get("/lang/zh_CN", params={"next": "/fraud/liaison"})
    gone = police.get(package)
    assert gone.status_code == 404, "a package all of whose cases were withdrawn"
    assert "撤回" in gone.json()["message"]
    assert analyst.get(package).status_code == 200, "the administration keeps its record"
    from telereg.core import audit

    with session_scope(fraud_scan) as session:
        fetched, _ = audit.entries(session, action="fraud.handover", obj=f"case:{case_id}")
        seen = [(e.actor, e.action) for e in fetched]
    assert ("wd-af", "fraud.handover.fetched") in seen, "the case's record shows the fetch"
    assert ("wd-af", "fraud.handover.refused") in seen
    with session_scope(fraud_scan) as session:
        police_af = _liaison_principal(session, "wd-af")
        with pytest.raises(NotFoundError):
            handover.record_disposal(
                session, principal=police_af, case_id=case_id, disposal="no_action", note="x"
            )
        session.rollback()
    # Handed over again, to the right agency: it sees the case from its own hand-over on.
    with session_scope(fraud_scan) as session:
        hand_over(session, fraud_scan, [case_id], "to the city", agency="POLICE-CITY")
    assert police.get(package).status_code == 404  # (a refusal the city must not read of)
    steps = city.get(f"/api/v1/fraud/cases/{case_id}").json()
    assert city.get(f"/fraud/cases/{case_id}").status_code == 200
    shown = city.get(f"/fraud/cases/{case_id}").text.split('id="case-history"')[1]
    assert "交错单位" not in shown
    assert "first hand-over" not in shown
    assert "wd-af" not in shown, "another agency's fetches are the audit log's, not steps"
    assert steps["status"] == "referred"
    # Taken back from the city and handed to the first agency again: each agency sees only
    # the time the case was its own.
    with session_scope(fraud_scan) as session:
        casework.withdraw_handover(session, principal=ROOT, case_id=case_id, note="城市内部原因")
        hand_over(session, fraud_scan, [case_id], "back to the centre")
    again = police.get(f"/fraud/cases/{case_id}").text.split('id="case-history"')[1]
    assert "交错单位" in again, "its own withdrawal"
    assert "to the city" not in again
    assert "城市内部原因" not in again
    assert "back to the centre" in again
    # Through the API too: moving a referred case back into review withdraws it.
    token = {"x-csrf-token": csrf_of(analyst.get("/fraud/cases").text)}
    moved = analyst.post(
        f"/api/v1/fraud/cases/{case_id}/moves",
        json={"to": "in_review", "note": "再次撤回"},
        headers=token,
    )
    assert moved.status_code == 200, moved.text
    assert police.get(f"/fraud/cases/{case_id}").status_code == 404
    with session_scope(fraud_scan) as session:
        hand_over(session, fraud_scan, [case_id], "the city once more", agency="POLICE-CITY")
    # A case the agency has disposed of can no longer be withdrawn.
    with session_scope(fraud_scan) as session:
        city_principal = _liaison_principal(session, "wd-city")
        handover.record_disposal(
            session, principal=city_principal, case_id=case_id, disposal="no_action", note="ok"
        )
    with session_scope(fraud_scan) as session:
        with pytest.raises(ConflictError):
            casework.withdraw_handover(session, principal=ROOT, case_id=case_id, note="late")
        session.rollback()


def _liaison_principal(session, name: str):
    from telereg.core import accounts, auth

    return auth.principal_of(accounts.get_user(session, name))
