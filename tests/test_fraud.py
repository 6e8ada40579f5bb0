"""Anti-fraud: features on hand-worked calls, rule scores, the signed hand-over."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import openpyxl
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from telereg.core.errors import SignatureError
from telereg.core.settings import Settings
from telereg.domains.fraud import casework, features, handover, parameters, scoring
from telereg.domains.fraud.features import FEATURES, line_features

CALL_SCHEMA = {
    "caller": "string",
    "callee": "string",
    "start_time": "timestamp",
    "duration_s": "int64",
    "direction": "string",
    "cell_id": "string",
    "imei": "string",
    "imei_tac": "string",
    "peer_operator": "string",
    "peer_province": "string",
    "operator": "string",
}


def _calls() -> pd.DataFrame:
    rows = []
    # Two gateway ports (lines G1, G2) at cell C1 on two days, switching on at 09:00 and off
    # at 18:00 together with a third port G3; each calls 5 strangers a day in other provinces.
    for day in ("2021-11-01", "2021-11-02"):
        for line in ("G1", "G2", "G3"):
            for k in range(5):
                minute = 0 if k == 0 else (540 if k == 4 else 60 * k)
                rows.append(
                    (
                        line,
                        f"V{line}{day}{k}",
                        f"{day} {9 + minute // 60:02d}:{minute % 60:02d}:00",
                        10 if k < 3 else 100,
                        "MO",
                        "C1",
                        "IMEI-PORT",
                        "86201803",
                        "CUCC",
                        "440000",
                    )
                )
    # A person P calls G1 once (20 s) and a friend F twice (120 s), from cells C1 and C2.
    rows.append(
        ("P", "G1", "2021-11-01 12:00:00", 20, "MO", "C1", "IMEI-P", "86000001", "CMCC", "140000")
    )
    rows += [
        (
            "P",
            "F",
            f"2021-11-0{d} 12:00:00",
            120,
            "MO",
            "C2",
            "IMEI-P",
            "86000001",
            "CMCC",
            "140000",
        )
        for d in (1, 2)
    ]
    frame = pd.DataFrame(rows, columns=list(CALL_SCHEMA)[:-1])
    frame["operator"] = "CMCC"
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    return frame


def _features(calls_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    calls = ibis.memtable(_calls() if calls_frame is None else calls_frame, schema=CALL_SCHEMA)
    cells = ibis.memtable(
        {
            "operator": ["CMCC", "CMCC"],
            "cell_id": ["C1", "C2"],
            "longitude": [112.0, 112.0],
            "latitude": [37.0, 37.09],
        }
    )
    sms = ibis.memtable(
        {"sender": ["P"], "receiver": ["F"]}, schema={"sender": "string", "receiver": "string"}
    )
    data = ibis.memtable(
        {"phone": ["P"], "day": [date(2021, 11, 1)]}, schema={"phone": "string", "day": "date"}
    )
    tacs = ibis.memtable({"tac": ["86201803"]})
    with line_features(
        calls, cells, sms, data, tacs, home_province="140000", mid_latitude=37.0
    ) as expr:
        frame: pd.DataFrame = expr.to_pandas()
    return frame.set_index("line")


def test_features_of_hand_worked_calls() -> None:
    f = _features()
    g1, p = f.loc["G1"], f.loc["P"]
    assert g1.calls_out == 10
    assert g1.active_days == 2
    assert g1.calls_per_day == 5
    assert g1.calls_in == 1
    assert g1.out_in_ratio == pytest.approx(10 / 2)
    assert g1.novelty == 1.0
    assert g1.callees == 10
    assert g1.short_share == pytest.approx(0.6)  # three of five calls a day last 10 s
    assert g1.other_operator_share == 1.0
    assert g1.other_province_share == 1.0
    assert g1.cells == 1
    assert g1.radius_km == pytest.approx(0.0, abs=0.01)
    assert g1.sms == 0
    assert g1.data_days == 0
    assert g1.imei_lines == 3
    assert bool(g1.gateway_tac)
    assert g1.cohort_days == 2  # both days, with two other ports switching alike
    assert p.calls_out == 3
    assert p.callees == 2
    assert p.novelty == pytest.approx(2 / 3)
    assert p.sms == 1
    assert p.data_days == 1
    assert p.imei_lines == 1
    assert not bool(p.gateway_tac)
    # One call at C1 and two at C2, 10 km north: positions 0, 10, 10 km → radius √(200/9).
    assert p.radius_km == pytest.approx((200 / 9) ** 0.5, rel=0.01)
    assert p.cohort_days == 0
    assert p.short_share == pytest.approx(1 / 3)


def test_cohort_days_of_lines_whose_day_count_overflows() -> None:
    # Three ports at C9 each make one call more on 3 November than the field the day is
    # counted in holds, on at 08:00 and off at 20:00 together. The field then reads 1 and
    # carries into the next; the scan must still compare these days.
    n = 2**features._SLOT_BITS + 1
    rows = [
        (
            line,
            f"V{line}{k}",
            pd.Timestamp("2021-11-03 08:00:00") + pd.Timedelta(seconds=k * 12 * 3600 // (n - 1)),
            15,
            "MO",
            "C9",
            f"IMEI-{line}",
            "86201804",
            "CUCC",
            "440000",
            "CMCC",
        )
        for line in ("H1", "H2", "H3")
        for k in range(n)
    ]
    extra = pd.DataFrame(rows, columns=list(CALL_SCHEMA))
    f = _features(pd.concat([_calls(), extra], ignore_index=True))
    assert list(f.loc[["H1", "H2", "H3"], "cohort_days"]) == [1, 1, 1]
    assert f.loc["H1"].calls_out == n
    assert f.loc["H1"].active_days == 1
    assert f.loc["G1"].cohort_days == 2  # the others are unchanged
    assert f.loc["P"].cohort_days == 0


@pytest.mark.parametrize("threshold", range(10))
def test_the_busy_day_test_is_exact_for_any_threshold(threshold: int) -> None:
    # Lines with random calls per day over a month, packed as _outgoing packs them (a field
    # that passes its largest value carries into the next). A line must pass when one of its
    # days reaches the threshold, and, unless a day overflowed its field, only then.
    rng = np.random.default_rng(threshold)
    busy = rng.choice(
        10, size=(200, 30), p=[0.4, 0.2, 0.1, 0.07, 0.07, 0.05, 0.04, 0.03, 0.02, 0.02]
    )
    quiet = rng.choice(2, size=(200, 30), p=[0.7, 0.3])
    counts = np.vstack([busy, quiet])
    words = np.zeros((len(counts), features._SLOT_WORDS), dtype=np.int64)
    for day in range(counts.shape[1]):
        slot = day % features.DAY_SLOTS
        word, field = divmod(slot, features._SLOTS_PER_WORD)
        words[:, word] += counts[:, day] << (features._SLOT_BITS * field)
    table = ibis.memtable(
        {
            "line": np.arange(len(counts)),
            "calls_out": counts.sum(axis=1),
            **{f"day_calls_{w}": words[:, w] for w in range(features._SLOT_WORDS)},
        }
    )
    passed = (
        table.select("line", ok=features._may_have_busy_day(table, threshold))
        .execute()
        .sort_values("line")["ok"]
        .to_numpy()
    )
    largest = counts.max(axis=1)
    overflowed = largest >= 2**features._SLOT_BITS
    assert (passed == ((largest >= threshold) | overflowed)).all()
    assert (passed.any() and not passed.all()) or threshold <= 1


def _received() -> pd.DataFrame:
    """Terminated legs: P receives 12 calls from other operators' numbers (at P's cell, on
    P's handset), and the operator also sent the terminated leg of P's call to G1."""
    received = [
        (
            f"X{k}",
            "P",
            f"2021-11-03 1{k % 10}:00:00",
            30,
            "MT",
            "C2",
            "IMEI-P",
            "86000001",
            "CUCC",
            "140000",
        )
        for k in range(12)
    ]
    received.append(
        (
            "P",
            "G1",
            "2021-11-01 12:00:00",
            20,
            "MT",
            "C1",
            "IMEI-PORT",
            "86201803",
            "CMCC",
            "140000",
        )
    )
    frame = pd.DataFrame(received, columns=list(CALL_SCHEMA)[:-1]).assign(operator="CMCC")
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    return frame


def test_terminated_legs_count_as_calls_received_and_make_no_lines() -> None:
    f = _features(pd.concat([_calls(), _received()], ignore_index=True))
    before = _features()
    assert sorted(f.index) == sorted(before.index), "callers of received calls are no lines"
    p, g1 = f.loc["P"], f.loc["G1"]
    assert p.calls_in == 12
    assert p.out_in_ratio == pytest.approx(3 / 13)
    assert g1.calls_in == 1, "both legs of one call are one call received"
    assert p.imei_lines == 1, "the receiver's handset is not shared"
    assert g1.imei_lines == 3
    unchanged = [c for c in f.columns if c not in ("calls_in", "out_in_ratio")]
    pd.testing.assert_frame_equal(f[unchanged], before[unchanged], check_like=True)


def test_a_line_without_handset_records_has_no_device_signal() -> None:
    # N calls twice from C1 and once from C2 with no IMEI recorded (a fixed line's trunk,
    # or a record that lacked it): it has cells and a radius, but no handset to share.
    rows = [
        ("N", f"VN{k}", f"2021-11-04 1{k}:00:00", 60, "MO", cell, None, None, "CMCC", "140000")
        for k, cell in enumerate(("C1", "C1", "C2"))
    ]
    extra = pd.DataFrame(rows, columns=list(CALL_SCHEMA)[:-1]).assign(operator="CMCC")
    extra["start_time"] = pd.to_datetime(extra["start_time"])
    f = _features(pd.concat([_calls(), extra], ignore_index=True))
    n = f.loc["N"]
    assert n.cells == 2
    assert n.radius_km == pytest.approx((200 / 9) ** 0.5, rel=0.01)
    assert n.imei_lines == 0
    assert not bool(n.gateway_tac)
    assert f.loc["G1"].imei_lines == 3  # the ports' shared handset is unchanged


def test_a_line_at_no_located_cell_has_no_radius_and_is_not_static() -> None:
    # U calls only from a cell the cells file does not place: where it was is unknown, so
    # its radius is null, and the "static" rule (radius at most 1 km) must not count it.
    rows = [
        ("U", f"VU{k}", f"2021-11-05 1{k}:00:00", 60, "MO", "C404", None, None, "CMCC", "140000")
        for k in range(3)
    ]
    extra = pd.DataFrame(rows, columns=list(CALL_SCHEMA)[:-1]).assign(operator="CMCC")
    extra["start_time"] = pd.to_datetime(extra["start_time"])
    f = _features(pd.concat([_calls(), extra], ignore_index=True))
    assert f.loc["U"].cells == 1
    assert pd.isna(f.loc["U"].radius_km)
    assert f.loc["G1"].radius_km == pytest.approx(0.0, abs=0.01)
    scored = scoring.with_rule_names(scoring.rule_scores(f.reset_index(), {}))
    rules = dict(zip(scored["line"], scored["rules"], strict=True))
    assert "static" not in rules["U"]
    assert "static" in rules["G1"]


def test_the_model_does_not_depend_on_the_pseudonym_key() -> None:
    # The same lines under two keys: other tokens, so another order of the tokens.
    rng = np.random.default_rng(5)
    history = pd.DataFrame(rng.gamma(2.0, 3.0, size=(400, len(FEATURES))), columns=list(FEATURES))
    history.loc[:39, "calls_per_day"] += 40  # the confirmed lines call more
    one = history.assign(line=[f"a{i:03d}" for i in range(400)])
    other = history.assign(line=[f"{(i * 7919) % 1000:03d}b" for i in range(400)])
    first = scoring.train(one, set(one["line"][:40]))
    second = scoring.train(other.sample(frac=1.0, random_state=1), set(other["line"][:40]))
    assert first is not None
    assert second is not None
    assert np.array_equal(first.probability(one), second.probability(other))
    # The rows are in feature order, so the calibration's folds must be drawn at random:
    # blocks of that order would each calibrate on a range of calls_out never trained on.
    folds = first.model.cv
    assert folds.shuffle
    assert folds.random_state is not None


def test_training_labels_leave_out_the_unconfirmed_lines_of_confirmed_handsets() -> None:
    from telereg.domains.fraud.service import training_labels

    pairs = [("A", "I1"), ("B", "I1"), ("C", "X"), ("C", "I2"), ("D", "X"), ("E", "I2")]
    pairs += [("F", "I3"), ("H", None)]
    calls = ibis.memtable(
        pd.DataFrame(pairs, columns=["caller", "imei"]),
        schema={"caller": "string", "imei": "string"},
    )
    # The police confirmed numbers A and G (G made no call that month) and handset X.
    feedback = ibis.memtable(
        {"phone": ["A", "G", None], "imei": [None, None, "X"]},
        schema={"phone": "string", "imei": "string"},
    )
    confirmed, unlabelled = training_labels(calls, feedback)
    assert confirmed == {"A", "G", "C", "D"}
    # B shared A's handset and E shared C's other one: not confirmed, not clean either.
    assert unlabelled == {"B", "E"}

    rng = np.random.default_rng(3)
    history = pd.DataFrame(rng.gamma(2.0, 3.0, size=(60, len(FEATURES))), columns=list(FEATURES))
    history["line"] = [f"L{i}" for i in range(60)]
    model = scoring.train(history, {f"L{i}" for i in range(12)}, unlabelled={"L0", "L50", "L51"})
    assert model is not None
    assert (model.positives, model.negatives, model.unlabelled) == (12, 46, 2)


def test_a_feature_the_line_lacks_is_never_a_reason() -> None:
    rng = np.random.default_rng(8)
    history = pd.DataFrame(rng.gamma(2.0, 3.0, size=(400, len(FEATURES))), columns=list(FEATURES))
    history["line"] = [f"L{i}" for i in range(400)]
    # The confirmed lines sit still, or were at no located cell: the model learns that a
    # missing radius goes with fraud, and the median radius with honest lines.
    history.loc[:59, "radius_km"] = 0.0
    history.loc[60:119, "radius_km"] = np.nan
    model = scoring.train(history, {f"L{i}" for i in range(120)})
    assert model is not None
    placed_reasons, *_ = model.explain(history.iloc[[0]])
    assert "radius_km" in dict(placed_reasons)
    unplaced = history.iloc[60:64]
    assert (model.probability(unplaced) > 0.5).all()
    for reasons in model.explain(unplaced):
        assert "radius_km" not in dict(reasons), "no radius is no reason"


def test_a_number_shared_by_very_many_suspects_links_none_of_them() -> None:
    from telereg.domains.fraud import rings

    crowd = [f"S{i:03d}" for i in range(rings.MAX_SHARERS + 1)]
    rows = [(line, "HOTLINE", "IMEI-0") for line in crowd]  # all call one number, one handset
    rows += [("A", "X1", "IMEI-A"), ("A", "X2", "IMEI-A"), ("B", "X1", "IMEI-A")]
    rows += [("B", "X2", "IMEI-B")]
    calls = ibis.memtable(pd.DataFrame(rows, columns=["caller", "callee", "imei"]))
    suspects = [*crowd, "A", "B"]
    callees = rings.shared_callees(calls, suspects).to_pandas()
    handsets = rings.shared_handsets(calls, suspects).to_pandas()
    # Pairing the crowd would give 1,275 pairs from one hotline: it gives none.
    assert list(zip(callees["a"], callees["b"], callees["weight"], strict=True)) == [("A", "B", 2)]
    assert list(zip(handsets["a"], handsets["b"], strict=True)) == [("A", "B")]


def test_an_outlet_links_cards_of_its_own_operator_only() -> None:
    from telereg.domains.fraud import rings

    members = pd.DataFrame(
        {"line": ["a", "b", "c"], "operator": ["CMCC", "CMCC", "CUCC"], "kind": "card"}
    )
    no_links = pd.DataFrame(columns=["a", "b", "weight"])
    # Outlet codes are each operator's own: CUCC's A001 is another shop than CMCC's.
    outlets = members.assign(outlet_id="A001")[["line", "operator", "outlet_id"]]
    graph = rings.build(members, no_links, no_links, outlets)
    assert {(e["a"], e["b"]) for e in graph.edges.to_dict("records")} == {("a", "b")}


def test_outlets_count_the_new_cards_that_work_in_sim_boxes() -> None:
    from datetime import datetime

    from telereg.domains.fraud import cardbreak

    subscriptions = pd.DataFrame(
        {
            "phone": ["r1", "r2", "s1", "s2", "s3", "old", "n1"],
            "operator": "CMCC",
            "outlet_id": ["A", "A", "B", "B", "B", "B", "B"],
            "activated_at": ["2021-11-20"] * 5 + ["2021-03-01", "2021-11-02"],
        }
    )
    cards = subscriptions[subscriptions["phone"].isin(["r1", "r2"])].rename(
        columns={"phone": "line"}
    )
    # s1 to s3 were sold new by outlet B and now work in a gateway; "old" works in one too,
    # but was sold long before the month, so it says nothing about B's sales now. A line
    # suspected of both counts once, as a SIM box.
    sim_boxes = pd.DataFrame({"line": ["s1", "s2", "s3", "old", "r2"], "operator": "CMCC"})
    end = datetime(2021, 12, 1)  # noqa: DTZ001 - local calendar time, as the scan uses
    sold = cardbreak.flagged_sales(cards, sim_boxes, subscriptions, period_end=end)
    assert sorted(zip(sold["line"], sold["kind"], strict=True)) == [
        ("r1", "card"),
        ("r2", "sim_box"),
        ("s1", "sim_box"),
        ("s2", "sim_box"),
        ("s3", "sim_box"),
    ]
    table = cardbreak.outlets(sold, subscriptions, period_end=end).set_index("outlet_id")
    assert table.loc["B", ["new_cards", "flagged_cards", "sim_box_cards"]].tolist() == [4, 3, 3]
    assert table.loc["B", "flagged_share"] == 0.75
    assert table.loc["A", ["new_cards", "flagged_cards", "sim_box_cards"]].tolist() == [2, 2, 1]
    assert list(table.index) == ["B", "A"]


def test_rule_score_names_the_rules_met() -> None:
    scored = scoring.with_rule_names(
        scoring.rule_scores(_features().reset_index(), {"calls_per_day": 5, "imei_lines": 3})
    )
    g1 = scored.set_index("line").loc["G1"]
    assert {"calls_per_day", "gateway_tac", "cohort_days", "imei_lines", "no_sms"} <= set(g1.rules)
    assert g1.device_signal
    p = scored.set_index("line").loc["P"]
    assert p.rule_score < g1.rule_score
    assert not p.device_signal
    suspects = scoring.rule_suspects(scored, 6)
    assert set(scored[suspects]["line"]) == {"G1", "G2", "G3"}


def test_handover_signature_breaks_on_any_changed_byte(tmp_path: Path) -> None:
    key = b"k" * 32
    rows = [dict.fromkeys(handover.COLUMNS, "") | {"case_id": 1, "reference": "=cmd|' /C calc'!A0"}]
    path = handover.write_package(
        tmp_path / "h.zip", rows, {"agency": "POLICE-AF", "cases": [1]}, key
    )
    manifest = handover.verify(path, key)
    assert manifest["cases"] == [1]
    assert set(manifest["files"]) == {"cases.csv", "cases.xlsx"}
    with zipfile.ZipFile(path) as package:
        content = {n: package.read(n) for n in package.namelist()}
    assert b"'=cmd" in content["cases.csv"], "formula cells are neutralised"
    # The workbook names its columns in Chinese for the officers who read it, with the
    # codes the CSV has.
    sheet = openpyxl.load_workbook(io.BytesIO(content["cases.xlsx"])).active
    assert sheet["A1"].value == "案件编号 (case_id)"
    assert [c.value for c in sheet[1]][-1] == "明文名下号码 (clear_lines)"
    with pytest.raises(SignatureError, match="or it was signed with another key"):
        handover.verify(path, b"x" * 32)
    # Any byte of the archive, its headers, dates and flags included, and any byte added.
    archive = path.read_bytes()
    forged = tmp_path / "forged.zip"
    for position in range(len(archive)):
        changed = bytearray(archive)
        changed[position] ^= 0x01
        forged.write_bytes(changed)
        with pytest.raises(SignatureError):
            handover.verify(forged, key)
    forged.write_bytes(archive + b"\n")
    with pytest.raises(SignatureError):
        handover.verify(forged, key)
    # A package rebuilt with a file changed fails on the seal, and on the manifest below it.
    for name, data in content.items():
        for position in (0, len(data) // 2, len(data) - 1):
            changed = bytearray(data)
            changed[position] ^= 0x01
            forged = tmp_path / f"forged-{name}-{position}.zip"
            with zipfile.ZipFile(forged, "w") as package:
                for other, body in content.items():
                    package.writestr(other, bytes(changed) if other == name else body)
            with pytest.raises(SignatureError):
                handover.verify(forged, key)


def test_the_package_list_names_what_each_holds_without_opening_one(settings: Settings) -> None:
    from pydantic import SecretStr

    from telereg.cases.models import HandoverPackage
    from telereg.core.db import session_scope
    from telereg.core.permissions import Role
    from telereg.scenario.demo import prepare
    from tests.conftest import ROOT, handed_over, principal_of_role

    prepare(settings, principal=ROOT)
    made = handed_over(settings, "one.example", "two.example")
    police = principal_of_role(Role.LIAISON, agency_code="POLICE-AF")
    health = principal_of_role(Role.LIAISON, agency_code="HEALTH")
    listed = {
        "agency": "POLICE-AF",
        "name": made.path.name,
        "bytes": len(made.archive),
        "made": made.manifest["created_at"],
        "cases": made.manifest["cases"],
        "withdrawn": False,
        "purged_at": None,
    }
    # Read from the package's record: with another vault key no package would open.
    other_key = settings.model_copy(update={"vault_key": SecretStr("another key entirely")})
    with session_scope(settings) as s:
        for reader in (settings, other_key):
            assert handover.packages(s, reader, principal=ROOT) == [listed]
            assert handover.packages(s, reader, principal=police) == [listed]
            assert handover.packages(s, reader, principal=health) == [], "another agency's"
        (record,) = s.query(HandoverPackage).all()
        assert (record.created_by, record.clear_values) == (ROOT.name, False)
    # A package kept before packages had records (a plain archive, or an encrypted one): read
    # itself; one that cannot be read is listed with no cases.
    folder = made.path.parent
    legacy = folder / "handover-20211201T000000-legacy.zip"
    legacy.write_bytes(made.archive)
    unrecorded = folder / "handover-20211202T000000-unrecorded.zip"
    unrecorded.write_bytes(handover._sealed(settings, "POLICE-AF", unrecorded.name, made.archive))
    damaged = folder / "handover-20211203T000000-damaged.zip"
    damaged.write_bytes(b"PK\x03\x04 not a package")
    with session_scope(settings) as s:
        found = {p["name"]: p for p in handover.packages(s, settings, principal=police)}
        for old in (legacy, unrecorded):
            assert found[old.name] == {**listed, "name": old.name}
        assert (found[damaged.name]["cases"], found[damaged.name]["bytes"]) == ([], 0)
        assert [p["name"] for p in handover.packages(s, settings, principal=health)] == []


def test_a_handover_with_an_added_or_repeated_file_fails(tmp_path: Path) -> None:
    import warnings

    key = b"k" * 32
    rows = [dict.fromkeys(handover.COLUMNS, "") | {"case_id": 1, "reference": "a"}]
    path = handover.write_package(tmp_path / "h.zip", rows, {"cases": [1]}, key)
    with zipfile.ZipFile(path) as package:
        content = {n: package.read(n) for n in package.namelist()}

    def forge(name: str, extra: list[tuple[str, bytes]], sig: bytes | None = None) -> Path:
        forged = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
            with zipfile.ZipFile(forged, "w") as package:
                for other, body in extra:  # first, as a viewer that opens the first copy sees
                    package.writestr(other, body)
                for other, body in content.items():
                    package.writestr(other, sig if sig and other == "manifest.sig" else body)
        return forged

    fake = b"case_id,type\r\n1,nothing to see\r\n"
    for forged in (
        forge("added.zip", [("readme.txt", b"trust me")]),
        forge("repeated.zip", [("cases.csv", fake)]),
        forge("not-ascii.zip", [], sig="é".encode() * 64),
    ):
        with pytest.raises(SignatureError):
            handover.verify(forged, key)
    (tmp_path / "broken.zip").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SignatureError):
        handover.verify(tmp_path / "broken.zip", key)


def test_a_long_domain_gets_a_reference_that_fits(tmp_path: Path) -> None:
    from telereg.core.errors import InputError
    from telereg.core.settings import load_settings
    from telereg.domains.fraud import service

    short = casework.domain_reference("icbc-verify.top")
    assert short == "domain:icbc-verify.top"
    first = casework.domain_reference("a" * 60 + ".example-bank-login." + "b" * 60 + ".top")
    second = casework.domain_reference("a" * 60 + ".example-bank-login." + "c" * 60 + ".top")
    assert len(first) <= 100
    assert len(second) <= 100
    assert first != second
    settings = load_settings(data_dir=tmp_path)
    for period in ("../../etc", "2021-13", "2021-11\n"):
        with pytest.raises(InputError, match=r"is not a (valid )?month"):
            service.results_dir(settings, period)


def test_an_unknown_rule_in_the_settings_is_a_clear_error(tmp_path: Path) -> None:
    from telereg.core.db import session_scope
    from telereg.core.errors import ConfigurationError
    from telereg.core.settings import load_settings
    from telereg.domains.fraud import service
    from telereg.system.migrate import upgrade
    from tests.conftest import ROOT

    settings = load_settings(data_dir=tmp_path, fraud_rules={"calls_per_dya": 30})
    upgrade(settings)
    with session_scope(settings) as session, pytest.raises(ConfigurationError) as caught:
        service.scan(session, settings=settings, principal=ROOT, period="2021-11")
    assert "calls_per_dya" in str(caught.value)
    assert "calls_per_day" in str(caught.value)


def test_what_counts_as_short_and_as_switching_together_is_a_setting(tmp_path: Path) -> None:
    from telereg.core.db import session_scope
    from telereg.core.errors import ConfigurationError
    from telereg.core.settings import load_settings
    from telereg.domains.fraud import service
    from telereg.system.migrate import upgrade

    def features_with(**given: int) -> pd.DataFrame:
        calls = ibis.memtable(_calls(), schema=CALL_SCHEMA)
        cells = ibis.memtable(
            {"operator": ["CMCC"], "cell_id": ["C1"], "longitude": [112.0], "latitude": [37.0]}
        )
        sms = ibis.memtable({"sender": ["P"], "receiver": ["F"]})
        data = ibis.memtable({"phone": ["P"], "day": [date(2021, 11, 1)]})
        tacs = ibis.memtable({"tac": ["86201803"]})
        with line_features(
            calls,
            cells,
            sms,
            data,
            tacs,
            home_province="140000",
            mid_latitude=37.0,
            parameters=parameters.FeatureParameters.of(given),
        ) as expr:
            frame: pd.DataFrame = expr.to_pandas()
        return frame.set_index("line")

    assert features_with().loc["G1"].short_share == pytest.approx(0.6)
    assert features_with(short_call_s=5).loc["G1"].short_share == 0.0
    assert features_with(short_call_s=101).loc["G1"].short_share == 1.0
    assert features_with().loc["G1"].cohort_days == 2
    assert features_with(cohort_min_peers=3).loc["G1"].cohort_days == 0, "only two peers"
    assert features_with(cohort_min_calls=6).loc["G1"].cohort_days == 0, "5 calls a day"
    # The ports switch on at 09:00 and off at 18:00 together: any window keeps them together.
    assert features_with(cohort_window_s=1).loc["G1"].cohort_days == 2
    with pytest.raises(ConfigurationError, match="unknown feature parameter"):
        parameters.FeatureParameters.of({"short_call": 10})
    with pytest.raises(ConfigurationError, match="must be 1 or more"):
        parameters.FeatureParameters.of({"cohort_min_peers": 0})
    settings = load_settings(data_dir=tmp_path, fraud_features={"cohort_windw_s": 60})
    upgrade(settings)
    with session_scope(settings) as session, pytest.raises(ConfigurationError) as caught:
        service.check_scan(session, settings, "2021-11")
    assert "cohort_windw_s" in str(caught.value)
    assert "cohort_window_s" in str(caught.value)


def test_a_month_without_calls_gives_no_lines() -> None:
    calls = ibis.memtable(pd.DataFrame(columns=list(CALL_SCHEMA)), schema=CALL_SCHEMA)
    cells = ibis.memtable(
        {"operator": ["CMCC"], "cell_id": ["C1"], "longitude": [112.0], "latitude": [37.0]}
    )
    sms = ibis.memtable({"sender": ["P"], "receiver": ["F"]}).limit(0)
    data = ibis.memtable({"phone": ["P"], "day": [date(2021, 11, 1)]}).limit(0)
    tacs = ibis.memtable({"tac": ["86201803"]})
    with line_features(
        calls, cells, sms, data, tacs, home_province="140000", mid_latitude=37.0
    ) as expr:
        frame = expr.to_pandas()
    assert frame.empty
    assert list(frame.columns) == ["operator", "line", *FEATURES]


def test_the_truth_of_ids_over_the_limit_counts_active_cards_of_each_month() -> None:
    import pyarrow as pa

    from telereg.domains.fraud.synth import _over_limit

    def sent(statuses: dict[str, list[str]]) -> pa.Table:
        rows = [(i, s) for i, ss in statuses.items() for s in ss]
        return pa.table({"id_number": [i for i, _ in rows], "status": [s for _, s in rows]})

    truth = _over_limit(
        {
            ("CMCC", "2021-10"): sent({"A": ["active"] * 6, "B": ["active"] * 6}),
            # B's operator suspended one of B's cards: five active are within the rules.
            ("CMCC", "2021-11"): sent({"A": ["active"] * 6, "B": ["active"] * 5 + ["suspended"]}),
            ("CUCC", "2021-11"): sent({"A": ["active"] * 5}),
        }
    )
    assert truth == [
        {"operator": "CMCC", "id_number": "A", "periods": ["2021-10", "2021-11"]},
        {"operator": "CMCC", "id_number": "B", "periods": ["2021-10"]},
    ]


def test_a_finding_acted_on_in_an_earlier_month_is_a_new_case(session: Session) -> None:
    from telereg.cases import service as cases
    from tests.conftest import ROOT

    def finding(ref: str, period: str) -> cases.NewCase:
        return cases.NewCase(f"sim_box:{ref}", "SIM box suspect CMCC · score 9", {"period": period})

    def open_all(period: str) -> list[str]:
        items = casework.with_repeats(session, [finding(r, period) for r in "ABC"], period)
        made = cases.open_cases(session, principal=ROOT, workflow=casework.WORKFLOW, new=items)
        return sorted(c.reference for c in made)

    assert open_all("2021-10") == ["sim_box:A", "sim_box:B", "sim_box:C"]
    first = {c.reference: c for c in casework.case_queue(session, principal=ROOT)}
    # A: the line was suspended and the case closed; B: dismissed; C: still in review.
    first["sim_box:A"].status, first["sim_box:A"].outcome = "closed", "line_suspended"
    first["sim_box:B"].status, first["sim_box:B"].outcome = "closed", ""
    first["sim_box:C"].status = "in_review"
    session.flush()
    assert open_all("2021-10") == [], "a re-run of the month opens nothing"
    assert open_all("2021-11") == ["sim_box:A@2021-11"], "only the one acted on comes back"
    assert open_all("2021-11") == []
    again = {c.reference: c for c in casework.case_queue(session, principal=ROOT)}
    assert again["sim_box:A@2021-11"].subject["repeat_of"] == first["sim_box:A"].id
    again["sim_box:A@2021-11"].status = "closed"
    again["sim_box:A@2021-11"].outcome = "device_seized"
    session.flush()
    assert open_all("2021-12") == ["sim_box:A@2021-12"]
    latest = {c.reference: c for c in casework.case_queue(session, principal=ROOT)}
    assert latest["sim_box:A@2021-12"].subject["repeat_of"] == again["sim_box:A@2021-11"].id


def test_a_scan_result_is_switched_to_at_once_and_a_stopped_one_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import pandas as pd

    from telereg.core.settings import load_settings
    from telereg.domains.fraud import service

    settings = load_settings(data_dir=tmp_path)
    target = service.results_dir(settings, "2021-11")
    root = target.parent
    root.mkdir(parents=True)
    # A result stored before versions (a plain directory) is replaced by the first version.
    target.mkdir()
    pd.DataFrame({"line": ["old"]}).to_parquet(target / "suspects.parquet")
    (target / "summary.json").write_text('{"scan": 0}')

    def store(scan: int) -> None:
        frames = {"suspects": pd.DataFrame({"line": [f"l{scan}"]}), "cards": pd.DataFrame()}
        service._store(settings, "2021-11", frames, {"scan": scan})

    store(1)
    assert target.is_symlink()
    assert service.load_summary(settings, "2021-11") == {"scan": 1}
    store(2)
    assert list(service.load_result(settings, "2021-11", "suspects")["line"]) == ["l2"]
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == ["2021-11"]
    assert len(list(root.glob(".2021-11.*"))) == 1, "the version before is removed"

    # Stopped while writing its files: the month's result is the one before, untouched, and
    # the half-written version is never taken for a month.
    written = pd.DataFrame.to_parquet

    def stopped(frame: pd.DataFrame, path: object, *args: object, **kw: object) -> None:
        if str(path).endswith("cards.parquet"):
            raise KeyboardInterrupt
        written(frame, path, *args, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", stopped)
    with pytest.raises(KeyboardInterrupt):
        store(3)
    monkeypatch.undo()
    assert service.load_summary(settings, "2021-11") == {"scan": 2}
    assert list(service.load_result(settings, "2021-11", "suspects")["line"]) == ["l2"]
    (root / ".2021-11.x").mkdir()
    (root / ".2021-11.x" / "summary.json").write_text("{}")
    assert service.scanned_periods(settings) == ["2021-11"]
    # A day later the leftovers are swept by the next scan of the month.
    day_ago = target.lstat().st_mtime - 2 * 24 * 3600
    for leftover in root.glob(".2021-11.*"):
        if leftover.name != target.readlink().name:
            os.utime(leftover, (day_ago, day_ago))
    store(4)
    assert len(list(root.glob(".2021-11.*"))) == 1
    assert service.load_summary(settings, "2021-11") == {"scan": 4}


def test_the_model_s_reasons_name_what_it_learned_not_one_feature() -> None:
    # The confirmed lines call more *and* send no texts and use no data: calls per day
    # alone would separate them, but the model's reasons name the other signs too.
    rng = np.random.default_rng(11)
    history = pd.DataFrame(rng.gamma(2.0, 3.0, size=(600, len(FEATURES))), columns=list(FEATURES))
    history.loc[:59, "calls_per_day"] += 60
    history.loc[:59, ["sms", "data_days"]] = 0.0
    history["line"] = [f"L{i}" for i in range(600)]
    model = scoring.train(history, {f"L{i}" for i in range(60)})
    assert model is not None
    probability = model.probability(history)
    assert ((probability > 0) & (probability < 1)).all(), "calibrated, not 0 or 1"
    assert probability[:60].min() > 0.5 > probability[60:].max()
    reasons = model.explain(history.iloc[:60])
    named = {name for row in reasons for name, _ in row}
    assert {"calls_per_day", "sms", "data_days"} <= named
    assert all(weight > 0 for row in reasons for _, weight in row)


def test_callees_shared_by_chance_do_not_link_lines() -> None:
    from telereg.domains.fraud import rings

    pairs = pd.DataFrame(
        {
            "a": ["G1", "R1"],
            "b": ["G2", "R2"],
            # Two gateways dialling 500 numbers each from one list of 1,000 meet about 250
            # times by chance; two ring cards calling 20 numbers share 15 of them.
            "weight": [260, 15],
            "a_callees": [500, 20],
            "b_callees": [500, 20],
        }
    )
    kept = rings.significant_callees(pairs, universe=1000)
    assert list(zip(kept["a"], kept["b"], strict=True)) == [("R1", "R2")]
    # The universe is what the suspects called, after the numbers too many of them share.
    calls = ibis.memtable(
        pd.DataFrame(
            [("A", "X1"), ("A", "X2"), ("B", "X2"), ("B", "X3"), ("C", "X9")],
            columns=["caller", "callee"],
        )
    )
    assert rings.callee_universe(calls, ["A", "B"]) == 3
