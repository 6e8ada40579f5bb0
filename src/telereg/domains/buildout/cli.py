"""``telereg buildout …``: coverage and site figures on the command line."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from telereg.core.db import session_scope
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.buildout import service

out = Console()


def coverage_command(
    settings: Settings, principal: Principal, *, period: str | None, as_json: bool
) -> None:
    with session_scope(settings) as session:
        report = service.coverage(session, settings=settings, principal=principal, period=period)
    if as_json:
        out.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    scopes = ["ANY", *report.operators]
    table = Table(
        "corridor",
        "kind",
        "km",
        *[f"{s} %" for s in scopes],
        "gaps ≥ 500 m",
        title=f"corridor coverage {report.period} (RSRP ≥ {report.threshold_dbm:g} dBm)",
    )
    for c in report.corridors:
        table.add_row(
            f"{c['corridor_id']} {c['name']}",
            c["kind"],
            f"{c['length_km']:,.0f}",
            *[f"{c['share'][s] * 100:.1f}" for s in scopes],
            str(len(c["gaps"])),
        )
    out.print(table)
    places = Table("key places", *[f"{s} %" for s in scopes])
    for category, rates in report.key_place_rates.items():
        places.add_row(category, *[f"{rates[s] * 100:.1f}" for s in scopes])
    out.print(places)
