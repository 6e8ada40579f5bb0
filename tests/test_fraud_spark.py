"""The anti-fraud analyses give the same answers on DuckDB and on Spark local mode: line
features, card identity, ring links and the model's training labels."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from telereg.core.engine import connect, read_parquet_files
from telereg.core.settings import load_settings
from telereg.domains.fraud import cardbreak, rings
from telereg.domains.fraud.features import line_features, originated
from telereg.domains.fraud.service import training_labels
from tests.test_fraud import _calls, _received

# (Spark's start-up and local mode take a minute: with the slow tests, which CI runs too)
pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("fraud-spark")
    frames = {
        "calls": pd.concat([_calls(), _received(), _shared_callees()], ignore_index=True),
        "feedback": pd.DataFrame({"phone": ["G1"], "imei": [None]}, dtype="string"),
        "cells": pd.DataFrame(
            {
                "operator": ["CMCC", "CMCC"],
                "cell_id": ["C1", "C2"],
                "longitude": [112.0, 112.0],
                "latitude": [37.0, 37.09],
                "city_code": ["140100", "140200"],
            }
        ),
        "sms": pd.DataFrame({"sender": ["P"], "receiver": ["F"]}),
        "data": pd.DataFrame({"phone": ["P"], "day": [date(2021, 11, 1)]}),
        "tacs": pd.DataFrame({"tac": ["86201803"]}),
        "subs": pd.DataFrame(
            {
                "phone": ["G1", "G2", "G3", "P"],
                "home_city": ["140100", "140100", "140200", "140200"],
                "id_number": ["A", "B", "C", "D"],
            }
        ),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = str(root / f"{name}.parquet")
        frame.to_parquet(paths[name], index=False, coerce_timestamps="us")  # as the lake has it
    return paths


def _shared_callees() -> pd.DataFrame:
    """G1 and G2 each call the same two numbers once more (a ring's shared victims)."""
    calls = _calls()
    extra = calls[calls["caller"].isin(["G1", "G2"])].groupby("caller").head(2).copy()
    extra["callee"] = ["VICTIM-1", "VICTIM-2"] * 2
    return extra


def _backends() -> list[object]:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    return [
        connect(load_settings(engine=engine, spark_master="local[2]"))
        for engine in ("duckdb", "pyspark")
    ]


def _both(
    expression_of, files: dict[str, str], order: tuple[str, ...] = ("operator", "line")
) -> list[pd.DataFrame]:
    """The result on each engine; ``expression_of`` gives an expression or a context of one."""
    results = []
    for backend in _backends():
        tables = {name: read_parquet_files(backend, [path]) for name, path in files.items()}
        made = expression_of(tables)
        context = made if hasattr(made, "__enter__") else contextlib.nullcontext(made)
        with context as expr:
            frame = backend.execute(expr).reset_index(drop=True)
        results.append(frame.sort_values(list(order)).reset_index(drop=True))
    return results


def test_line_features_agree(files: dict[str, str]) -> None:
    duck, spark = _both(
        lambda t: line_features(
            t["calls"],
            t["cells"],
            t["sms"],
            t["data"],
            t["tacs"],
            home_province="140000",
            mid_latitude=37.0,
        ),
        files,
    )
    assert len(duck) == 4
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False, atol=1e-6)


def test_card_identity_agrees(files: dict[str, str]) -> None:
    duck, spark = _both(
        lambda t: cardbreak.line_identity(originated(t["calls"]), t["cells"], t["subs"]), files
    )
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
    by_line = duck.set_index("line")
    assert by_line.loc["G1", "imei_identities"] == 3  # one port IMEI, three ID numbers
    assert not by_line.loc["G1", "first_day_away"]  # C1 is in 140100, where G1 was registered
    assert by_line.loc["G3", "first_day_away"]


def test_ring_links_agree(files: dict[str, str]) -> None:
    suspects = ["G1", "G2", "G3", "P"]
    callees = _both(
        lambda t: rings.shared_callees(originated(t["calls"]), suspects), files, ("a", "b")
    )
    pd.testing.assert_frame_equal(*callees, check_dtype=False)
    assert callees[0][["a", "b", "weight"]].values.tolist() == [["G1", "G2", 2]]
    handsets = _both(
        lambda t: rings.shared_handsets(originated(t["calls"]), suspects), files, ("a", "b")
    )
    pd.testing.assert_frame_equal(*handsets, check_dtype=False)
    assert handsets[0][["a", "b"]].values.tolist() == [["G1", "G2"], ["G1", "G3"], ["G2", "G3"]]


def test_training_labels_agree(files: dict[str, str]) -> None:
    labels = []
    for backend in _backends():
        calls = originated(read_parquet_files(backend, [files["calls"]]))
        feedback = read_parquet_files(backend, [files["feedback"]])
        labels.append(training_labels(calls, feedback))
    assert labels[0] == labels[1]
    # G1 confirmed; the other ports of its gateway are left out, not taught as clean.
    assert labels[0] == ({"G1"}, {"G2", "G3"})
