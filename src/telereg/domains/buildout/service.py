"""Build-out operations the interfaces call: coverage of corridors and key places, site counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import ibis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg.core.engine import connect
from telereg.core.errors import NotFoundError
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.buildout import analysis
from telereg.domains.buildout.coverage import (
    SiteLayer,
    area_coverage,
    corridor_coverage,
    key_place_coverage,
    site_layer,
)
from telereg.geography.service import corridors, key_places, region
from telereg.ingest import lake
from telereg.ingest.models import Submission

ANY = "ANY"


@dataclass
class CoverageReport:
    period: str
    threshold_dbm: float
    operators: list[str]
    sites_in_service: dict[str, int]
    corridors: list[dict[str, Any]] = field(default_factory=list)
    key_places: list[dict[str, Any]] = field(default_factory=list)
    key_place_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    corridor_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    #: share of the region's area (H3 resolution 8) and of its population covered by any operator
    area: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_period(session: Session) -> str | None:
    period: str | None = session.scalar(
        select(func.max(Submission.period)).where(Submission.dataset == "sites", Submission.current)
    )
    return period


def _site_rows(session: Session, settings: Settings, period: str) -> dict[str, list[Any]]:
    files = lake.current_files(session, settings, "sites", periods=[period])
    if not files:
        raise NotFoundError(f"no site data for {period}; ingest the operators' sites first")
    rows: dict[str, list[Any]] = (
        duckdb.connect()
        .execute(
            "SELECT * FROM read_parquet(?) WHERE status = 'in_service'", [[str(f) for f in files]]
        )
        .to_arrow_table()
        .to_pydict()
    )
    return rows


def coverage(
    session: Session, *, settings: Settings, principal: Principal, period: str | None = None
) -> CoverageReport:
    """Corridor and key-place coverage per operator and by any operator, for a month."""
    principal.require(Permission.DASHBOARD_READ)
    period = period or latest_period(session)
    if period is None:
        raise NotFoundError("no site data yet; ingest the operators' sites first")
    regions = region(settings)
    layer = site_layer(
        _site_rows(session, settings, period),
        regions,
        threshold_dbm=settings.buildout_rsrp_threshold_dbm,
        margin_db=settings.buildout_fade_margin_db,
    )
    operators = sorted(set(layer.operator.tolist()))
    scopes: dict[str, SiteLayer] = {ANY: layer} | {
        op: layer.select(layer.operator == op) for op in operators
    }
    report = CoverageReport(
        period=period,
        threshold_dbm=settings.buildout_rsrp_threshold_dbm,
        operators=operators,
        sites_in_service={scope: len(sites) for scope, sites in scopes.items()},
    )
    lines = corridors(session, settings=settings)
    places = key_places(session, settings=settings)
    per_scope = {
        scope: [corridor_coverage(c, sites, regions.utm_zone) for c in lines]
        for scope, sites in scopes.items()
    }
    for index, line in enumerate(lines):
        any_result = per_scope[ANY][index]
        report.corridors.append(
            {
                "corridor_id": line.corridor_id,
                "name": line.name,
                "name_en": line.name_en,
                "kind": line.kind,
                "length_km": round(any_result.length_km, 2),
                "share": {s: round(per_scope[s][index].share, 4) for s in scopes},
                "gaps": [asdict(g) | {"length_m": round(g.length_m)} for g in any_result.gaps],
                "coordinates": [list(p) for p in line.geometry.coords],
            }
        )
    for kind in sorted({line.kind for line in lines}):
        report.corridor_rates[kind] = {
            scope: round(
                sum(r.covered_km for r in results if r.kind == kind)
                / max(1e-9, sum(r.length_km for r in results if r.kind == kind)),
                4,
            )
            for scope, results in per_scope.items()
        }
    place_scopes = {
        scope: key_place_coverage(places, sites, regions.utm_zone)
        for scope, sites in scopes.items()
    }
    for index, place in enumerate(places):
        point = place.geometry.representative_point()
        report.key_places.append(
            {
                "place_id": place.place_id,
                "name": place.name,
                "name_en": place.name_en,
                "category": place.category,
                "lon": point.x,
                "lat": point.y,
                "covered": {s: place_scopes[s][index].covered for s in scopes},
            }
        )
    for category in sorted({p.category for p in places}):
        members = [p for p in report.key_places if p["category"] == category]
        report.key_place_rates[category] = {
            s: round(sum(p["covered"][s] for p in members) / len(members), 4) for s in scopes
        }
    area = area_coverage(regions, layer)
    report.area = {
        "resolution": area.resolution,
        "cells": area.cells,
        "area_share": round(area.area_share, 4),
        "population_share": round(area.population_share, 4),
    }
    report.key_place_rates["all"] = {
        s: round(sum(p["covered"][s] for p in report.key_places) / max(1, len(places)), 4)
        for s in scopes
    }
    return report


def site_figures(
    session: Session, *, settings: Settings, principal: Principal, period: str | None = None
) -> dict[str, Any]:
    """Sites in service per city, operator and technology, and 5G sites per 10,000 people."""
    principal.require(Permission.DASHBOARD_READ)
    period = period or latest_period(session)
    if period is None:
        raise NotFoundError("no site data yet; ingest the operators' sites first")
    files = lake.current_files(session, settings, "sites", periods=[period])
    backend = connect(settings)
    sites = backend.read_parquet([str(f) for f in files])
    regions = region(settings)
    population = ibis.memtable(
        {
            "code": [c.code for c in regions.cities],
            "name": [c.name for c in regions.cities],
            "population": [c.population or 0 for c in regions.cities],
        }
    )
    counts = backend.execute(analysis.site_counts(sites)).to_dict(orient="records")
    density = backend.execute(analysis.five_g_density(sites, population)).to_dict(orient="records")
    names = {c.code: (c.name, c.name_en) for c in regions.cities}
    for row in density:
        row["name"], row["name_en"] = names.get(row["code"], ("", ""))
    return {"period": period, "counts": counts, "five_g_per_10k": density}
