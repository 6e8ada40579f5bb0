"""Build-out figures as Ibis expressions over the lake (DuckDB here, Spark on a cluster)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def in_service(sites: ir.Table) -> ir.Table:
    return sites.filter(sites.status == "in_service")


def site_counts(sites: ir.Table) -> ir.Table:
    """Sites in service per city, operator and technology."""
    live = in_service(sites)
    return (
        live.group_by(["city_code", "operator", "technology"])
        .agg(sites=live.site_id.nunique())
        .order_by(["city_code", "operator", "technology"])
    )


def five_g_density(sites: ir.Table, population: ir.Table) -> ir.Table:
    """5G sites in service per 10,000 people, per city (``population``: code, population)."""
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
        per_10k=(sites_col * 10_000 / joined.population).round(2),
    ).order_by(ibis.desc("per_10k"))
