"""Coverage of corridors and key places by the sites in service.

Each site covers the points where its predicted RSRP (``propagation``) is at
least the threshold. Points are tested against nearby sites only: a k-d tree
over the sites in metres (UTM) yields candidate pairs within the largest range,
and each pair is kept when the distance is within that site's range towards the
point (its sector pattern taken into account). Corridors are sampled every
``step_m`` metres along the geodesic; a sample stands for the stretch up to the
next one, so shares are of geodesic length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt
from pyproj import Geod
from scipy.spatial import cKDTree

from telereg.core.geo import to_metric
from telereg.domains.buildout.propagation import (
    BANDS,
    Environment,
    coverage_range_km,
    loss_coefficients,
    sector_gain_db,
)
from telereg.reference.places import Corridor, KeyPlace
from telereg.reference.regions import RegionSet

FloatArray = npt.NDArray[np.float64]
_GEOD = Geod(ellps="WGS84")
DEFAULT_STEP_M = 50.0
MIN_GAP_M = 500.0


@dataclass(frozen=True)
class SiteLayer:
    """Sites in service with what the coverage test needs, as column arrays."""

    site_id: npt.NDArray[np.str_]
    operator: npt.NDArray[np.str_]
    technology: npt.NDArray[np.str_]
    lon: FloatArray
    lat: FloatArray
    x: FloatArray
    y: FloatArray
    #: range in metres on the sector boresight
    range_m: FloatArray
    #: path-loss slope B (dB per decade of distance), to scale the range off boresight
    slope: FloatArray
    #: sector azimuths per site (degrees), NaN-padded; all NaN for an omnidirectional site
    azimuths: FloatArray

    def select(self, mask: npt.NDArray[np.bool_]) -> SiteLayer:
        idx = np.flatnonzero(mask)
        return SiteLayer(
            site_id=self.site_id[idx],
            operator=self.operator[idx],
            technology=self.technology[idx],
            lon=self.lon[idx],
            lat=self.lat[idx],
            x=self.x[idx],
            y=self.y[idx],
            range_m=self.range_m[idx],
            slope=self.slope[idx],
            azimuths=self.azimuths[idx],
        )

    def __len__(self) -> int:
        return len(self.site_id)


def environment_of(county_name: str) -> Environment:
    """Districts (区) are urban, county-level cities (市) suburban, counties (县) rural."""
    if county_name.endswith("区"):
        return Environment.URBAN
    if county_name.endswith("市"):
        return Environment.SUBURBAN
    return Environment.RURAL


def site_layer(
    rows: dict[str, list[object]],
    regions: RegionSet,
    *,
    threshold_dbm: float,
    margin_db: float,
) -> SiteLayer:
    """Sites (lake rows of the ``sites`` dataset, in service) with their predicted ranges."""
    lon = np.asarray(rows["longitude"], dtype=float)
    lat = np.asarray(rows["latitude"], dtype=float)
    names = {c.code: c.name for c in regions.counties}
    environment = [environment_of(names.get(str(code), "县")) for code in rows["county_code"]]
    bands = [str(b) for b in rows["band"]]
    heights = np.asarray(rows["antenna_height_m"], dtype=float)
    ranges_km = coverage_range_km(
        eirp_dbm=np.asarray(rows["eirp_dbm"], dtype=float),
        band=bands,
        antenna_height_m=heights,
        environment=environment,
        threshold_dbm=threshold_dbm,
        margin_db=margin_db,
    )
    slopes = np.asarray(
        [
            loss_coefficients(BANDS[b].centre_mhz, float(h), e)[1]
            for b, h, e in zip(bands, heights, environment, strict=True)
        ]
    )
    x, y = to_metric(regions.utm_zone).transform(lon, lat)
    sectors = [
        [float(a) for a in str(text).split(";")] if text else []
        for text in rows.get("azimuths", [None] * len(lon))
    ]
    azimuths = np.full((len(lon), max((len(a) for a in sectors), default=0) or 1), np.nan)
    for i, values in enumerate(sectors):
        azimuths[i, : len(values)] = values
    return SiteLayer(
        site_id=np.asarray(rows["site_id"], dtype=str),
        operator=np.asarray(rows["operator"], dtype=str),
        technology=np.asarray(rows["technology"], dtype=str),
        lon=lon,
        lat=lat,
        x=np.asarray(x),
        y=np.asarray(y),
        range_m=ranges_km * 1000.0,
        slope=slopes,
        azimuths=azimuths,
    )


def covered(points_x: FloatArray, points_y: FloatArray, sites: SiteLayer) -> npt.NDArray[np.bool_]:
    """Whether each point is within the predicted coverage of at least one site.

    Sites are grouped by range (each group's longest range at most 1.5 times its
    shortest), so a few far-reaching 700 MHz sites do not make every urban site
    look for points kilometres away.
    """
    result = np.zeros(len(points_x), dtype=bool)
    if len(sites) == 0 or len(points_x) == 0:
        return result
    points = cKDTree(np.column_stack([points_x, points_y]))
    order = np.argsort(sites.range_m)
    ranges = sites.range_m[order]
    start = 0
    while start < len(order):
        end = int(np.searchsorted(ranges, ranges[start] * 1.5, side="right"))
        group = order[start:end]
        start = end
        tree = cKDTree(np.column_stack([sites.x[group], sites.y[group]]))
        pairs = points.sparse_distance_matrix(
            tree, float(sites.range_m[group].max()), output_type="ndarray"
        )
        if len(pairs) == 0:
            continue
        point, site, distance = pairs["i"], group[pairs["j"]], pairs["v"]
        result[point[distance <= _reach(point, site, points_x, points_y, sites)]] = True
    return result


def _reach(
    point: npt.NDArray[np.int64],
    site: npt.NDArray[np.int64],
    points_x: FloatArray,
    points_y: FloatArray,
    sites: SiteLayer,
) -> FloatArray:
    """Each pair's site range towards its point, its best sector's gain taken into account."""
    reach = sites.range_m[site].copy()
    directional = ~np.isnan(sites.azimuths[site, 0])
    if directional.any():
        idx = np.flatnonzero(directional)
        bearing = np.degrees(
            np.arctan2(
                points_x[point[idx]] - sites.x[site[idx]], points_y[point[idx]] - sites.y[site[idx]]
            )
        )
        # The best sector towards the point sets the gain; padding sectors (NaN) never win.
        offsets = bearing[:, None] - sites.azimuths[site[idx]]
        gain = np.nanmax(np.where(np.isnan(offsets), -np.inf, sector_gain_db(offsets)), axis=1)
        reach[idx] *= 10.0 ** (gain / sites.slope[site[idx]])
    return reach


@dataclass(frozen=True)
class Stretch:
    """An uncovered stretch of a corridor, in kilometres from its start."""

    start_km: float
    end_km: float
    start_lon: float
    start_lat: float
    end_lon: float
    end_lat: float
    nearest_sites: list[tuple[str, float]] = field(default_factory=list)
    #: the stretch as a line (at most 50 points), for maps
    path: list[tuple[float, float]] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        return (self.end_km - self.start_km) * 1000.0


@dataclass(frozen=True)
class CorridorCoverage:
    corridor_id: str
    name: str
    kind: str
    length_km: float
    covered_km: float
    gaps: list[Stretch]

    @property
    def share(self) -> float:
        return self.covered_km / self.length_km if self.length_km else 0.0


def sample_line(corridor: Corridor, step_m: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points every ``step_m`` metres along the geodesic, with the length each one stands for."""
    coords = np.asarray(corridor.geometry.coords)
    lons: list[float] = []
    lats: list[float] = []
    weights: list[float] = []
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(coords):
        _, _, length = _GEOD.inv(lon1, lat1, lon2, lat2)
        n = max(1, int(np.ceil(length / step_m)))
        inner = _GEOD.npts(lon1, lat1, lon2, lat2, n - 1) if n > 1 else []
        segment = [(lon1, lat1), *inner]
        lons += [p[0] for p in segment]
        lats += [p[1] for p in segment]
        weights += [length / n] * n
    return np.asarray(lons), np.asarray(lats), np.asarray(weights)


def corridor_coverage(
    corridor: Corridor,
    sites: SiteLayer,
    zone: int,
    *,
    step_m: float = DEFAULT_STEP_M,
    min_gap_m: float = MIN_GAP_M,
) -> CorridorCoverage:
    lon, lat, weight = sample_line(corridor, step_m)
    x, y = to_metric(zone).transform(lon, lat)
    inside = covered(np.asarray(x), np.asarray(y), sites)
    at_km = np.concatenate([[0.0], np.cumsum(weight)[:-1]]) / 1000.0
    gaps: list[Stretch] = []
    tree = cKDTree(np.column_stack([sites.x, sites.y])) if len(sites) else None
    edges = np.diff(np.concatenate([[0], (~inside).astype(int), [0]]))
    for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        end_km = at_km[end - 1] + weight[end - 1] / 1000.0
        if (end_km - at_km[start]) * 1000.0 < min_gap_m:
            continue
        nearest: list[tuple[str, float]] = []
        if tree is not None:
            mid = (start + end - 1) // 2
            distances, which = tree.query([x[mid], y[mid]], k=min(3, len(sites)))
            nearest = [
                (str(sites.site_id[j]), round(float(d) / 1000.0, 2))
                for d, j in zip(np.atleast_1d(distances), np.atleast_1d(which), strict=True)
            ]
        gaps.append(
            Stretch(
                start_km=round(float(at_km[start]), 3),
                end_km=round(float(end_km), 3),
                start_lon=float(lon[start]),
                start_lat=float(lat[start]),
                end_lon=float(lon[end - 1]),
                end_lat=float(lat[end - 1]),
                nearest_sites=nearest,
                path=[
                    (round(float(lon[i]), 5), round(float(lat[i]), 5))
                    for i in np.unique(np.linspace(start, end - 1, 50).astype(int))
                ],
            )
        )
    return CorridorCoverage(
        corridor_id=corridor.corridor_id,
        name=corridor.name,
        kind=corridor.kind,
        length_km=float(weight.sum()) / 1000.0,
        covered_km=float(weight[inside].sum()) / 1000.0,
        gaps=gaps,
    )


@dataclass(frozen=True)
class PlaceCoverage:
    place_id: str
    name: str
    category: str
    covered: bool


def key_place_coverage(places: list[KeyPlace], sites: SiteLayer, zone: int) -> list[PlaceCoverage]:
    points = [p.geometry.representative_point() for p in places]
    x, y = to_metric(zone).transform([p.x for p in points], [p.y for p in points])
    inside = covered(np.asarray(x, dtype=float), np.asarray(y, dtype=float), sites)
    return [
        PlaceCoverage(p.place_id, p.name, p.category, bool(c))
        for p, c in zip(places, inside, strict=True)
    ]


@dataclass(frozen=True)
class AreaCoverage:
    """Coverage of the region's area on an H3 grid, weighted by population where known."""

    resolution: int
    cells: int
    covered_cells: int
    population: float
    covered_population: float

    @property
    def area_share(self) -> float:
        return self.covered_cells / self.cells if self.cells else 0.0

    @property
    def population_share(self) -> float | None:
        """The share of the people living in covered cells; None where the region's
        population is not known (a share of nothing is not 0 %)."""
        return self.covered_population / self.population if self.population else None


@cache
def h3_grid(
    region_code: str, resolution: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Centres of the H3 cells covering the region, and the index of each cell's county."""
    import h3

    from telereg.reference.regions import load_regions

    regions = load_regions(region_code)
    lons: list[float] = []
    lats: list[float] = []
    owner: list[int] = []
    for index, county in enumerate(regions.counties):
        cells = h3.geo_to_cells(county.geometry.__geo_interface__, resolution)
        for cell in cells:
            lat, lon = h3.cell_to_latlng(cell)
            lons.append(lon)
            lats.append(lat)
            owner.append(index)
    return np.asarray(lons), np.asarray(lats), np.asarray(owner, dtype=np.int64)


def area_coverage(regions: RegionSet, sites: SiteLayer, *, resolution: int = 8) -> AreaCoverage:
    lon, lat, owner = h3_grid(regions.province.code, resolution)
    x, y = to_metric(regions.utm_zone).transform(lon, lat)
    inside = covered(np.asarray(x), np.asarray(y), sites)
    people = np.asarray([c.population or 0 for c in regions.counties], dtype=float)
    per_cell = people[owner] / np.maximum(np.bincount(owner, minlength=len(people))[owner], 1)
    return AreaCoverage(
        resolution=resolution,
        cells=len(lon),
        covered_cells=int(inside.sum()),
        population=float(per_cell.sum()),
        covered_population=float(per_cell[inside].sum()),
    )
