"""Coordinates: GCJ-02 ↔ WGS-84, geodesic lengths, a metric projection.

WGS-84 is the storage form. GCJ-02 is the obfuscated datum Chinese web maps
(Amap, Tencent) publish; it is WGS-84 plus a published non-linear offset of a
few hundred metres inside China. The forward offset has a closed form; the
inverse is found by fixed-point iteration to well under a centimetre.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Geod, Transformer

FloatArray = npt.NDArray[np.float64]

_A = 6378245.0  # semi-major axis of Krasovsky 1940, used by the GCJ-02 offset
_EE = 0.00669342162296594323  # its first eccentricity squared
_GEOD = Geod(ellps="WGS84")

#: CGCS2000 / 3-degree Gauss-Kruger zones are common locally; UTM is used here
#: because one zone (49N, 108-114°E) covers most of Shanxi with < 0.1 % scale error.
METRIC_CRS_BY_ZONE = {48: "EPSG:32648", 49: "EPSG:32649", 50: "EPSG:32650", 51: "EPSG:32651"}


def _offset_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return np.asarray(r, dtype=np.float64)


def _offset_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return np.asarray(r, dtype=np.float64)


def in_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """The bounding box inside which GCJ-02 applies an offset."""
    return np.asarray((lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271))


def wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised forward transform; points outside China are returned unchanged."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    d_lat = _offset_lat(lon - 105.0, lat - 35.0)
    d_lon = _offset_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad) * math.pi)
    inside = in_china(lon, lat)
    return np.where(inside, lon + d_lon, lon), np.where(inside, lat + d_lat, lat)


def gcj02_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised inverse: iterate until the forward transform reproduces the input."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    w_lon, w_lat = lon.copy(), lat.copy()
    for _ in range(30):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = g_lon - lon, g_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon) < 1e-10) and np.all(np.abs(e_lat) < 1e-10):
            break
    return w_lon, w_lat


def geodesic_length_m(lon: FloatArray, lat: FloatArray) -> float:
    """Length in metres of a polyline on the WGS-84 ellipsoid."""
    if len(lon) < 2:
        return 0.0
    return float(_GEOD.line_length(list(map(float, lon)), list(map(float, lat))))


def utm_zone(lon: float) -> int:
    return int((lon + 180.0) // 6.0) + 1


@cache
def metric_crs(zone: int) -> CRS:
    return CRS.from_user_input(METRIC_CRS_BY_ZONE.get(zone, f"EPSG:{32600 + zone}"))


@cache
def to_metric(zone: int) -> Transformer:
    """WGS-84 lon/lat → metres in the UTM zone (northern hemisphere)."""
    return Transformer.from_crs("EPSG:4326", metric_crs(zone), always_xy=True)
