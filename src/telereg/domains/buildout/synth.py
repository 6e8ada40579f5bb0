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
    province.plant("buildout", "gigabit_coverage_nov_2021", GIGABIT_COVERAGE_NOV_2021)
    return files + synthesize_reference(province, out)


#: The source: gigabit fibre coverage of the province at the end of November 2021.
GIGABIT_COVERAGE_NOV_2021 = 0.551
#: Each operator's reach relative to the widest network (China Telecom's).
FIBRE_REACH = {"CTCC": 1.0, "CUCC": 0.82, "CMCC": 0.9}


def fibre(province: Province, operator: str, period_index: int) -> pa.Table:
    """Per county: households, 10G-PON reach and ports, subscribers, for one operator."""
    rng = province.rng("buildout.fibre")  # one pattern of reach; operators differ by scale
    counties = province.regions.counties
    households = np.array([max(1000, (c.population or 0) // 3) for c in counties])
    urban = np.array([c.name.endswith("区") for c in counties])
    base = np.clip(np.where(urban, 0.78, 0.42) + rng.normal(0, 0.06, len(counties)), 0.05, 0.98)
    # Scale so that the widest network reaches 55.1 % of the province's households in
    # November, and a little less a month before.
    target = GIGABIT_COVERAGE_NOV_2021 * (0.97 if period_index == 0 else 1.0)
    share = base * target * households.sum() / (base * households).sum()
    passed = np.round(households * share * FIBRE_REACH[operator]).astype(int)
    total_subs = np.round(households * 0.33).astype(int)
    return pa.table(
        {
            "county_code": [c.code for c in counties],
            "month": [f"{PERIODS[period_index]}-01"] * len(counties),
            "households": households,
            "households_10g_pon": passed,
            "pon_ports_10g": passed // 32,
            "pon_ports_total": households // 12,
            "subscribers_gigabit": np.round(total_subs * 0.06).astype(int),
            "subscribers_500m": np.round(total_subs * 0.13).astype(int),
            "subscribers_total": total_subs,
        }
    )


def targets(province: Province) -> pa.Table:
    """The administration's 2022 targets (source figures) and a 2021 new-site target."""
    cities = province.regions.cities
    people = np.array([c.population or 0 for c in cities], dtype=float)
    rows: list[tuple[str, int, str, float]] = [
        (province.regions.province.code, 2022, "new_5g_sites", 30_000 * province.factor),
        (province.regions.province.code, 2022, "corridor_coverage", 0.99),
        (province.regions.province.code, 2022, "key_area_coverage", 0.98),
        # not in the source: a demo target for 2021, so that progress can be followed
        (province.regions.province.code, 2021, "new_5g_sites", 24_000 * province.factor),
    ]
    share = people / people.sum() if people.sum() else np.full(len(cities), 1 / len(cities))
    rows += [
        (c.code, 2022, "new_5g_sites", round(30_000 * province.factor * s))
        for c, s in zip(cities, share, strict=True)
    ]
    return pa.table(
        {
            "region_code": [r[0] for r in rows],
            "year": [r[1] for r in rows],
            "indicator": [r[2] for r in rows],
            "value": [float(r[3]) for r in rows],
        }
    )


def projects(province: Province) -> pa.Table:
    """Universal-service projects: batch 6 done and accepted, batch 7 under way."""
    rng = province.rng("buildout.projects")
    counties = [c for c in province.regions.counties if not c.name.endswith("区")]
    n = max(30, round(1500 * province.factor))
    batch = np.where(rng.random(n) < 0.6, 6, 7)
    status = np.where(
        batch == 6,
        "accepted",
        rng.choice(["planned", "under_construction", "completed"], n, p=[0.2, 0.5, 0.3]),
    )
    where = rng.integers(0, len(counties), n)
    return pa.table(
        {
            "project_id": [f"US{b}-{i:05d}" for i, b in enumerate(batch)],
            "batch": batch,
            "village": [f"{counties[w].name}第{i % 40 + 1}村" for i, w in enumerate(where)],
            "county_code": [counties[w].code for w in where],
            "kind": rng.choice(["fibre", "4G", "5G"], n, p=[0.4, 0.45, 0.15]),
            "status": status,
            "start_date": np.where(batch == 6, "2020-04-01", "2021-06-01"),
            "completion_date": nullable(
                np.where(batch == 6, "2020-12-20", "2021-11-10"),
                np.isin(status, ["completed", "accepted"]),
            ),
        }
    )


OBSTACLE_KINDS = {
    "planning": ("自然资源局", "站址未纳入专项规划，需调整规划"),
    "power": ("供电公司", "市电引入困难，需协调供电"),
    "land": ("住建局", "物业拒绝进场，需协调入场"),
    "approval": ("行政审批局", "审批手续办理缓慢"),
    "works": ("交通运输局", "施工涉及道路开挖，需协调施工许可"),
}


def obstacles(province: Province, operator: str) -> pa.Table:
    """Problems an operator reports for sites under construction."""
    rng = province.rng(f"buildout.obstacles.{operator}")
    sites = province.sites
    waiting = np.flatnonzero((sites.operator == operator) & (sites.in_service_from >= 1))
    n = min(len(waiting), max(3, round(400 * OPERATOR_SHARES[operator] * province.factor * 10)))
    chosen = rng.choice(waiting, n, replace=False) if n else np.array([], dtype=int)
    kinds = rng.choice(list(OBSTACLE_KINDS), n)
    days = rng.integers(0, 60, n)
    return pa.table(
        {
            "obstacle_id": [f"{operator}-OB{i:04d}" for i in range(n)],
            "site_id": sites.site_id[chosen],
            "county_code": sites.county_code[chosen],
            "kind": kinds,
            "description": [OBSTACLE_KINDS[k][1] for k in kinds],
            "department": [OBSTACLE_KINDS[k][0] for k in kinds],
            "reported_date": [
                str(np.datetime64("2021-11-30") - np.timedelta64(int(d), "D")) for d in days
            ],
        }
    )


def synthesize_reference(province: Province, out: Path) -> list[OperatorFile]:
    """Fibre reports, targets, universal-service projects and site-obstacle reports."""
    files = [
        OperatorFile(
            "fibre",
            operator,
            period,
            write_csv(fibre(province, operator, index), out / operator / period / "fibre.csv"),
        )
        for index, period in enumerate(PERIODS)
        for operator in FIBRE_REACH
    ]
    files.append(
        OperatorFile(
            "targets", "CA", PERIODS[-1], write_csv(targets(province), out / "CA" / "targets.csv")
        )
    )
    files.append(
        OperatorFile(
            "universal_service",
            "CA",
            PERIODS[-1],
            write_xlsx(projects(province), out / "CA" / "universal_service.xlsx"),
        )
    )
    files += [
        OperatorFile(
            "site_obstacles",
            operator,
            PERIODS[-1],
            write_csv(
                obstacles(province, operator), out / operator / PERIODS[-1] / "obstacles.csv"
            ),
        )
        for operator in OPERATOR_SHARES
    ]
    return files
