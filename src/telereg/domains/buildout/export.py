"""Build-out tables as rows, for CSV and XLSX downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook

from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
from telereg.ingest.submissions import neutralise

TABLES = (
    "corridors",
    "gaps",
    "key_places",
    "gigabit_cities",
    "targets",
    "site_counts",
    "site_counts_by_county",
    "gigabit_counties",
)


def _corridors(coverage: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "corridor_id": c["corridor_id"],
            "name": c["name"],
            "kind": c["kind"],
            "length_km": c["length_km"],
            **{f"share_{k}": v for k, v in c["share"].items()},
            "gaps": len(c["gaps"]),
        }
        for c in coverage["corridors"]
    ]


def _gaps(coverage: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "corridor_id": c["corridor_id"],
            "name": c["name"],
            "start_km": g["start_km"],
            "end_km": g["end_km"],
            "length_m": g["length_m"],
            "nearest_sites": "; ".join(f"{s} ({d} km)" for s, d in g["nearest_sites"]),
        }
        for c in coverage["corridors"]
        for g in c["gaps"]
    ]


def _key_places(coverage: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "place_id": p["place_id"],
            "name": p["name"],
            "category": p["category"],
            **{f"covered_{k}": v for k, v in p["covered"].items()},
        }
        for p in coverage["key_places"]
    ]


def rows_of(
    table: str, coverage: dict[str, Any], figures: dict[str, Any], sites: dict[str, Any]
) -> list[dict[str, Any]]:
    """One of the page's tables as flat rows."""
    builders: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "corridors": lambda: _corridors(coverage),
        "gaps": lambda: _gaps(coverage),
        "key_places": lambda: _key_places(coverage),
        "gigabit_cities": lambda: [
            {k: v for k, v in c.items() if k != "meets"}
            for c in figures.get("gigabit", {}).get("cities", [])
        ],
        "gigabit_counties": lambda: list(figures.get("gigabit", {}).get("counties", [])),
        "targets": lambda: list(figures.get("targets", [])),
        "site_counts": lambda: list(sites["counts"]),
        "site_counts_by_county": lambda: list(sites["counts_by_county"]),
    }
    if table not in builders:
        raise NotFoundError(
            N_("no table {table} (tables: {tables})").format(
                table=repr(table), tables=", ".join(TABLES)
            )
        )
    return builders[table]()


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.writer(buffer)
        writer.writerow(rows[0].keys())
        writer.writerows([neutralise(v) for v in row.values()] for row in rows)
    return "\ufeff" + buffer.getvalue()


def to_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    if rows:
        sheet.append(list(rows[0].keys()))
        for row in rows:
            # (a text starting with "=" would be written as a live formula: a corridor's
            # name comes from an ingested file)
            sheet.append(
                [
                    v if isinstance(v, int | float | bool) or v is None else neutralise(v)
                    for v in row.values()
                ]
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
