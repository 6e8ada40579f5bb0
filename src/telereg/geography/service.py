"""The geography analyses use: the region, and corridors and key places, shipped or ingested.

A user's GeoJSON, ingested into the ``corridors`` or ``key_places`` dataset,
adds features or replaces shipped ones with the same id. Population figures
ingested into the ``population`` dataset replace the shipped city figures and
the estimated county ones.
"""

from __future__ import annotations

import duckdb
import shapely
from sqlalchemy.orm import Session

from telereg.core.settings import Settings
from telereg.ingest import lake
from telereg.reference.places import Corridor, KeyPlace, shipped_corridors, shipped_key_places
from telereg.reference.regions import RegionSet, load_regions, with_population


def region(settings: Settings) -> RegionSet:
    """The region's boundaries, with the shipped population (see ``populated``)."""
    return load_regions(settings.region_code)


def populated(session: Session, settings: Settings) -> RegionSet:
    """The region with the population figures users ingested put in (the latest per code)."""
    latest = {str(row["region_code"]): row for row in _ingested(session, settings, "population")}
    figures = {code: int(str(row["population"])) for code, row in latest.items()}
    sources = dict.fromkeys(f"{row['source']} ({row['year']})" for row in latest.values())
    return with_population(region(settings), figures, source="; ".join(sources))


def _ingested(session: Session, settings: Settings, dataset: str) -> list[dict[str, object]]:
    """The ingested features, the earliest submission's first: where two give the same id,
    the one received later comes later, and so replaces the other."""
    con = duckdb.connect()
    rows: list[dict[str, object]] = []
    for path in lake.current_files(session, settings, dataset):  # (in submission order)
        found = con.execute("SELECT * FROM read_parquet(?) ORDER BY source_row", [str(path)])
        rows += found.to_arrow_table().to_pylist()
    return rows


def corridors(session: Session, *, settings: Settings) -> list[Corridor]:
    found = {c.corridor_id: c for c in shipped_corridors(settings.region_code)}
    for row in _ingested(session, settings, "corridors"):
        found[str(row["corridor_id"])] = Corridor(
            corridor_id=str(row["corridor_id"]),
            name=str(row["name"]),
            name_en=str(row["name_en"] or ""),
            kind=str(row["kind"]),
            geometry=shapely.from_wkt(str(row["geometry"])),
            source=f"ingested ({row['operator']})",
        )
    return sorted(found.values(), key=lambda c: c.corridor_id)


def key_places(session: Session, *, settings: Settings) -> list[KeyPlace]:
    found = {p.place_id: p for p in shipped_key_places(settings.region_code)}
    for row in _ingested(session, settings, "key_places"):
        found[str(row["place_id"])] = KeyPlace(
            place_id=str(row["place_id"]),
            name=str(row["name"]),
            name_en=str(row["name_en"] or ""),
            category=str(row["category"]),
            geometry=shapely.from_wkt(str(row["geometry"])),
            source=f"ingested ({row['operator']})",
        )
    return sorted(found.values(), key=lambda p: p.place_id)
