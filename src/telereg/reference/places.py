"""Shipped corridors (high-speed railways, expressways) and key places of a region.

The files under ``reference/data`` state their source and positional accuracy.
A region without shipped files has none; users add or replace features by
ingesting GeoJSON into the ``corridors`` and ``key_places`` datasets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from telereg.reference.regions import DATA


@dataclass(frozen=True)
class Corridor:
    corridor_id: str
    name: str
    name_en: str
    kind: str
    geometry: BaseGeometry
    source: str


@dataclass(frozen=True)
class KeyPlace:
    place_id: str
    name: str
    name_en: str
    category: str
    geometry: BaseGeometry
    source: str


def _collection(name: str, region_code: str) -> dict[str, Any]:
    resource = DATA / f"{name}-{region_code}.geojson"
    if not resource.is_file():
        return {"features": [], "source": ""}
    document: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return document


def shipped_corridors(region_code: str) -> list[Corridor]:
    document = _collection("corridors", region_code)
    return [
        Corridor(
            corridor_id=f["properties"]["corridor_id"],
            name=f["properties"]["name"],
            name_en=f["properties"].get("name_en", ""),
            kind=f["properties"]["kind"],
            geometry=shape(f["geometry"]),
            source="shipped",
        )
        for f in document["features"]
    ]


def shipped_key_places(region_code: str) -> list[KeyPlace]:
    document = _collection("key_places", region_code)
    return [
        KeyPlace(
            place_id=f["properties"]["place_id"],
            name=f["properties"]["name"],
            name_en=f["properties"].get("name_en", ""),
            category=f["properties"]["category"],
            geometry=shape(f["geometry"]),
            source="shipped",
        )
        for f in document["features"]
    ]
