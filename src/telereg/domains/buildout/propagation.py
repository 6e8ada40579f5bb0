"""Predicted coverage of a site: path loss by band, antenna height and environment.

Models (frequencies in MHz, distances in km unless stated):

* below 1500 MHz (n28 700 MHz, B5, B8): Okumura-Hata,
  ``PL = 69.55 + 26.16 log f − 13.82 log hb − a(hm) + (44.9 − 6.55 log hb) log d``;
* 1500–2000 MHz (B1, B3, B34, B39, n1, n3): COST-231 Hata,
  ``PL = 46.3 + 33.9 log f − 13.82 log hb − a(hm) + (44.9 − 6.55 log hb) log d + C``,
  with ``C = 3 dB`` in dense urban districts and 0 elsewhere;
* above 2000 MHz (B40, B41, n41, n78, n79): 3GPP TR 38.901 NLOS, UMa in urban
  districts, ``PL = 13.54 + 39.08 log d3D[m] + 20 log fc[GHz] − 0.6 (hUT − 1.5)``,
  and RMa elsewhere (street width 20 m, building height 5 m, the standard's
  defaults), ``PL = 161.04 − 7.1 log W + 7.5 log h − (24.37 − 3.7 (h/hBS)²) log hBS
  + (43.42 − 3.1 log hBS)(log d3D[m] − 3) + 20 log fc − (3.2 (log 11.75 hUT)² − 4.97)``.

``a(hm) = (1.1 log f − 0.7) hm − (1.56 log f − 0.8)`` for a 1.5 m handset. The
Hata models get the usual suburban and open-area corrections outside urban
districts. Every model is ``A + B log10(d)``, so the range at which the
received reference-signal power (RSRP) falls to the threshold has a closed form.

RSRP is the EIRP spread over the carrier's resource elements, plus the sector
antenna's gain towards the point (3GPP TR 36.814 pattern: 65° half-power beam,
30 dB front-to-back), minus path loss and a fade margin. The default threshold,
−105 dBm, is the edge of usable coverage that operators and regulators in China
commonly plan and test 5G against; it is a setting, as is the margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

HANDSET_HEIGHT_M = 1.5
BEAMWIDTH_DEG = 65.0
FRONT_TO_BACK_DB = 30.0


class Environment(StrEnum):
    DENSE_URBAN = "dense_urban"
    URBAN = "urban"
    SUBURBAN = "suburban"
    RURAL = "rural"


@dataclass(frozen=True)
class Band:
    name: str
    centre_mhz: float
    #: resource elements (subcarriers) of the carrier over which the EIRP is spread
    subcarriers: int


BANDS: dict[str, Band] = {
    b.name: b
    for b in (
        Band("n28", 780.0, 1_920),  # 30 MHz at 15 kHz
        Band("n41", 2_595.0, 3_276),  # 100 MHz at 30 kHz
        Band("n78", 3_500.0, 3_276),
        Band("n79", 4_900.0, 3_276),
        Band("n1", 2_140.0, 1_200),
        Band("n3", 1_842.5, 1_200),
        Band("B1", 2_140.0, 1_200),
        Band("B3", 1_842.5, 1_200),
        Band("B5", 881.5, 600),
        Band("B8", 942.5, 600),
        Band("B34", 2_017.5, 900),
        Band("B39", 1_900.0, 1_200),
        Band("B40", 2_350.0, 1_200),
        Band("B41", 2_593.0, 1_200),
    )
}


def _mobile_correction(f_mhz: float, hm: float = HANDSET_HEIGHT_M) -> float:
    return float((1.1 * np.log10(f_mhz) - 0.7) * hm - (1.56 * np.log10(f_mhz) - 0.8))


def _area_correction(f_mhz: float, environment: Environment) -> float:
    """Okumura-Hata corrections from urban to suburban and open areas (dB, negative)."""
    if environment is Environment.SUBURBAN:
        return float(-2.0 * np.log10(f_mhz / 28.0) ** 2 - 5.4)
    if environment is Environment.RURAL:
        lf = np.log10(f_mhz)
        return float(-4.78 * lf**2 + 18.33 * lf - 40.94)
    return 0.0


def loss_coefficients(
    f_mhz: float, antenna_height_m: float, environment: Environment
) -> tuple[float, float]:
    """``(A, B)`` with path loss ``PL(d) = A + B log10(d km)`` in dB."""
    hb = antenna_height_m
    if f_mhz > 2000.0:
        fc = np.log10(f_mhz / 1000.0)
        if environment in (Environment.DENSE_URBAN, Environment.URBAN):
            # UMa NLOS with d3D in metres: log10(1000 d) = 3 + log10(d km).
            a = 13.54 + 39.08 * 3.0 + 20.0 * fc - 0.6 * (HANDSET_HEIGHT_M - 1.5)
            return float(a), 39.08
        # RMa NLOS, street width W = 20 m and building height h = 5 m (the defaults of 38.901).
        w, h = 20.0, 5.0
        slope = 43.42 - 3.1 * np.log10(hb)
        a = (
            161.04
            - 7.1 * np.log10(w)
            + 7.5 * np.log10(h)
            - (24.37 - 3.7 * (h / hb) ** 2) * np.log10(hb)
            + 20.0 * fc
            - (3.2 * np.log10(11.75 * HANDSET_HEIGHT_M) ** 2 - 4.97)
        )
        return float(a), float(slope)
    slope = 44.9 - 6.55 * np.log10(hb)
    if f_mhz < 1500.0:
        a = 69.55 + 26.16 * np.log10(f_mhz) - 13.82 * np.log10(hb) - _mobile_correction(f_mhz)
    else:
        c = 3.0 if environment is Environment.DENSE_URBAN else 0.0
        a = 46.3 + 33.9 * np.log10(f_mhz) - 13.82 * np.log10(hb) - _mobile_correction(f_mhz) + c
    return float(a + _area_correction(f_mhz, environment)), float(slope)


def path_loss_db(
    f_mhz: float, antenna_height_m: float, environment: Environment, distance_km: float
) -> float:
    a, b = loss_coefficients(f_mhz, antenna_height_m, environment)
    return a + b * float(np.log10(distance_km))


def rsrp_dbm(eirp_dbm: float, band: Band, path_loss: float, antenna_gain_db: float = 0.0) -> float:
    return eirp_dbm - 10.0 * float(np.log10(band.subcarriers)) + antenna_gain_db - path_loss


def sector_gain_db(offset_deg: FloatArray) -> FloatArray:
    """Horizontal pattern relative to boresight, for an angle off boresight in degrees."""
    wrapped = (np.asarray(offset_deg) + 180.0) % 360.0 - 180.0
    return np.asarray(-np.minimum(12.0 * (wrapped / BEAMWIDTH_DEG) ** 2, FRONT_TO_BACK_DB))


def coverage_range_km(
    *,
    eirp_dbm: FloatArray,
    band: list[str] | npt.NDArray[np.str_],
    antenna_height_m: FloatArray,
    environment: list[Environment],
    threshold_dbm: float,
    margin_db: float = 0.0,
    gain_db: FloatArray | float = 0.0,
) -> FloatArray:
    """Distance at which RSRP falls to ``threshold_dbm`` (plus ``margin_db``), per site."""
    eirp = np.asarray(eirp_dbm, dtype=float)
    heights = np.asarray(antenna_height_m, dtype=float)
    gains = np.broadcast_to(np.asarray(gain_db, dtype=float), eirp.shape)
    if not (len(band) == len(heights) == len(environment) == len(eirp)):
        raise ValueError("eirp_dbm, band, antenna_height_m and environment differ in length")
    # The loss coefficients depend on the band, the height and the environment only, of
    # which a region has few combinations: one evaluation each, then array arithmetic.
    sites = pd.MultiIndex.from_arrays(
        [np.asarray(band, dtype=str), heights, np.asarray(environment, dtype=str)]
    )
    combination, combinations = sites.factorize()
    coefficients = np.array(
        [loss_coefficients(BANDS[n].centre_mhz, h, Environment(e)) for n, h, e in combinations]
        or [(0.0, 1.0)]
    )
    a, b = coefficients[combination, 0], coefficients[combination, 1]
    per_band = {name: spec.subcarriers for name, spec in BANDS.items()}
    subcarriers = sites.get_level_values(0).map(per_band).to_numpy(dtype=float)
    budget = eirp - 10.0 * np.log10(subcarriers) + gains
    out: FloatArray = 10.0 ** ((budget - threshold_dbm - margin_db - a) / b)
    return out
