"""Build-out coverage benchmark: a full-province recompute for 70,000 sites.

Corridor coverage (3,725 km of railways and expressways), key places and H3
(resolution 8) area coverage, timed, beside the naive method measured in the
same run: buffer every site by its range, union the discs, intersect the
corridors and the province. The two must agree within 0.2 percentage points.

    .venv/bin/python benchmarks/buildout_coverage.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely

from telereg.core.geo import to_metric
from telereg.domains.buildout.coverage import (
    SiteLayer,
    area_coverage,
    corridor_coverage,
    environment_of,
    h3_grid,
    key_place_coverage,
)
from telereg.domains.buildout.propagation import BANDS, coverage_range_km, loss_coefficients
from telereg.reference.places import shipped_corridors, shipped_key_places
from telereg.reference.regions import load_regions
from telereg.scenario.model import Scale, build_sites


def layer_of(regions, count: int, seed: int) -> SiteLayer:
    sites = build_sites(regions, Scale.PROVINCE, seed)
    pick = np.random.default_rng(seed).choice(len(sites), count, replace=False)
    names = {c.code: c.name for c in regions.counties}
    env = [environment_of(names[str(c)]) for c in sites.county_code[pick]]
    bands = [str(b) for b in sites.band[pick]]
    heights = sites.antenna_height_m[pick]
    ranges = coverage_range_km(
        eirp_dbm=sites.eirp_dbm[pick],
        band=bands,
        antenna_height_m=heights,
        environment=env,
        threshold_dbm=-105.0,
    )
    slopes = np.array(
        [
            loss_coefficients(BANDS[b].centre_mhz, float(h), e)[1]
            for b, h, e in zip(bands, heights, env, strict=True)
        ]
    )
    x, y = to_metric(regions.utm_zone).transform(sites.lon[pick], sites.lat[pick])
    return SiteLayer(
        site_id=sites.site_id[pick],
        operator=sites.operator[pick],
        technology=sites.technology[pick],
        lon=sites.lon[pick],
        lat=sites.lat[pick],
        x=np.asarray(x),
        y=np.asarray(y),
        range_m=ranges * 1000.0,
        slope=slopes,
        azimuths=np.full((count, 1), np.nan),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args()
    regions = load_regions("140000")
    corridors = shipped_corridors("140000")
    places = shipped_key_places("140000")
    layer = layer_of(regions, args.sites, args.seed)
    print(
        f"{len(layer):,} sites; ranges p5/p50/p95: "
        f"{np.percentile(layer.range_m / 1000, [5, 50, 95]).round(2)} km"
    )

    start = time.perf_counter()
    h3_grid("140000", 8)
    grid_s = time.perf_counter() - start
    start = time.perf_counter()
    lines = [corridor_coverage(c, layer, regions.utm_zone) for c in corridors]
    places_cov = key_place_coverage(places, layer, regions.utm_zone)
    area = area_coverage(regions, layer)
    ours_s = time.perf_counter() - start
    length = sum(r.length_km for r in lines)
    ours_share = sum(r.covered_km for r in lines) / length

    start = time.perf_counter()
    discs = shapely.buffer(shapely.points(layer.x, layer.y), layer.range_m, quad_segs=32)
    union = shapely.union_all(discs)
    project = to_metric(regions.utm_zone)
    projected_lines = [
        shapely.transform(
            c.geometry, lambda xy: np.column_stack(project.transform(xy[:, 0], xy[:, 1]))
        )
        for c in corridors
    ]
    covered_len = sum(shapely.intersection(line, union).length for line in projected_lines)
    naive_share = covered_len / sum(line.length for line in projected_lines)
    naive_area = (
        shapely.intersection(regions.province.projected, union).area
        / regions.province.projected.area
    )
    naive_places = sum(
        union.contains(shapely.Point(*project.transform(p.geometry.x, p.geometry.y)))
        for p in places
    )
    naive_s = time.perf_counter() - start

    print(f"corridors: {length:,.0f} km; key places: {len(places)}; H3 res 8 cells: {area.cells:,}")
    print(
        f"telereg (sampled every 50 m, k-d tree, H3): {ours_s:6.2f} s  (+ {grid_s:.2f} s to build "
        "the H3 grid once per process)"
    )
    print(f"naive (buffer, union, intersect):          {naive_s:6.2f} s")
    print(
        f"corridor coverage: telereg {ours_share * 100:.3f} %  naive {naive_share * 100:.3f} %  "
        f"difference {abs(ours_share - naive_share) * 100:.3f} pp"
    )
    print(
        f"area coverage:     telereg {area.area_share * 100:.3f} %  "
        f"naive {naive_area * 100:.3f} %  "
        f"difference {abs(area.area_share - naive_area) * 100:.3f} pp; population-weighted "
        f"{area.population_share * 100:.2f} %"
    )
    print(f"key places covered: telereg {sum(p.covered for p in places_cov)}  naive {naive_places}")
    ok = ours_s <= 10.0 and abs(ours_share - naive_share) * 100 <= 0.2
    print("target (≤ 10 s and within 0.2 pp of the naive method):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
