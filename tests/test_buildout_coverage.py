"""Propagation model against hand-computed values, and coverage properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString

from telereg.domains.buildout.coverage import (
    SiteLayer,
    corridor_coverage,
    covered,
    sample_line,
)
from telereg.domains.buildout.propagation import (
    BANDS,
    Environment,
    coverage_range_km,
    path_loss_db,
    rsrp_dbm,
    sector_gain_db,
)
from telereg.reference.places import Corridor

# Expected values worked out by hand from the published formulas (see propagation.py).
CASES = [
    # COST-231 Hata, 1842.5 MHz, hb 30 m, hm 1.5 m, medium city (C = 0)
    (1842.5, 30.0, Environment.URBAN, 1.0, 136.540),
    (1842.5, 30.0, Environment.URBAN, 3.0, 153.346),
    # Okumura-Hata 780 MHz, hb 40 m, 5 km; and with the open-area correction
    (780.0, 40.0, Environment.URBAN, 5.0, 147.106),
    (780.0, 40.0, Environment.RURAL, 5.0, 119.197),
    # 38.901 UMa NLOS, 3.5 GHz, 500 m
    (3500.0, 30.0, Environment.URBAN, 0.5, 129.897),
    # 38.901 RMa NLOS, 3.5 GHz, hBS 30 m, W 20 m, h 5 m, 2 km
    (3500.0, 30.0, Environment.RURAL, 2.0, 143.774),
]


@pytest.mark.parametrize(("f", "hb", "env", "d", "expected"), CASES)
def test_path_loss_matches_hand_computed_values(f, hb, env, d, expected) -> None:
    assert path_loss_db(f, hb, env, d) == pytest.approx(expected, abs=0.01)


def test_range_is_where_rsrp_meets_the_threshold() -> None:
    band = BANDS["n78"]
    (distance,) = coverage_range_km(
        eirp_dbm=np.array([60.0]),
        band=["n78"],
        antenna_height_m=np.array([30.0]),
        environment=[Environment.URBAN],
        threshold_dbm=-105.0,
    )
    at_edge = rsrp_dbm(60.0, band, path_loss_db(band.centre_mhz, 30.0, Environment.URBAN, distance))
    assert at_edge == pytest.approx(-105.0, abs=1e-6)
    (with_margin,) = coverage_range_km(
        eirp_dbm=np.array([60.0]),
        band=["n78"],
        antenna_height_m=np.array([30.0]),
        environment=[Environment.URBAN],
        threshold_dbm=-105.0,
        margin_db=6.0,
    )
    assert with_margin < distance


def test_lower_bands_reach_further() -> None:
    ranges = coverage_range_km(
        eirp_dbm=np.array([60.0, 60.0]),
        band=["n28", "n78"],
        antenna_height_m=np.array([30.0, 30.0]),
        environment=[Environment.RURAL] * 2,
        threshold_dbm=-105.0,
    )
    assert ranges[0] > ranges[1]


def test_sector_pattern() -> None:
    assert sector_gain_db(np.array([0.0]))[0] == 0.0
    assert sector_gain_db(np.array([32.5]))[0] == pytest.approx(-3.0)
    assert sector_gain_db(np.array([180.0]))[0] == -30.0
    assert sector_gain_db(np.array([-350.0]))[0] == sector_gain_db(np.array([10.0]))[0]


def _layer(x: list[float], y: list[float], range_m: float = 1000.0) -> SiteLayer:
    n = len(x)
    return SiteLayer(
        site_id=np.array([f"S{i}" for i in range(n)]),
        operator=np.array(["CMCC"] * n),
        technology=np.array(["5G"] * n),
        lon=np.zeros(n),
        lat=np.zeros(n),
        x=np.asarray(x, dtype=float),
        y=np.asarray(y, dtype=float),
        range_m=np.full(n, range_m),
        slope=np.full(n, 35.0),
        azimuths=np.full((n, 1), np.nan),
    )


coords = st.lists(st.floats(0, 20_000), min_size=1, max_size=30)


@settings(max_examples=50, deadline=None)
@given(xs=coords, ys=coords, extra=st.tuples(st.floats(0, 20_000), st.floats(0, 20_000)))
def test_adding_a_site_never_lowers_coverage(xs, ys, extra) -> None:
    n = min(len(xs), len(ys))
    points_x = np.linspace(0, 20_000, 200)
    points_y = np.full(200, 10_000.0)
    before = covered(points_x, points_y, _layer(xs[:n], ys[:n]))
    after = covered(points_x, points_y, _layer([*xs[:n], extra[0]], [*ys[:n], extra[1]]))
    assert np.all(after >= before)


def test_no_sites_no_coverage() -> None:
    assert not covered(np.array([0.0, 1.0]), np.array([0.0, 1.0]), _layer([], [])).any()


def test_sector_gain_shortens_the_reach_behind_a_sector() -> None:
    layer = _layer([0.0], [0.0], range_m=1000.0)
    facing_north = SiteLayer(**{**layer.__dict__, "azimuths": np.array([[0.0]])})
    ahead, behind = covered(np.array([0.0, 0.0]), np.array([900.0, -900.0]), facing_north)
    assert ahead
    assert not behind


def test_samples_cover_the_geodesic_length() -> None:
    line = Corridor(
        "T", "测试", "test", "hsr", LineString([(112.0, 37.0), (112.3, 37.4), (112.9, 37.5)]), "t"
    )
    _, _, weights = sample_line(line, 50.0)
    expected = Geod(ellps="WGS84").line_length([112.0, 112.3, 112.9], [37.0, 37.4, 37.5])
    assert weights.sum() == pytest.approx(expected, rel=1e-9)
    assert weights.max() <= 50.0


def test_a_gap_is_reported_with_its_kilometres() -> None:
    from telereg.core.geo import to_metric

    line = Corridor("T", "测试", "test", "hsr", LineString([(112.0, 37.0), (112.2, 37.0)]), "t")
    lon = np.array([112.0, 112.03, 112.06, 112.14, 112.17, 112.2])
    x, y = to_metric(49).transform(lon, np.full(len(lon), 37.0))
    layer = _layer(list(x), list(y), range_m=1400.0)
    result = corridor_coverage(line, layer, 49)
    assert len(result.gaps) == 1
    gap = result.gaps[0]
    # sites at 0.06° and 0.14° cover to ±1.4 km; 0.01° of longitude at 37° N is about 889 m
    assert gap.start_km == pytest.approx(0.06 * 88.9 + 1.4, abs=0.1)
    assert gap.end_km == pytest.approx(0.14 * 88.9 - 1.4, abs=0.1)
    assert result.share < 1.0


def test_coverage_through_cli_api_and_page(tmp_path) -> None:
    """The small demo's sites, read back as coverage by the CLI, the API and the page."""
    import json
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from telereg import registry
    from telereg.app import create_app
    from telereg.core import accounts
    from telereg.core.db import session_scope
    from telereg.core.settings import load_settings
    from telereg.scenario.demo import prepare
    from telereg.scenario.model import Scale
    from telereg.scenario.runner import run_scenario
    from tests.conftest import PASSWORD, ROOT

    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=3,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "telereg",
            "buildout",
            "coverage",
            "--json",
            "--data-dir",
            str(settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["period"] == "2021-11"
    assert {c["corridor_id"] for c in report["corridors"]} >= {"HSR-DX", "G5"}
    for corridor in report["corridors"]:
        assert 0.0 <= corridor["share"]["ANY"] <= 1.0
        for operator in report["operators"]:
            assert corridor["share"][operator] <= corridor["share"]["ANY"] + 1e-9
    with session_scope(settings) as session:
        accounts.create_user(
            session, principal=ROOT, username="vic", role="viewer", password=PASSWORD
        )
        token = accounts.issue_token(session, principal=ROOT, username="vic").token
        accounts.create_user(
            session,
            principal=ROOT,
            username="lee",
            role="liaison",
            agency="POLICE-AF",
            password=PASSWORD,
        )
        liaison = accounts.issue_token(session, principal=ROOT, username="lee").token
    client = TestClient(create_app(settings))
    api = client.get("/api/v1/buildout/coverage", headers={"Authorization": f"Bearer {token}"})
    assert api.json()["corridors"] == report["corridors"], "CLI and API give the same numbers"
    assert (
        client.get(
            "/api/v1/buildout/coverage", headers={"Authorization": f"Bearer {liaison}"}
        ).status_code
        == 403
    )
    sites = client.get(
        "/api/v1/buildout/sites", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert sum(c["sites"] for c in sites["five_g_per_10k"]) > 500
    assert sites["counties"] > 100
    assert sites["counties_estimated"] == 6, "the counties with no census figure shipped"
    assert "第七次全国人口普查" in sites["population_source"]
    # Ingested figures replace the shipped and estimated ones in the density and the
    # population-weighted area coverage (whose cached result must not outlive them).
    before = {c["code"]: c for c in sites["five_g_per_10k"]}
    area_before = api.json()["area"]["population_share"]
    from telereg.ingest.service import ingest_file
    from telereg.reference.regions import load_regions

    taiyuan = load_regions(settings.region_code).by_code["140100"]
    jincheng = [
        c.code
        for c in load_regions(settings.region_code).counties_of("140500")
        if c.population_estimated
    ]
    figures = tmp_path / "population.csv"
    figures.write_text(
        "region_code,population,year,source\n"
        f"140100,{2 * (taiyuan.population or 0)},2020,test\n"
        + "".join(f"{code},1,2020,test\n" for code in jincheng[1:])
    )
    ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract("population"),
        path=figures,
        filename=figures.name,
        operator="CA",
    )
    after = client.get("/api/v1/buildout/sites", headers={"Authorization": f"Bearer {token}"})
    density = {c["code"]: c for c in after.json()["five_g_per_10k"]}
    assert density["140100"]["per_10k"] == pytest.approx(before["140100"]["per_10k"] / 2, abs=0.01)
    assert density["140200"] == before["140200"]
    # Taiyuan's counties keep their census figures, so the city's new total leaves a share
    # to none; two of Jincheng's three estimates are now given.
    assert after.json()["counties_estimated"] == 6 - 2
    area_after = client.get(
        "/api/v1/buildout/coverage", headers={"Authorization": f"Bearer {token}"}
    ).json()["area"]["population_share"]
    assert area_after != area_before, "Jincheng's people now live elsewhere in the city"
    geojson = client.get("/api/v1/buildout/map/city", headers={"Authorization": f"Bearer {token}"})
    assert len(geojson.json()["features"]) == 11
    none = client.get(
        "/api/v1/buildout/coverage?period=2020-01", headers={"Authorization": f"Bearer {token}"}
    )
    assert none.status_code == 404
