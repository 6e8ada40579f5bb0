"""The build-out tabular analyses give the same answers on DuckDB and on Spark local mode."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.engine import connect, read_parquet_files
from telereg.core.settings import load_settings
from telereg.domains.buildout import analysis
from telereg.ingest import lake
from telereg.reference.regions import load_regions
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario
from tests.conftest import ROOT

# (Spark's start-up and local mode take a minute: with the slow tests, which CI runs too)
pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("spark") / "var")
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
        return {
            name: [str(f) for f in lake.current_files(session, settings, name, periods=periods)]
            for name, periods in (
                ("sites", ["2021-11"]),
                ("fibre", ["2021-11"]),
                ("universal_service", None),
            )
        }


def _both(expression_of, files):
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    results = []
    for engine in ("duckdb", "pyspark"):
        backend = connect(load_settings(engine=engine, spark_master="local[2]"))
        tables = {name: read_parquet_files(backend, paths) for name, paths in files.items()}
        frame = backend.execute(expression_of(tables)).reset_index(drop=True)
        results.append(frame.sort_values(list(frame.columns)).reset_index(drop=True))
    return results


def test_site_counts_and_density(files) -> None:
    regions = load_regions("140000")
    population = ibis.memtable(
        {
            "code": [c.code for c in regions.cities],
            "population": [c.population for c in regions.cities],
        }
    )
    duck, spark = _both(lambda t: analysis.site_counts(t["sites"]), files)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
    duck, spark = _both(lambda t: analysis.five_g_density(t["sites"], population), files)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)


def test_gigabit_projects_and_beidou(files) -> None:
    regions = load_regions("140000")
    county_city = ibis.memtable(
        {
            "county_code": [c.code for c in regions.counties],
            "city_code": [c.parent for c in regions.counties],
        }
    )
    duck, spark = _both(
        lambda t: analysis.gigabit_by_city(analysis.gigabit_by_county(t["fibre"]), county_city),
        files,
    )
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
    duck, spark = _both(lambda t: analysis.project_progress(t["universal_service"]), files)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
    duck, spark = _both(lambda t: analysis.beidou_share(t["sites"]), files)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
