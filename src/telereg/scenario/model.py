"""The synthetic province every domain's scenario draws from.

One seed gives one province: its operators, their sites and cells at each
month, and subscribers with a home place. Domains turn this into the files
operators would send (``domains/<name>/synth.py``) and record what they
planted as ground truth, kept apart from the data and never ingested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from telereg.reference.regions import Region, RegionSet, load_regions


class Scale(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    PROVINCE = "province"


#: Share of the province's real volumes generated at each scale.
SCALE_FACTOR = {Scale.SMALL: 0.02, Scale.MEDIUM: 0.2, Scale.PROVINCE: 1.0}

#: 5G sites built by end-November 2021 (source figure), and 4G sites per 5G site.
FIVE_G_SITES_NOV_2021 = 33_000
FOUR_G_PER_FIVE_G = 1.6
#: Operators' shares of 5G sites (China Telecom and Unicom co-build and share).
OPERATOR_SHARES = {"CMCC": 0.46, "CTCC": 0.22, "CUCC": 0.22, "CBN": 0.10}
BANDS_5G = {"CMCC": ("n41", "n79"), "CTCC": ("n78",), "CUCC": ("n78",), "CBN": ("n28",)}
BANDS_4G = {
    "CMCC": ("B39", "B40", "B41", "B3", "B8"),
    "CTCC": ("B1", "B3", "B5"),
    "CUCC": ("B1", "B3", "B8"),
    "CBN": ("B3",),
}
PERIODS = ("2021-10", "2021-11")


@dataclass
class Sites:
    """Every site of every operator, as column arrays (one row per site and technology)."""

    site_id: npt.NDArray[np.str_]
    operator: npt.NDArray[np.str_]
    technology: npt.NDArray[np.str_]
    band: npt.NDArray[np.str_]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    city_code: npt.NDArray[np.str_]
    county_code: npt.NDArray[np.str_]
    antenna_height_m: npt.NDArray[np.float64]
    eirp_dbm: npt.NDArray[np.float64]
    #: month (index into PERIODS) from which the site is in service; len(PERIODS) = not yet
    in_service_from: npt.NDArray[np.int64]
    shared_tower: npt.NDArray[np.bool_]
    beidou: npt.NDArray[np.bool_]
    #: omnidirectional (no sector azimuths reported)
    omni: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.site_id)


@dataclass
class Province:
    """The generated province: geography, network and people, from one seed."""

    seed: int
    scale: Scale
    regions: RegionSet
    sites: Sites
    truth_dir: Path
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def factor(self) -> float:
        return SCALE_FACTOR[self.scale]

    def rng(self, purpose: str) -> np.random.Generator:
        """An independent random stream per purpose, so domains do not disturb each other."""
        return np.random.default_rng([self.seed, *purpose.encode()])

    def plant(self, domain: str, key: str, value: Any) -> None:
        """Record ground truth (written apart from the data, never ingested)."""
        self.truth.setdefault(domain, {})[key] = value

    def write_truth(self) -> Path:
        self.truth_dir.mkdir(parents=True, exist_ok=True)
        path = self.truth_dir / "truth.json"
        path.write_text(json.dumps(self.truth, ensure_ascii=False, indent=1, default=_plain))
        return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def points_in(
    region: Region, n: int, rng: np.random.Generator, *, spread: float = 0.35
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``n`` points inside ``region``, denser near its centre (towns cluster there)."""
    if n == 0:
        return np.empty(0), np.empty(0)
    minx, miny, maxx, maxy = region.geometry.bounds
    centre = region.geometry.representative_point()
    lon_out: list[npt.NDArray[np.float64]] = []
    lat_out: list[npt.NDArray[np.float64]] = []
    found = 0
    while found < n:
        want = (n - found) * 2 + 16
        lon = rng.normal(centre.x, (maxx - minx) * spread, want)
        lat = rng.normal(centre.y, (maxy - miny) * spread, want)
        inside = shapely.contains_xy(region.geometry, lon, lat)
        lon_out.append(lon[inside])
        lat_out.append(lat[inside])
        found += int(inside.sum())
    return np.concatenate(lon_out)[:n], np.concatenate(lat_out)[:n]


def build_sites(regions: RegionSet, scale: Scale, seed: int) -> Sites:
    """Sites placed by county population, in service month by month up to November 2021."""
    rng = np.random.default_rng([seed, 1])
    factor = SCALE_FACTOR[scale]
    counties = regions.counties
    weights = np.array([c.population or 1 for c in counties], dtype=float)
    weights /= weights.sum()
    columns: dict[str, list[Any]] = {k: [] for k in Sites.__dataclass_fields__}
    for operator, share in OPERATOR_SHARES.items():
        for technology, total in (
            # 3 % are still under construction in November (see below), so as many more are
            # generated: the sites in service then match the source's 33,000.
            ("5G", FIVE_G_SITES_NOV_2021 / 0.97 * share * factor),
            ("4G", FIVE_G_SITES_NOV_2021 * FOUR_G_PER_FIVE_G * share * factor),
        ):
            count = round(total)
            per_county = rng.multinomial(count, weights)
            for county, k in zip(counties, per_county, strict=True):
                lon, lat = points_in(county, int(k), rng)
                columns["lon"].extend(np.round(lon, 6))
                columns["lat"].extend(np.round(lat, 6))
                columns["county_code"].extend([county.code] * int(k))
                columns["city_code"].extend([county.parent or ""] * int(k))
            bands = BANDS_5G[operator] if technology == "5G" else BANDS_4G[operator]
            columns["band"].extend(rng.choice(bands, count))
            columns["operator"].extend([operator] * count)
            columns["technology"].extend([technology] * count)
            prefix = f"{operator[:2]}{technology[0]}"
            columns["site_id"].extend(f"{prefix}{i:06d}" for i in range(count))
            columns["antenna_height_m"].extend(np.round(rng.uniform(20, 45, count), 1))
            columns["eirp_dbm"].extend(
                np.round(rng.normal(60 if technology == "5G" else 56, 2, count), 1)
            )
            # 5G is still being built: about 4 % of November's sites came in November,
            # and 3 % are under construction (in service only after the last month).
            stage = rng.random(count)
            later = len(PERIODS)
            columns["in_service_from"].extend(
                np.where(stage < 0.03, later, np.where(stage < 0.07, 1, 0))
                if technology == "5G"
                else np.zeros(count, dtype=int)
            )
            columns["shared_tower"].extend(rng.random(count) < 0.8)
            columns["omni"].extend(rng.random(count) < 0.1)
            columns["beidou"].extend(rng.random(count) < 0.6)
    return Sites(**{k: np.asarray(v) for k, v in columns.items()})


def build_province(*, region_code: str, scale: Scale, seed: int, out_dir: Path) -> Province:
    regions = load_regions(region_code)
    return Province(
        seed=seed,
        scale=scale,
        regions=regions,
        sites=build_sites(regions, scale, seed),
        truth_dir=out_dir / "truth",
    )
