"""What the build-out demo plants: a network that covers the corridors and key places,
except for chosen stretches and places, recorded as ground truth.

Operators build along railways and expressways: besides the sites placed by
population, China Mobile gets 700 MHz sites on every corridor, spaced so that
neighbours' predicted coverage overlaps, and a site next to every key place. A
few runs of corridor sites far from any other corridor are then left out (with
every other site near them), and so are the sites of a few remote key places;
those stretches and places are the planted gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree

from telereg.core.geo import to_metric
from telereg.domains.buildout.coverage import environment_of, sample_line
from telereg.domains.buildout.propagation import coverage_range_km
from telereg.reference.places import Corridor, KeyPlace
from telereg.reference.regions import RegionSet
from telereg.scenario.model import Province, Sites

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Radio:
    band: str
    height: float
    eirp: float


CORRIDOR_SITE = Radio("n28", 40.0, 63.0)  # 700 MHz reaches far along lines
PLACE_SITE = Radio("n41", 30.0, 60.0)
THRESHOLD_DBM = -105.0
#: general sites whose predicted reach comes this close to a planted gap are taken out
CLEARANCE_KM = 0.5
#: planted gaps and uncovered places lie at least this far from any other corridor
ISOLATION_KM = 30.0


@dataclass(frozen=True)
class NewSite:
    site_id: str
    lon: float
    lat: float
    band: str
    height: float
    eirp: float


def _county_of(regions: RegionSet, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    shapes = [c.geometry for c in regions.counties]
    tree = shapely.STRtree(shapes)
    points = shapely.points(lon, lat)
    codes = [""] * len(points)
    # Most points lie in a county, which an intersection finds fast; only the others (on
    # the border's far side) need the much slower search for the nearest county.
    inside = tree.query(points, predicate="intersects")
    for point_index, county_index in zip(inside[0], inside[1], strict=True):
        codes[point_index] = codes[point_index] or regions.counties[county_index].code
    outside = np.array([i for i, code in enumerate(codes) if not code], dtype=int)
    if len(outside):
        found = tree.query_nearest(points[outside], all_matches=False)
        for point_index, county_index in zip(found[0], found[1], strict=True):
            codes[outside[point_index]] = regions.counties[county_index].code
    return codes


def _reaches_km(regions: RegionSet, lon: np.ndarray, lat: np.ndarray, spec: Radio) -> np.ndarray:
    """The reach of a ``spec`` site at each point, by the environment of its county."""
    names = {c.code: c.name for c in regions.counties}
    counties = _county_of(regions, lon, lat)
    reach: np.ndarray = coverage_range_km(
        eirp_dbm=np.full(len(lon), spec.eirp),
        band=[spec.band] * len(lon),
        antenna_height_m=np.full(len(lon), spec.height),
        environment=[environment_of(names.get(county, "县")) for county in counties],
        threshold_dbm=THRESHOLD_DBM,
    )
    return reach


def corridor_sites(regions: RegionSet, corridor: Corridor) -> list[tuple[NewSite, float, float]]:
    """Sites on the corridor, each within reach of the next: (site, km along, range km)."""
    lon, lat, weight = sample_line(corridor, 100.0)
    along = np.concatenate([[0.0], np.cumsum(weight)[:-1]]) / 1000.0
    total = float(weight.sum()) / 1000.0
    # A site's reach at every point the sites may stand on, found at once: counties and
    # radio arithmetic are array work, which a point at a time would repeat thousands of times.
    reaches = _reaches_km(regions, lon, lat, CORRIDOR_SITE)
    urban = _urban_range()
    placed: list[tuple[NewSite, float, float]] = []
    position = 0.0
    while True:
        i = int(np.searchsorted(along, position, side="right") - 1)
        reach = float(reaches[i])
        site = NewSite(
            f"CMCR{corridor.corridor_id.replace('-', '')}{len(placed):04d}",
            round(float(lon[i]), 6),
            round(float(lat[i]), 6),
            CORRIDOR_SITE.band,
            CORRIDOR_SITE.height,
            CORRIDOR_SITE.eirp,
        )
        placed.append((site, float(along[i]), reach))
        if position >= total:
            break
        # The next site must reach back to where this one stops, even in a town.
        position = min(total, position + 1.5 * min(reach, urban))
    return placed


def _urban_range() -> float:
    (reach,) = coverage_range_km(
        eirp_dbm=np.array([CORRIDOR_SITE.eirp]),
        band=[CORRIDOR_SITE.band],
        antenna_height_m=np.array([CORRIDOR_SITE.height]),
        environment=[environment_of("区")],
        threshold_dbm=THRESHOLD_DBM,
    )
    return float(reach)


def _gap_run(placed: list[tuple[NewSite, float, float]], start: int) -> list[int]:
    """Consecutive sites from ``start`` whose absence leaves at least 1 km unreached."""
    end = start
    while end + 1 < len(placed) - 1:
        before, after = placed[start - 1], placed[end + 1]
        if after[1] - after[2] - (before[1] + before[2]) >= 1.0:
            return list(range(start, end + 1))
        end += 1
    return []


def _distance_km(lon: float, lat: float, line: shapely.Geometry) -> float:
    nearest = shapely.shortest_line(shapely.Point(lon, lat), line).coords[-1]
    nearest = shapely.Point(nearest)
    return float(_GEOD.inv(lon, lat, nearest.x, nearest.y)[2]) / 1000.0


def plant(province: Province, corridors: list[Corridor], places: list[KeyPlace]) -> None:
    """Add corridor and key-place sites to the province, leaving out the planted gaps."""
    rng = province.rng("buildout.plant")
    regions = province.regions
    new_sites: list[NewSite] = []
    gaps: list[dict[str, Any]] = []
    gap_points: list[tuple[float, float]] = []
    candidates = [c for c in corridors if len(c.geometry.coords) >= 4]
    chosen = set(rng.choice(len(candidates), size=min(5, len(candidates)), replace=False).tolist())
    for index, corridor in enumerate(corridors):
        placed = corridor_sites(regions, corridor)
        others = shapely.union_all([c.geometry for c in corridors if c is not corridor])
        skip: set[int] = set()
        if corridor in [candidates[i] for i in chosen] and len(placed) > 6:
            for start in rng.permutation(range(2, len(placed) - 3)):
                run = _gap_run(placed, int(start))
                if run and all(
                    _distance_km(placed[i][0].lon, placed[i][0].lat, others) > ISOLATION_KM
                    for i in run
                ):
                    skip = set(run)
                    before, after = placed[run[0] - 1], placed[run[-1] + 1]
                    gaps.append(
                        {
                            "corridor_id": corridor.corridor_id,
                            "start_km": round(before[1] + before[2], 3),
                            "end_km": round(after[1] - after[2], 3),
                        }
                    )
                    gap_points += _stretch_points(corridor, before[1], after[1])
                    break
        del index
        new_sites += [site for i, (site, _, _) in enumerate(placed) if i not in skip]
    all_lines = shapely.union_all([c.geometry for c in corridors])
    remote = [
        p
        for p in places
        if p.category in ("scenic", "university")
        and _distance_km(p.geometry.x, p.geometry.y, all_lines) > ISOLATION_KM
    ]
    dark = (
        {p.place_id for p in rng.permutation(np.array(remote, dtype=object))[:3]}
        if remote
        else set()
    )
    for n, place in enumerate(places):
        if place.place_id in dark:
            gap_points.append((place.geometry.x, place.geometry.y))
            continue
        new_sites.append(
            NewSite(
                f"CMKP{n:04d}",
                round(place.geometry.x + 0.0008, 6),
                round(place.geometry.y, 6),
                PLACE_SITE.band,
                PLACE_SITE.height,
                PLACE_SITE.eirp,
            )
        )
    sites = province.sites
    keep_general = _out_of_reach(sites, regions, gap_points)
    province.sites = _extend(_subset(sites, keep_general), new_sites, regions)
    province.plant("buildout", "corridor_gaps", gaps)
    province.plant("buildout", "uncovered_places", sorted(dark))
    province.plant("buildout", "general_sites_removed", int((~keep_general).sum()))


def _stretch_points(corridor: Corridor, from_km: float, to_km: float) -> list[tuple[float, float]]:
    """Points every 200 m along the corridor between two kilometre marks."""
    lon, lat, weight = sample_line(corridor, 200.0)
    along = np.concatenate([[0.0], np.cumsum(weight)[:-1]]) / 1000.0
    inside = (along >= from_km) & (along <= to_km)
    return list(zip(lon[inside].tolist(), lat[inside].tolist(), strict=True))


def _out_of_reach(
    sites: Sites, regions: RegionSet, points: list[tuple[float, float]]
) -> np.ndarray:
    """Which sites cannot reach any of ``points`` (their predicted range plus a clearance).

    A sector never reaches further than its boresight, so the range is an upper bound.
    """
    keep = np.ones(len(sites), dtype=bool)
    if not points or len(sites) == 0:
        return keep
    names = {c.code: c.name for c in regions.counties}
    reach_km = coverage_range_km(
        eirp_dbm=sites.eirp_dbm,
        band=[str(b) for b in sites.band],
        antenna_height_m=sites.antenna_height_m,
        environment=[environment_of(names.get(str(c), "县")) for c in sites.county_code],
        threshold_dbm=THRESHOLD_DBM,
    )
    project = to_metric(regions.utm_zone)
    px, py = project.transform([p[0] for p in points], [p[1] for p in points])
    sx, sy = project.transform(sites.lon, sites.lat)
    distance_m, _ = cKDTree(np.column_stack([px, py])).query(np.column_stack([sx, sy]))
    keep &= distance_m / 1000.0 > reach_km + CLEARANCE_KM
    return keep


def _subset(sites: Sites, keep: np.ndarray) -> Sites:
    return Sites(**{name: getattr(sites, name)[keep] for name in Sites.__dataclass_fields__})


def _extend(sites: Sites, extra: list[NewSite], regions: RegionSet) -> Sites:
    if not extra:
        return sites
    lon = np.array([s.lon for s in extra])
    lat = np.array([s.lat for s in extra])
    counties = _county_of(regions, lon, lat)
    parents = {c.code: c.parent or "" for c in regions.counties}
    n = len(extra)
    added = {
        "site_id": np.array([s.site_id for s in extra]),
        "operator": np.full(n, "CMCC"),
        "technology": np.full(n, "5G"),
        "band": np.array([s.band for s in extra]),
        "lon": lon,
        "lat": lat,
        "city_code": np.array([parents[c] for c in counties]),
        "county_code": np.array(counties),
        "antenna_height_m": np.array([s.height for s in extra]),
        "eirp_dbm": np.array([s.eirp for s in extra]),
        "in_service_from": np.zeros(n, dtype=int),
        "shared_tower": np.ones(n, dtype=bool),
        "beidou": np.ones(n, dtype=bool),
        "omni": np.ones(n, dtype=bool),
    }
    current = {name: getattr(sites, name) for name in Sites.__dataclass_fields__}
    return Sites(**{name: np.concatenate([current[name], added[name]]) for name in current})
