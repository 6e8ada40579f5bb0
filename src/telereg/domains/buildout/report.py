"""The periodic analysis report that guides the cities: its content, as data.

For the province or one city and a month: the figures against the targets and
against the previous month, the ranking of cities, and the uncovered corridor
stretches and key places that lie in the region. ``telereg.reports`` renders it
as HTML and PDF.
"""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy.orm import Session

from telereg.core.errors import InputError, NotFoundError
from telereg.core.i18n import N_
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.buildout import service
from telereg.geography.service import region as region_of
from telereg.reference.regions import Level

NOT_A_REPORT_REGION = N_(
    "{code} {name} is a county: a report is for the province {province} or one of its cities"
)


def previous_month(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def report_data(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    region_code: str,
    period: str,
) -> dict[str, Any]:
    regions = region_of(settings)
    area = regions.region(region_code)
    if area.level is Level.COUNTY:
        # The figures are kept per city; a county's would be its city's, or none.
        raise InputError(
            NOT_A_REPORT_REGION.format(
                code=area.code, name=area.name, province=regions.province.code
            )
        )
    is_province = area.code == regions.province.code
    coverage = service.coverage(session, settings=settings, principal=principal, period=period)
    figures = service.figures(session, settings=settings, principal=principal, period=period)
    sites = service.site_figures(session, settings=settings, principal=principal, period=period)
    try:
        before_sites = service.site_figures(
            session, settings=settings, principal=principal, period=previous_month(period)
        )
        before_figures = service.figures(
            session, settings=settings, principal=principal, period=previous_month(period)
        )
    except NotFoundError:
        before_sites, before_figures = None, None

    def five_g(table: dict[str, Any] | None) -> int | None:
        if table is None:
            return None
        return sum(
            int(c["sites"])
            for c in table["five_g_per_10k"]
            if is_province or c["code"] == area.code
        )

    def gigabit(table: dict[str, Any] | None) -> float | None:
        if table is None or "gigabit" not in table:
            return None
        if is_province:
            return float(table["gigabit"]["coverage"])
        city = next((c for c in table["gigabit"]["cities"] if c["code"] == area.code), None)
        return float(city["gigabit_coverage"]) if city else None

    shape = area.geometry

    def corridor_en(c: dict[str, Any]) -> str:
        return f"{c['corridor_id']} {c.get('name_en') or c['name']}"

    gaps = [
        {"corridor": f"{c['corridor_id']} {c['name']}", "corridor_en": corridor_en(c), **g}
        for c in coverage.corridors
        for g in c["gaps"]
        if is_province or shapely.intersects(shape, shapely.Point(g["start_lon"], g["start_lat"]))
    ]
    places = [
        p
        for p in coverage.key_places
        if not p["covered"]["ANY"]
        and (is_province or shapely.contains_xy(shape, p["lon"], p["lat"]))
    ]
    targets = [t for t in figures.get("targets", []) if t["region_code"] == area.code]
    return {
        "region": {
            "code": area.code,
            "name": area.name,
            "name_en": area.name_en,
            "province": is_province,
        },
        "period": period,
        "previous_period": previous_month(period),
        "five_g_sites": five_g(sites),
        "five_g_sites_before": five_g(before_sites),
        "gigabit_coverage": gigabit(figures),
        "gigabit_coverage_before": gigabit(before_figures),
        "corridor_rates": coverage.corridor_rates,
        "key_place_rate": coverage.key_place_rates["all"]["ANY"],
        "targets": targets,
        # (a city without a known population has no density: ranked last, shown as —)
        "ranking": sorted(
            sites["five_g_per_10k"],
            key=lambda c: (c["per_10k"] is None, -(c["per_10k"] or 0)),
        ),
        "gigabit_cities": sorted(
            figures.get("gigabit", {}).get("cities", []), key=lambda c: -c["gigabit_coverage"]
        ),
        "gaps": gaps,
        "uncovered_places": places,
        "threshold_dbm": coverage.threshold_dbm,
    }
