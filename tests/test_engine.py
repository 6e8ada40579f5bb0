"""The same Ibis expression gives the same answer on DuckDB and on Spark local mode."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ibis import _

from telereg.core import engine
from telereg.core.engine import connect
from telereg.core.errors import EngineError
from telereg.core.settings import Settings, load_settings


def _write_calls(path: Path) -> tuple[Path, Path]:
    calls = pa.table(
        {
            "caller": ["a", "a", "a", "b", "b", "c", "c", "c", "c", "d"],
            "callee": ["x", "y", "x", "x", "z", "y", "y", "w", "x", "x"],
            "start_s": [10, 50, 300, 20, 25, 5, 15, 600, 900, 7],
            "duration_s": [30, 12, 45, 8, 300, 61, 2, 19, 33, 120],
            "cell_id": ["c1", "c1", "c2", "c2", "c3", "c1", "c1", "c3", "c3", "c9"],
        }
    )
    cells = pa.table({"cell_id": ["c1", "c2", "c3"], "city": ["140100", "140100", "140200"]})
    pq.write_table(calls, path / "calls.parquet")
    pq.write_table(cells, path / "cells.parquet")
    return path / "calls.parquet", path / "cells.parquet"


def per_city_activity(calls: ibis.Table, cells: ibis.Table) -> ibis.Table:
    """Gaps between a line's calls (window lag), joined to cities, counted per city."""
    ordered = calls.mutate(
        gap_s=_.start_s - _.start_s.lag().over(ibis.window(group_by=_.caller, order_by=_.start_s))
    )
    located = ordered.join(cells, "cell_id")
    return located.group_by("city").agg(
        calls=_.count(),
        lines=_.caller.nunique(),
        callees=_.callee.nunique(),
        minutes=(_.duration_s.sum() / 60).round(3),
        mean_gap_s=_.gap_s.mean().round(3),
    )


def _run(settings: Settings, tmp_path: Path) -> pd.DataFrame:
    calls_path, cells_path = _write_calls(tmp_path)
    con = connect(settings)
    expr = per_city_activity(con.read_parquet(calls_path), con.read_parquet(cells_path))
    return con.execute(expr).sort_values("city").reset_index(drop=True)


def test_duckdb_result_matches_a_hand_count(tmp_path: Path) -> None:
    result = _run(load_settings(data_dir=tmp_path / "var"), tmp_path)
    taiyuan = result.set_index("city").loc["140100"]
    # c1/c2 calls: a×3, b×1 (x), c×2 → 6 calls, lines a b c, callees x y.
    assert taiyuan["calls"] == 6
    assert taiyuan["lines"] == 3
    assert taiyuan["callees"] == 2
    # gaps: a: -,40,250 ; b: - ; c: -,10  → mean of 40, 250, 10
    assert taiyuan["mean_gap_s"] == pytest.approx(100.0)
    assert "c9" not in set(result["city"]), "an unknown cell joins to nothing"


@pytest.mark.spark
def test_spark_gives_the_same_answer(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    duck = _run(load_settings(data_dir=tmp_path / "var"), tmp_path)
    spark = _run(
        load_settings(data_dir=tmp_path / "var", engine="pyspark", spark_master="local[2]"),
        tmp_path,
    )
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)


@pytest.mark.spark
def test_a_spark_that_cannot_start_is_one_line_and_the_jvm_keeps_to_its_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    settings = load_settings(data_dir=tmp_path / "var", engine="pyspark", spark_master="bogus")
    with pytest.raises(EngineError) as refused:
        connect(settings)
    message = str(refused.value)
    assert message.startswith("could not start Spark at bogus: Master must either be yarn")
    assert "\n" not in message
    printed = capfd.readouterr()
    assert "at org.apache.spark" not in printed.out + printed.err, "no JVM stack trace"
    assert "at org.apache.spark" in (settings.data_dir / engine.SPARK_LOG).read_text()


def test_a_computed_table_is_kept_for_the_context_and_dropped_after(tmp_path: Path) -> None:
    backend = connect(load_settings(data_dir=tmp_path / "var"))
    calls_path, _cells = _write_calls(tmp_path)
    calls = backend.read_parquet(calls_path)
    per_line = calls.group_by("caller").agg(n=calls.count())

    def kept() -> int:
        sql = "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'telereg_computed_%'"
        return int(backend.raw_sql(sql).fetchone()[0])

    with engine.computed(per_line) as table:
        assert kept() == 1
        counts = dict(table.execute()[["caller", "n"]].itertuples(index=False))
        assert counts == {"a": 3, "b": 2, "c": 4, "d": 1}
    assert kept() == 0
    with pytest.raises(RuntimeError), engine.computed(per_line):
        raise RuntimeError("a failing step")
    assert kept() == 0, "the table is dropped when the step inside fails too"
