"""The build-out part of the demo: each operator's monthly site inventory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from telereg.domains.buildout.plant import plant
from telereg.reference.places import shipped_corridors, shipped_key_places
from telereg.scenario.files import OperatorFile, nullable, with_bad_rows, write_csv, write_xlsx
from telereg.scenario.model import OPERATOR_SHARES, PERIODS, Province

#: The Chinese headers China Telecom's regional office uses in its Excel exports.
SITES_HEADERS_ZH = [
    "站址编号",
    "经度",
    "纬度",
    "地市编码",
    "区县编码",
    "制式",
    "频段",
    "是否共享铁塔",
    "天线挂高",
    "方位角",
    "eirp",
    "建设状态",
    "开通日期",
    "北斗授时",
    "北斗授时改造日期",
]


def _in_service_dates(
    province: Province, first_month: np.ndarray, period_index: int
) -> list[str | None]:
    rng = province.rng("buildout.dates")
    dates: list[str | None] = []
    for month in first_month:
        if month > period_index:
            dates.append(None)
        elif month == 0:
            day = rng.integers(0, 600)  # some time in the two years before October 2021
            dates.append(str(np.datetime64("2021-10-31") - np.timedelta64(int(day), "D")))
        else:
            dates.append(f"{PERIODS[month]}-{rng.integers(1, 29):02d}")
    return dates


def site_inventory(province: Province, operator: str, period_index: int) -> pa.Table:
    """What an operator reports for one month: every site built or being built by then."""
    sites = province.sites
    mine = sites.operator == operator
    first = sites.in_service_from[mine]
    in_service = first <= period_index
    status = np.where(in_service, "in_service", "under_construction")
    azimuths = nullable(np.full(int(mine.sum()), "0;120;240"), ~sites.omni[mine])
    beidou = sites.beidou[mine]
    return pa.table(
        {
            "site_id": sites.site_id[mine],
            "longitude": sites.lon[mine],
            "latitude": sites.lat[mine],
            "city_code": sites.city_code[mine],
            "county_code": sites.county_code[mine],
            "technology": sites.technology[mine],
            "band": sites.band[mine],
            "shared_tower": np.where(sites.shared_tower[mine], "true", "false"),
            "antenna_height_m": sites.antenna_height_m[mine],
            "azimuths": azimuths,
            "eirp_dbm": sites.eirp_dbm[mine],
            "status": status,
            # _in_service_dates gives None for sites not yet in service
            "in_service_date": pa.array(
                _in_service_dates(province, first, period_index), pa.string()
            ),
            "beidou_timing": np.where(beidou, "true", "false"),
            "beidou_retrofit_date": nullable(np.full(len(beidou), "2021-09-15"), beidou),
        }
    )


def synthesize(province: Province, out: Path) -> list[OperatorFile]:
    """Monthly site files: CSV for most, XLSX from Unicom, GBK with Chinese headers from Telecom."""
    code = province.regions.province.code
    plant(province, shipped_corridors(code), shipped_key_places(code))
    files: list[OperatorFile] = []
    planted: list[dict[str, object]] = []
    for index, period in enumerate(PERIODS):
        for operator in OPERATOR_SHARES:
            table = site_inventory(province, operator, index)
            folder = out / operator / period
            if operator == "CMCC" and period == PERIODS[-1] and table.num_rows > 10:
                bad: dict[int, dict[str, object]] = {
                    3: {"latitude": "95.2"},
                    7: {"county_code": "149999"},
                    9: {"band": "n99"},
                }
                table = with_bad_rows(table, bad)
                planted += [
                    {"file": f"{operator}/{period}/sites.csv", "row": i + 2, "column": c}
                    for i, values in bad.items()
                    for c in values
                ]
            if operator == "CUCC":
                path = write_xlsx(table, folder / "sites.xlsx")
            elif operator == "CTCC":
                path = write_csv(
                    table, folder / "sites.csv", encoding="gbk", headers=SITES_HEADERS_ZH
                )
            else:
                path = write_csv(table, folder / "sites.csv")
            files.append(OperatorFile("sites", operator, period, path))
    province.plant("buildout", "bad_rows", planted)
    return files
