"""Coordinates and reference geography."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from telereg.core.geo import gcj02_to_wgs84, geodesic_length_m, wgs84_to_gcj02
from telereg.reference.places import shipped_corridors, shipped_key_places
from telereg.reference.regions import Level, load_regions

# Published reference pairs for the GCJ-02 offset (WGS-84 → GCJ-02), as used by the
# widely used coordinate-transform libraries' own tests.
# The second comes from an implementation with slightly different constants, so it is
# held to 1e-6 degrees (about 10 cm) rather than 1e-8.
REFERENCE = [
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164), 1e-8),
    ((116.0, 40.0), (116.006141221789, 40.001213650174), 1e-6),
]


@pytest.mark.parametrize(("wgs", "gcj", "tolerance"), REFERENCE)
def test_gcj02_matches_published_reference_points(wgs, gcj, tolerance) -> None:
    lon, lat = wgs84_to_gcj02(np.array([wgs[0]]), np.array([wgs[1]]))
    assert lon[0] == pytest.approx(gcj[0], abs=tolerance)
    assert lat[0] == pytest.approx(gcj[1], abs=tolerance)
    back_lon, back_lat = gcj02_to_wgs84(np.array([gcj[0]]), np.array([gcj[1]]))
    assert back_lon[0] == pytest.approx(wgs[0], abs=1e-7)
    assert back_lat[0] == pytest.approx(wgs[1], abs=1e-7)


@given(lon=st.floats(73.5, 135.0), lat=st.floats(18.0, 53.5))
def test_gcj02_round_trip_within_a_centimetre(lon: float, lat: float) -> None:
    g_lon, g_lat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert abs(w_lon[0] - lon) < 1e-7
    assert abs(w_lat[0] - lat) < 1e-7


def test_points_outside_china_are_not_shifted() -> None:
    lon, lat = wgs84_to_gcj02(np.array([2.35]), np.array([48.85]))
    assert (lon[0], lat[0]) == (2.35, 48.85)


def test_geodesic_length_agrees_with_pyproj() -> None:
    lon = np.array([112.55, 112.6, 113.3])
    lat = np.array([37.87, 38.4, 40.08])
    expected = Geod(ellps="WGS84").line_length(lon, lat)
    assert geodesic_length_m(lon, lat) == pytest.approx(expected)


def test_shanxi_regions() -> None:
    shanxi = load_regions("140000")
    assert shanxi.province.name == "山西省"
    assert len(shanxi.cities) == 11
    assert len(shanxi.counties) == 117
    assert shanxi.province.population == 34_915_616
    assert 150_000 < shanxi.province.area_km2 < 160_000
    taiyuan = shanxi.region("140100")
    assert taiyuan.name_en == "Taiyuan"
    assert not taiyuan.population_estimated
    # County figures of the census, shipped, except six with no published figure found.
    estimated = {c.code for c in shanxi.counties if c.population_estimated}
    assert estimated == {"140212", "140223", "140521", "140522", "140524", "140827"}
    assert shanxi.region("140105").population == 1_357_242  # 小店区
    assert shanxi.region("140827").population == 197_772, "垣曲县: what Yuncheng's others leave"
    # counties of a city add up to the city's census figure
    for city in shanxi.cities:
        assert sum(c.population or 0 for c in shanxi.counties_of(city.code)) == pytest.approx(
            city.population, abs=10
        )
    # the display copy is lighter but covers the same area
    assert len(taiyuan.display.wkt) < len(taiyuan.geometry.wkt)
    assert taiyuan.display.area == pytest.approx(taiyuan.geometry.area, rel=0.02)
    geojson = shanxi.geojson(Level.CITY)
    assert len(geojson["features"]) == 11


def test_shipped_corridors_and_key_places_lie_in_the_province() -> None:
    shanxi = load_regions("140000").province.geometry.buffer(0.05)
    corridors = shipped_corridors("140000")
    assert {c.corridor_id for c in corridors} >= {"HSR-DX", "HSR-ST", "HSR-ZT", "G5", "G20", "G55"}
    total_km = sum(geodesic_length_m(*np.asarray(c.geometry.coords).T) for c in corridors) / 1000
    assert total_km > 3000
    places = shipped_key_places("140000")
    assert {p.category for p in places} == {"hospital", "university", "scenic", "transport"}
    assert all(shanxi.contains(p.geometry) for p in places)
    assert shipped_corridors("130000") == []


def test_population_figures_put_into_a_region_that_ships_none() -> None:
    from telereg.reference.regions import with_population

    hebei = load_regions("130000")
    assert hebei.province.population is None, "no population file ships for Hebei"
    city = hebei.cities[0]
    members = hebei.counties_of(city.code)
    figures = {m.code: 100_000 + i for i, m in enumerate(members)}
    given = with_population(hebei, figures, source="县级统计公报 (2020)")
    assert given.by_code[city.code].population == sum(figures.values())
    assert not given.by_code[city.code].population_estimated
    assert all(not given.by_code[m.code].population_estimated for m in members)
    assert given.by_code[hebei.cities[1].code].population is None
    assert given.province.population is None, "not every city is known"
    assert given.population_source == "县级统计公报 (2020)"
    # All cities known: the province is their sum, and the rest of a city is shared.
    everything = {c.code: 1_000_000 for c in hebei.cities} | {members[0].code: 400_000}
    full = with_population(hebei, everything, source="x")
    assert full.province.population == 1_000_000 * len(hebei.cities)
    rest = [full.by_code[m.code] for m in members[1:]]
    assert all(r.population_estimated for r in rest)
    assert abs(sum(r.population or 0 for r in rest) - 600_000) <= len(rest)
    assert with_population(hebei, {}, source="x") is hebei
