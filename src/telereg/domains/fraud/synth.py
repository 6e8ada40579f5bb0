"""The anti-fraud part of the demo: cells, subscribers and their calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from telereg.scenario.files import OperatorFile, nullable, with_bad_rows, write_csv
from telereg.scenario.model import OPERATOR_SHARES, PERIODS, Province

#: Mobile number prefixes by operator (the first three digits).
PREFIXES = {
    "CMCC": (134, 135, 136, 137, 138, 139, 150, 151, 152, 157, 158, 159, 182, 187, 188),
    "CUCC": (130, 131, 132, 155, 156, 185, 186),
    "CTCC": (133, 153, 180, 181, 189, 199),
    "CBN": (192,),
}
#: Subscribers generated per operator at full (province) scale; scaled down with the demo.
SUBSCRIBERS_AT_FULL_SCALE = 150_000
CALLS_PER_SUBSCRIBER_MONTH = 12


def cells_of(province: Province, operator: str) -> pa.Table:
    """Three cells per site, each a little off the mast towards its sector."""
    sites = province.sites
    rng = province.rng(f"fraud.cells.{operator}")
    mine = np.flatnonzero(sites.operator == operator)
    repeat = np.repeat(mine, 3)
    sector = np.tile([1, 2, 3], len(mine))
    return pa.table(
        {
            "cell_id": [f"{sites.site_id[i]}-{s}" for i, s in zip(repeat, sector, strict=True)],
            "site_id": sites.site_id[repeat],
            "longitude": np.round(sites.lon[repeat] + rng.normal(0, 0.001, len(repeat)), 6),
            "latitude": np.round(sites.lat[repeat] + rng.normal(0, 0.001, len(repeat)), 6),
            "city_code": sites.city_code[repeat],
            "technology": sites.technology[repeat],
        }
    )


def numbers(rng: np.random.Generator, operator: str, n: int) -> np.ndarray:
    prefix = rng.choice(PREFIXES[operator], n)
    rest = rng.integers(0, 10**8, n)
    return np.char.add(prefix.astype(str), np.char.zfill(rest.astype(str), 8))


def calls(
    province: Province, operator: str, period: str, cells: pa.Table, others: np.ndarray
) -> pa.Table:
    """A month of outgoing calls of the operator's subscribers."""
    rng = province.rng(f"fraud.calls.{operator}.{period}")
    population = max(
        200, round(SUBSCRIBERS_AT_FULL_SCALE * OPERATOR_SHARES[operator] * province.factor)
    )
    subscribers = numbers(province.rng(f"fraud.subscribers.{operator}"), operator, population)
    imeis = np.char.add(
        "86",
        np.char.zfill(
            province.rng(f"fraud.imei.{operator}").integers(0, 10**13, population).astype(str), 13
        ),
    )
    cell_ids = np.asarray(cells.column("cell_id").to_pylist())
    home = province.rng(f"fraud.home.{operator}").integers(0, len(cell_ids), population)
    count = rng.poisson(CALLS_PER_SUBSCRIBER_MONTH, population)
    who = np.repeat(np.arange(population), count)
    n = len(who)
    start = np.datetime64(f"{period}-01T00:00:00")
    days = 30 if period.endswith(("04", "06", "09", "11")) else 31
    # Calls follow the day: few at night, most between 9:00 and 21:00.
    hour = rng.choice(24, n, p=_diurnal())
    seconds = rng.integers(0, days, n) * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    moving = rng.random(n) < 0.25
    cell = np.where(moving, rng.integers(0, len(cell_ids), n), home[who])
    return pa.table(
        {
            "caller": subscribers[who],
            "callee": np.where(
                rng.random(n) < 0.7,
                subscribers[rng.integers(0, population, n)],
                others[rng.integers(0, len(others), n)],
            ),
            "start_time": (start + seconds.astype("timedelta64[s]")).astype(str).astype(object),
            "duration_s": np.minimum(rng.lognormal(4.0, 1.0, n).astype(int), 7200),
            "direction": np.full(n, "MO"),
            "cell_id": cell_ids[cell],
            "imei": nullable(imeis[who], rng.random(n) < 0.9),
        }
    )


def _diurnal() -> np.ndarray:
    weights = np.array(
        [1, 0.5, 0.3, 0.3, 0.4, 1, 3, 6, 9, 10, 10, 10, 9, 9, 10, 10, 10, 10, 9, 9, 8, 6, 4, 2],
        dtype=float,
    )
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def synthesize(province: Province, out: Path) -> list[OperatorFile]:
    """Cells (one snapshot) and monthly CDRs per operator, with a few deliberate errors."""
    files: list[OperatorFile] = []
    planted: list[dict[str, object]] = []
    others = numbers(province.rng("fraud.others"), "CMCC", 2000)
    for operator in OPERATOR_SHARES:
        cells = cells_of(province, operator)
        files.append(
            OperatorFile(
                "cells",
                operator,
                PERIODS[-1],
                write_csv(cells, out / operator / PERIODS[-1] / "cells.csv"),
            )
        )
        for period in PERIODS:
            table = calls(province, operator, period, cells, others)
            relative = f"{operator}/{period}/voice_cdr.csv"
            if operator == "CUCC" and period == PERIODS[-1] and table.num_rows > 10:
                bad: dict[int, dict[str, object]] = {
                    2: {"cell_id": "NO-SUCH-CELL"},
                    5: {"duration_s": -12},
                    8: {"start_time": "2021-12-01 00:00:05"},
                }
                table = with_bad_rows(table, bad)
                planted += [
                    {"file": relative, "row": i + 2, "column": c}
                    for i, values in bad.items()
                    for c in values
                ]
            files.append(
                OperatorFile("voice_cdr", operator, period, write_csv(table, out / relative))
            )
    province.plant("fraud", "bad_rows", planted)
    return files
