"""Build-out operations the interfaces call: coverage of corridors and key places, site counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import ibis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg.core.engine import connect, read_parquet_files
from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
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
from telereg.geography.service import corridors, key_places, populated, region
from telereg.ingest import lake
from telereg.ingest.models import Submission

ANY = "ANY"
NO_SITES = N_("no site data yet; ingest the operators' sites first")
NO_SITES_FOR = N_("no site data for {period}; ingest the operators' sites first")


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
    area: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_period(session: Session) -> str | None:
    """The month shown when none is asked for: the latest for which every operator that
    has sent sites has sent them (one operator's early file must not switch the province's
    figures to its sites alone), or the latest month with sites when no month is complete.
    """
    sent = session.execute(
        select(Submission.period, Submission.operator_id).where(
            Submission.dataset == "sites", Submission.current, Submission.lake_path != ""
        )
    )
    operators: dict[str, set[int]] = {}
    for period, operator_id in sent:
        operators.setdefault(period, set()).add(operator_id)
    if not operators:
        return None
    everyone = set().union(*operators.values())
    complete = [period for period, senders in operators.items() if senders == everyone]
    return max(complete or operators)


def _site_rows(session: Session, settings: Settings, period: str) -> dict[str, list[Any]]:
    files = lake.current_files(session, settings, "sites", periods=[period])
    if not files:
        raise NotFoundError(NO_SITES_FOR.format(period=period))
    rows: dict[str, list[Any]] = (
        duckdb.connect()
        .execute(
            "SELECT * FROM read_parquet(?) WHERE status = 'in_service'", [[str(f) for f in files]]
        )
        .to_arrow_table()
        .to_pydict()
    )
    return rows


_COVERAGE_CACHE: dict[tuple[object, ...], CoverageReport] = {}
_COVERAGE_INPUTS = ("sites", "corridors", "key_places", "population")


def coverage(
    session: Session, *, settings: Settings, principal: Principal, period: str | None = None
) -> CoverageReport:
    """Corridor and key-place coverage per operator and by any operator, for a month.

    The result is kept per process until a submission of its inputs (sites,
    corridors, key places, population) changes or the model settings do.
    """
    principal.require(Permission.DASHBOARD_READ)
    period = period or latest_period(session)
    if period is None:
        raise NotFoundError(NO_SITES)
    version = session.scalar(
        select(func.max(Submission.id)).where(Submission.dataset.in_(_COVERAGE_INPUTS))
    )
    key = (
        settings.state_db_url,
        str(settings.data_dir),
        period,
        version,
        settings.buildout_rsrp_threshold_dbm,
        settings.buildout_fade_margin_db,
    )
    cached = _COVERAGE_CACHE.get(key)
    if cached is None:
        cached = _compute_coverage(session, settings=settings, period=period)
        if len(_COVERAGE_CACHE) >= 16:
            _COVERAGE_CACHE.clear()
        _COVERAGE_CACHE[key] = cached
    return cached


def _compute_coverage(session: Session, *, settings: Settings, period: str) -> CoverageReport:
    regions = populated(session, settings)
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
    share = area.population_share
    report.area = {
        "resolution": area.resolution,
        "cells": area.cells,
        "area_share": round(area.area_share, 4),
        "population_share": None if share is None else round(share, 4),
    }
    report.key_place_rates["all"] = {
        s: round(sum(p["covered"][s] for p in report.key_places) / max(1, len(places)), 4)
        for s in scopes
    }
    return report


def site_figures(
    session: Session, *, settings: Settings, principal: Principal, period: str | None = None
) -> dict[str, Any]:
    """Sites in service per city and per county, operator and technology (for the month
    asked; each month is a separate figure), and 5G sites per 10,000 people."""
    principal.require(Permission.DASHBOARD_READ)
    period = period or latest_period(session)
    if period is None:
        raise NotFoundError(NO_SITES)
    files = _current(session, settings, "sites", period)
    if not files:
        raise NotFoundError(NO_SITES_FOR.format(period=period))
    backend = connect(settings)
    sites = read_parquet_files(backend, files)
    regions = populated(session, settings)
    population = ibis.memtable(
        {
            "code": [c.code for c in regions.cities],
            "name": [c.name for c in regions.cities],
            "population": [c.population or 0 for c in regions.cities],
        }
    )
    counts = backend.execute(analysis.site_counts(sites)).to_dict(orient="records")
    by_county = backend.execute(analysis.site_counts(sites, by="county_code")).to_dict(
        orient="records"
    )
    density = backend.execute(analysis.five_g_density(sites, population)).to_dict(orient="records")
    names = {c.code: (c.name, c.name_en) for c in regions.cities}
    for row in density:
        row["name"], row["name_en"] = names.get(row["code"], ("", ""))
    return {
        "period": period,
        "counts": counts,
        "counts_by_county": by_county,
        "five_g_per_10k": density,
        "population_source": regions.population_source,
        "counties_estimated": sum(1 for c in regions.counties if c.population_estimated),
        "counties": len(regions.counties),
    }


def _current(session: Session, settings: Settings, dataset: str, period: str | None) -> list[str]:
    files = lake.current_files(session, settings, dataset, periods=[period] if period else None)
    return [str(f) for f in files]


def figures(
    session: Session, *, settings: Settings, principal: Principal, period: str | None = None
) -> dict[str, Any]:
    """Gigabit indicators, the gigabit-city table, targets with a projection, projects, BeiDou."""
    principal.require(Permission.DASHBOARD_READ)
    period = period or latest_period(session)
    if period is None:
        raise NotFoundError(NO_SITES)
    backend = connect(settings)
    regions = region(settings)
    out: dict[str, Any] = {"period": period}
    # (raises NotFoundError for a month with no site data, before any file is read)
    density = {
        row["code"]: row["per_10k"]
        for row in site_figures(session, settings=settings, principal=principal, period=period)[
            "five_g_per_10k"
        ]
    }
    sites = read_parquet_files(backend, _current(session, settings, "sites", period))
    fibre_files = _current(session, settings, "fibre", period)
    if fibre_files:
        county_city = ibis.memtable(
            {
                "county_code": [c.code for c in regions.counties],
                "city_code": [c.parent or "" for c in regions.counties],
            }
        )
        by_county = analysis.gigabit_by_county(read_parquet_files(backend, fibre_files))
        cities = backend.execute(analysis.gigabit_by_city(by_county, county_city)).to_dict(
            "records"
        )
        counties = backend.execute(by_county.order_by("county_code")).to_dict("records")
        thresholds = settings.gigabit_city_thresholds
        totals = {
            k: sum(c[k] for c in cities) for k in ("households", "passed", "ports", "ports_10g")
        }
        out["gigabit"] = {
            "coverage": round(totals["passed"] / max(1, totals["households"]), 4),
            "port_share_10g": round(totals["ports_10g"] / max(1, totals["ports"]), 4),
            "cities": [],
            "counties": [
                {
                    "code": c["county_code"],
                    "name": regions.region(c["county_code"]).name,
                    "gigabit_coverage": c["coverage"],
                    "port_share_10g": c["port_share_10g"],
                    "share_500m": c["share_500m"],
                }
                for c in counties
            ],
            "thresholds": thresholds,
        }
        names = {c.code: (c.name, c.name_en) for c in regions.cities}
        for city in cities:
            values = {
                "gigabit_coverage": city["coverage"],
                "five_g_per_10k": density.get(city["city_code"], 0.0),
                "port_share_10g": city["port_share_10g"],
                "share_500m": city["share_500m"],
            }
            meets = {k: values[k] >= v for k, v in thresholds.items() if k in values}
            out["gigabit"]["cities"].append(
                {
                    "code": city["city_code"],
                    "name": names.get(city["city_code"], ("", ""))[0],
                    "name_en": names.get(city["city_code"], ("", ""))[1],
                    **values,
                    "meets": meets,
                    "gigabit_city": all(meets.values()),
                }
            )
    report = coverage(session, settings=settings, principal=principal, period=period)
    current = {
        "corridor_coverage": min(r["ANY"] for r in report.corridor_rates.values())
        if report.corridor_rates
        else 0.0,
        "key_place_coverage": report.key_place_rates["all"]["ANY"],
    }
    if (people := report.area.get("population_share")) is not None:
        current["key_area_coverage"] = people
    if "gigabit" in out:
        current["gigabit_coverage"] = float(out["gigabit"]["coverage"])
    out["targets"] = _target_progress(session, settings, backend, sites, period, current)
    # Each operator's latest project list up to the month (lists of months add up otherwise).
    project_files = [
        str(f)
        for f in lake.files_as_of(session, settings, "universal_service", period, or_first=False)
    ]
    if project_files:
        out["projects"] = backend.execute(
            analysis.project_progress(read_parquet_files(backend, project_files))
        ).to_dict("records")
    out["beidou"] = backend.execute(analysis.beidou_share(sites)).to_dict("records")
    return out


def _target_progress(
    session: Session,
    settings: Settings,
    backend: Any,
    sites: Any,
    period: str,
    current: dict[str, float],
) -> list[dict[str, Any]]:
    """Every target against where the region stands in ``period``.

    Site-count targets of the period's year are projected to the year end
    (linearly from the months elapsed); later years' counts have not started.
    Coverage targets are compared with the current share (``current``).
    """
    rows = _latest_targets(backend, _current(session, settings, "targets", None))
    if not rows:
        return []
    year, month = map(int, period.split("-"))
    new = backend.execute(analysis.new_sites_in_year(sites, year)).to_dict("records")
    by_city = {r["city_code"]: int(r["new_sites"]) for r in new}
    province = settings.region_code
    result = []
    for row in rows:
        code, indicator, target = row["region_code"], row["indicator"], float(row["value"])
        item: dict[str, Any] = {
            "region_code": code,
            "year": int(row["year"]),
            "indicator": indicator,
            "target": target,
        }
        if indicator == "new_5g_sites":
            if row["year"] < year:
                continue
            done = (
                (sum(by_city.values()) if code == province else by_city.get(code, 0))
                if row["year"] == year
                else 0
            )
            projected = done * 12 / month if row["year"] == year else None
            item |= {
                "done": done,
                "share_done": round(done / target, 4) if target else None,
                "projected": round(projected) if projected is not None else None,
                "on_track": projected >= target if projected is not None else None,
                "shortfall": max(0, round(target - projected)) if projected is not None else None,
            }
        elif indicator in current and code == province:
            value = current[indicator]
            item |= {
                "done": round(value, 4),
                "share_done": round(value / target, 4) if target else None,
                "projected": None,
                "on_track": value >= target,
                "shortfall": round(max(0.0, target - value), 4),
            }
        else:
            continue
        result.append(item)
    return sorted(result, key=lambda r: (r["region_code"], r["year"], r["indicator"]))


def _latest_targets(backend: Any, files: list[str]) -> list[dict[str, Any]]:
    """Each target (region, year, indicator) once, as the latest file that sets it says
    (``files`` in the order they were submitted: a revision may restate one target only)."""
    latest: dict[tuple[str, int, str], dict[str, Any]] = {}
    for path in files:
        for row in backend.execute(read_parquet_files(backend, [path])).to_dict("records"):
            latest[(row["region_code"], int(row["year"]), row["indicator"])] = row
    return list(latest.values())


def run_analyses(settings: Settings, *, principal: Principal, since: datetime) -> list[str]:
    """What the demo shows after loading: the obstacle cases its files opened (those opened
    from ``since`` on: files sent again open none), coverage."""
    from telereg.core import audit
    from telereg.core.db import session_scope
    from telereg.domains.buildout.obstacles import WORKFLOW

    with session_scope(settings) as session:
        _, opened = audit.entries(
            session, action=f"cases.{WORKFLOW.kind}.open", since=since, limit=1
        )
        if latest_period(session) is None:
            return [f"{opened} site-obstacle cases opened; no site data"]
        report = coverage(session, settings=settings, principal=principal)
        extra = figures(session, settings=settings, principal=principal)
    gaps = sum(len(c["gaps"]) for c in report.corridors)
    rates = ", ".join(f"{kind} {r['ANY'] * 100:.1f} %" for kind, r in report.corridor_rates.items())
    lines = [
        f"corridor coverage {report.period}: {rates}; {gaps} uncovered stretches of 500 m or more",
        f"key places covered: {report.key_place_rates['all']['ANY'] * 100:.1f} %",
        f"{opened} site-obstacle cases opened",
    ]
    if "gigabit" in extra:
        lines.append(f"gigabit fibre coverage: {extra['gigabit']['coverage'] * 100:.1f} %")
    return lines
