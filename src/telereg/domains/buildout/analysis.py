"""Build-out figures as Ibis expressions over the lake (DuckDB here, Spark on a cluster)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def in_service(sites: ir.Table) -> ir.Table:
    return sites.filter(sites.status == "in_service")


def site_counts(sites: ir.Table, *, by: str = "city_code") -> ir.Table:
    """Sites in service per city (or ``by="county_code"``), operator and technology."""
    live = in_service(sites)
    return (
        live.group_by([by, "operator", "technology"])
        .agg(sites=live.site_id.nunique())
        .order_by([by, "operator", "technology"])
    )


def five_g_density(sites: ir.Table, population: ir.Table) -> ir.Table:
    """5G sites in service per 10,000 people, per city (``population``: code, population).
    A city whose population is not known (0) has no figure, and is listed last."""
    live = in_service(sites)
    five_g = live.filter(live.technology == "5G")
    per_city = five_g.group_by("city_code").agg(
        sites=(five_g.operator.concat("/", five_g.site_id)).nunique()
    )
    joined = population.left_join(per_city, population.code == per_city.city_code)
    sites_col = joined.sites.fill_null(0)
    return joined.select(
        code=joined.code,
        sites=sites_col,
        population=joined.population,
        per_10k=(sites_col * 10_000 / joined.population.nullif(0)).round(2),
    ).order_by(ibis.desc("per_10k"))


def _with_shares(totals: ir.Table) -> ir.Table:
    """Coverage, 10G-PON port share and 500M+ share from summed counts."""
    return totals.mutate(
        coverage=(totals.passed / totals.households).round(4),
        port_share_10g=(totals.ports_10g / totals.ports).round(4),
        share_500m=(totals.subs_500m / totals.subs).round(4),
    )


def gigabit_by_county(fibre: ir.Table) -> ir.Table:
    """Per county: the widest network's 10G-PON reach, port share and 500M+ share.

    Households passed are not added across operators (one household is often
    passed by several); the widest network's reach is the lower bound used.
    """
    per_county = fibre.group_by("county_code").agg(
        households=fibre.households.max(),
        passed=fibre.households_10g_pon.max(),
        ports_10g=fibre.pon_ports_10g.sum(),
        ports=fibre.pon_ports_total.sum(),
        subs_500m=fibre.subscribers_500m.sum(),
        subs=fibre.subscribers_total.sum(),
        subs_gigabit=fibre.subscribers_gigabit.sum(),
    )
    return _with_shares(per_county)


def gigabit_by_city(by_county: ir.Table, county_city: ir.Table) -> ir.Table:
    """Roll the county figures up to cities (``county_city``: county_code, city_code)."""
    joined = by_county.join(county_city, "county_code")
    per_city = joined.group_by("city_code").agg(
        households=joined.households.sum(),
        passed=joined.passed.sum(),
        ports_10g=joined.ports_10g.sum(),
        ports=joined.ports.sum(),
        subs_500m=joined.subs_500m.sum(),
        subs=joined.subs.sum(),
    )
    return _with_shares(per_city).order_by("city_code")


def new_sites_in_year(sites: ir.Table, year: int) -> ir.Table:
    """5G sites that went into service in ``year``, per city and for the whole table."""
    live = in_service(sites)
    new = live.filter((live.technology == "5G") & (live.in_service_date.year() == year))
    return new.group_by("city_code").agg(
        new_sites=(new.operator.concat("/", new.site_id)).nunique()
    )


def project_progress(projects: ir.Table) -> ir.Table:
    """Universal-service projects per batch and status."""
    return (
        projects.group_by(["batch", "status"])
        .agg(projects=projects.project_id.nunique())
        .order_by(["batch", "status"])
    )


def beidou_share(sites: ir.Table) -> ir.Table:
    """Share of sites in service with BeiDou timing, per operator."""
    live = in_service(sites)
    return (
        live.group_by("operator")
        .agg(sites=live.count(), beidou=live.beidou_timing.cast("int64").sum())
        .mutate(share=(ibis._.beidou / ibis._.sites).round(4))
        .order_by("operator")
    )
