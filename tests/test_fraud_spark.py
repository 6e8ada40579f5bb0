"""The anti-fraud line features give the same answers on DuckDB and on Spark local mode."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from telereg.core.engine import connect, read_parquet_files
from telereg.core.settings import load_settings
from telereg.domains.fraud import cardbreak
from telereg.domains.fraud.features import line_features, originated
from tests.test_fraud import _calls, _received

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("fraud-spark")
    frames = {
        "calls": pd.concat([_calls(), _received()], ignore_index=True),
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


def _both(expression_of, files: dict[str, str]) -> list[pd.DataFrame]:
    """The result on each engine; ``expression_of`` gives an expression or a context of one."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    results = []
    for engine in ("duckdb", "pyspark"):
        backend = connect(load_settings(engine=engine, spark_master="local[2]"))
        tables = {name: read_parquet_files(backend, [path]) for name, path in files.items()}
        made = expression_of(tables)
        context = made if hasattr(made, "__enter__") else contextlib.nullcontext(made)
        with context as expr:
            frame = backend.execute(expr).reset_index(drop=True)
        results.append(frame.sort_values(["operator", "line"]).reset_index(drop=True))
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
