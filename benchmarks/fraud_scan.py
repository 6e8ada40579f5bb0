"""Anti-fraud feature scan: ``line_features`` over a month of CDRs in the lake's Parquet shape.

Generates (with DuckDB) ``--rows`` voice CDRs of a mid-size city as several Parquet files,
with cells, SMS, data sessions and the gateway TAC list beside them, then measures in the
same run:

* a bare DuckDB single pass over the same files (``GROUP BY caller`` with ``count(*)``,
  ``count(DISTINCT callee)`` and ``sum(duration_s)``, materialised as a temp table): the
  reference;
* ``telereg.domains.fraud.features.line_features`` on an Ibis DuckDB backend over the same
  files, materialised the same way, then the rule scores (``scoring.rule_scores`` over the
  features read into pandas, as the fraud scan does), with the peak RSS of the process (each
  step runs in a fresh child process);
* on a ``--pg-rows`` subset, the same features written by hand in PostgreSQL SQL (load not
  timed) against ``line_features`` on the same subset; the two results are compared.

DuckDB runs with ``memory_limit`` 6GB and spills to ``<workdir>/duckdb-spill``; the parent
polls each step's RSS and spill size, so a step that fails still reports them. At 100 M rows
the files take 6.4 GB (zstd, as the lake) and ``line_features`` spills about 7 GB; keep 20 GB
free.

    .venv/bin/python benchmarks/fraud_scan.py                     # 100 M rows, 10 M in PostgreSQL
    .venv/bin/python benchmarks/fraud_scan.py --rows 2000000 --pg-rows 500000   # a quick check
    .venv/bin/python benchmarks/fraud_scan.py --workdir DIR --skip-scan  # PostgreSQL part only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

OPERATOR = "CMCC"
PERIOD = "2021-11"
HOME_PROVINCE = "140000"
MID_LATITUDE = 37.85
#: Lines of the operator in the city; the first GATEWAY_LINES are cards in SIM boxes and the
#: next BUSY_LINES call a lot (sales staff, small businesses); the rest are ordinary.
SUBSCRIBERS = 2_000_000
GATEWAY_LINES = 10_000
GATEWAY_PORTS = 16
BUSY_LINES = 60_000
#: Shares of calls made by SIM-box cards and by busy lines.
GATEWAY_CALL_SHARE = 0.05
BUSY_CALL_SHARE = 0.25
CELLS = 6_000
#: Numbers outside the operator's subscribers in the city (other operators, provinces).
OUTSIDE_NUMBERS = 20_000_000
OTHER_PROVINCES = ("110000", "310000", "440000", "350000", "450000", "510000", "530000", "460000")
FILES = 10
#: How the ingest writes the lake's files (``ingest.service``).
PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
DUCKDB_MEMORY_LIMIT = "6GB"
DUCKDB_THREADS = os.cpu_count() or 2
#: What a step returns (figures, checks), as JSON-able values.
Result = dict[str, Any]
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"

TARGET_RATIO = 3.0
TARGET_PEAK_GIB = 8.0
TARGET_SPEEDUP = 10.0

CDR_COLUMNS = (
    "source_row",
    "caller",
    "callee",
    "start_time",
    "duration_s",
    "direction",
    "cell_id",
    "imei",
    "imei_tac",
    "peer_operator",
    "peer_province",
    "operator",
    "period",
)


# --- generation ----------------------------------------------------------------------------


def _cdr_sql(first: int, rows: int) -> str:
    """``rows`` calls; ``first`` shifts the seed so files differ. Tokens are md5 hex (32 chars)."""
    ordinary = SUBSCRIBERS - GATEWAY_LINES - BUSY_LINES
    provinces = "[" + ", ".join(f"'{p}'" for p in OTHER_PROVINCES) + "]"
    n_prov = len(OTHER_PROVINCES)
    return f"""
    WITH r AS (
        SELECT {first} + i AS g, i + 1 AS source_row,
               random() AS u_class, random() AS u_line, random() AS u_kind,
               random() AS u_callee, random() AS u_day, random() AS u_time,
               random() AS u_dur, random() AS u_cell, random() AS u_imei, random() AS u_port,
               random() AS u_peer
        FROM range({rows}) t(i)
    ), s AS (
        SELECT *,
            CASE WHEN u_class < {GATEWAY_CALL_SHARE}
                   THEN floor(u_line * {GATEWAY_LINES})
                 WHEN u_class < {GATEWAY_CALL_SHARE + BUSY_CALL_SHARE}
                   THEN {GATEWAY_LINES} + floor(u_line * {BUSY_LINES})
                 ELSE {GATEWAY_LINES + BUSY_LINES} + floor(u_line * {ordinary})
            END::BIGINT AS line,
            floor(u_day * 30)::BIGINT AS d
        FROM r
    ), k AS (
        SELECT *, line < {GATEWAY_LINES} AS gw, line // {GATEWAY_PORTS} AS box,
            -- the other party: a subscriber of the city, or an outside number (for SIM-box
            -- cards, nearly always an outside number in another province)
            CASE WHEN line < {GATEWAY_LINES} THEN u_kind < 0.05 ELSE u_kind < 0.65 END AS local,
            CASE WHEN line < {GATEWAY_LINES}
                   THEN floor(u_callee * {OUTSIDE_NUMBERS // 10}) * 10 + 6 + floor(u_peer * 4)
                 ELSE floor(u_callee * {OUTSIDE_NUMBERS})
            END::BIGINT AS outside
        FROM s
    ), c AS (
        SELECT *,
            {GATEWAY_LINES} + floor(u_callee * {SUBSCRIBERS - GATEWAY_LINES})::BIGINT AS peer,
            CASE WHEN gw THEN (box * 7919) % {CELLS} ELSE (line * 7919) % {CELLS} END AS home,
            -- a SIM box switches on and off at about the same time every day (per box and day)
            8 * 3600 + ((box * 31 + d * 17) % 120) * 60 AS box_on
        FROM k
    )
    SELECT source_row,
        md5(line::VARCHAR) AS caller,
        CASE WHEN local THEN md5(peer::VARCHAR) ELSE md5('x' || outside) END AS callee,
        TIMESTAMP '2021-11-01' + to_seconds(d * 86400 + CASE
            WHEN NOT gw THEN 7 * 3600 + floor(u_time * 16 * 3600)::BIGINT
            WHEN u_time < 0.1 THEN box_on + floor(u_time * 1200)::BIGINT
            WHEN u_time >= 0.9 THEN box_on + 36000 - floor((u_time - 0.9) * 1200)::BIGINT
            ELSE box_on + floor(u_time * 36000)::BIGINT
        END) AS start_time,
        CASE WHEN gw AND u_dur < 0.6 THEN floor(u_dur * 40)
             WHEN gw THEN floor(-ln(1 - u_dur) * 40)
             ELSE least(floor(-ln(1 - u_dur) * 90), 7200)
        END::BIGINT AS duration_s,
        'MO' AS direction,
        printf('C%06d', CASE WHEN gw OR u_cell < 0.8 THEN home
                             ELSE (home + floor(u_cell * 20)::BIGINT - 10 + {CELLS}) % {CELLS}
                        END) AS cell_id,
        CASE WHEN gw THEN md5('gw' || box || '-' || floor(u_port * 4)::BIGINT)
             WHEN u_imei >= 0.03 THEN md5('imei' || line)
        END AS imei,
        CASE WHEN gw AND box % 10 < 8 THEN CASE WHEN box % 2 = 0 THEN '86201803'
                                                ELSE '86201804' END
             WHEN gw THEN '86950312'
             WHEN u_imei >= 0.03 THEN printf('35%06d', (line * 13) % 1000)
        END AS imei_tac,
        CASE WHEN u_peer < 0.01 AND NOT gw THEN NULL
             WHEN local THEN '{OPERATOR}'
             ELSE ['CUCC', 'CUCC', 'CUCC', 'CUCC', 'CUCC', 'CUCC', 'CUCC', 'CUCC', 'CUCC',
                   'CTCC', 'CTCC', 'CTCC', 'CTCC', 'CTCC', 'CTCC', 'CTCC', 'CTCC', 'CBN',
                   'OTHER', 'OTHER'][(outside // 100) % 20 + 1]
        END AS peer_operator,
        CASE WHEN u_peer < 0.01 AND NOT gw THEN NULL
             WHEN local OR outside % 10 < 6 THEN '{HOME_PROVINCE}'
             ELSE {provinces}[(outside // 10) % {n_prov} + 1]
        END AS peer_province,
        '{OPERATOR}' AS operator, '{PERIOD}' AS period
    FROM c
    """


def generate(workdir: Path, rows: int, files: int) -> dict[str, list[str]]:
    """The lake-shaped Parquet files; returns dataset name → file paths."""
    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    con.execute("SELECT setseed(0.2021)")
    cdr_dir = workdir / "voice_cdr"
    cdr_dir.mkdir(parents=True, exist_ok=True)
    per_file = math.ceil(rows / files)
    paths: dict[str, list[str]] = {"voice_cdr": []}
    first = 0
    for k in range(files):
        n = min(per_file, rows - first)
        if n <= 0:
            break
        path = cdr_dir / f"part-{k:03d}.parquet"
        select = _cdr_sql(first, n)
        columns = ", ".join(CDR_COLUMNS)
        con.execute(f"COPY (SELECT {columns} FROM ({select})) TO '{path}' ({PARQUET})")
        paths["voice_cdr"].append(str(path))
        first += n
        print(f"  {path.name}: {first:,} rows", flush=True)

    cells = workdir / "cells.parquet"
    con.execute(
        f"""
        COPY (SELECT i + 1 AS source_row, printf('C%06d', i) AS cell_id,
                     printf('S%05d', i // 3) AS site_id,
                     round(112.30 + random() * 0.60, 6) AS longitude,
                     round(37.60 + random() * 0.50, 6) AS latitude,
                     '140100' AS city_code,
                     CASE WHEN i % 3 = 0 THEN '5G' ELSE '4G' END AS technology,
                     '{OPERATOR}' AS operator, '{PERIOD}' AS period
              FROM range({CELLS}) t(i)) TO '{cells}' ({PARQUET})
        """
    )
    paths["cells"] = [str(cells)]

    # SIM-box cards neither message nor browse.
    people = SUBSCRIBERS - GATEWAY_LINES
    side_rows = max(rows // 20, 1000)
    sms = workdir / "sms.parquet"
    con.execute(
        f"""
        COPY (SELECT i + 1 AS source_row,
                     md5(({GATEWAY_LINES} + floor(random() * {people})::BIGINT)::VARCHAR)
                       AS sender,
                     CASE WHEN random() < 0.7
                          THEN md5(({GATEWAY_LINES} + floor(random() * {people})::BIGINT)::VARCHAR)
                          ELSE md5('x' || floor(random() * {OUTSIDE_NUMBERS})::BIGINT) END
                       AS receiver,
                     TIMESTAMP '2021-11-01' + to_seconds(floor(random() * 2592000)::BIGINT)
                       AS sent_at,
                     'MO' AS direction, '{OPERATOR}' AS operator, '{PERIOD}' AS period
              FROM range({side_rows}) t(i)) TO '{sms}' ({PARQUET})
        """
    )
    paths["sms"] = [str(sms)]
    data = workdir / "data_sessions.parquet"
    con.execute(
        f"""
        COPY (SELECT i + 1 AS source_row,
                     md5(({GATEWAY_LINES} + floor(random() * {people})::BIGINT)::VARCHAR)
                       AS phone,
                     (DATE '2021-11-01' + floor(random() * 30)::INTEGER) AS day,
                     floor(random() * 5e8)::BIGINT AS bytes,
                     ['video', 'chat', 'payment', 'browsing', NULL][floor(random() * 5)::INT + 1]
                       AS app_category,
                     '{OPERATOR}' AS operator, '{PERIOD}' AS period
              FROM range({side_rows}) t(i)) TO '{data}' ({PARQUET})
        """
    )
    paths["data_sessions"] = [str(data)]

    from telereg.reference.lists import gateway_tacs

    tacs = workdir / "gateway_tacs.parquet"
    values = ", ".join(f"('{m.tac}', {m.ports})" for m in gateway_tacs())
    con.execute(
        f"COPY (SELECT * FROM (VALUES {values}) t(tac, ports)) TO '{tacs}' (FORMAT parquet)"
    )
    paths["gateway_tacs"] = [str(tacs)]
    con.close()
    return paths


def subset(workdir: Path, paths: dict[str, list[str]], rows: int) -> dict[str, list[str]]:
    """The first ``rows`` calls (in file order) as one file; the other datasets unchanged."""
    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    target = workdir / "pg_subset" / "voice_cdr.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    parts, left = [], rows
    for path in paths["voice_cdr"]:
        if left <= 0:
            break
        parts.append(f"SELECT * FROM read_parquet('{path}') WHERE source_row <= {left}")
        (count,) = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()  # type: ignore[misc]
        left -= count
    con.execute(f"COPY ({' UNION ALL '.join(parts)}) TO '{target}' ({PARQUET})")
    con.close()
    return {**paths, "voice_cdr": [str(target)]}


# --- the two DuckDB steps, each in its own process -----------------------------------------

FEATURE_CHECKS = """
    count(*) AS lines, sum(calls_out) AS calls_out, sum(calls_in) AS calls_in,
    sum(active_days) AS active_days, sum(callees) AS callees, sum(cells) AS cells,
    sum(sms) AS sms, sum(data_days) AS data_days, sum(imei_lines) AS imei_lines,
    count(*) FILTER (WHERE gateway_tac) AS gateway_tac_lines,
    count(*) FILTER (WHERE cohort_days > 0) AS cohort_lines, sum(cohort_days) AS cohort_days,
    sum(calls_per_day) AS calls_per_day, sum(out_in_ratio) AS out_in_ratio,
    sum(novelty) AS novelty, sum(other_operator_share) AS other_operator_share,
    sum(other_province_share) AS other_province_share,
    sum(mean_duration_s) AS mean_duration_s, sum(short_share) AS short_share,
    sum(radius_km) AS radius_km
"""


def _duckdb_config(workdir: Path) -> dict[str, Any]:
    spill = workdir / "duckdb-spill"
    spill.mkdir(exist_ok=True)
    return {
        "memory_limit": DUCKDB_MEMORY_LIMIT,
        "temp_directory": str(spill),
        "threads": DUCKDB_THREADS,
    }


def step_bare(workdir: Path, paths: dict[str, list[str]]) -> Result:
    con = duckdb.connect(config=_duckdb_config(workdir))
    files = "[" + ", ".join(f"'{p}'" for p in paths["voice_cdr"]) + "]"
    start = time.perf_counter()
    con.execute(
        f"""
        CREATE TEMP TABLE per_caller AS
        SELECT caller, count(*) AS calls, count(DISTINCT callee) AS callees,
               sum(duration_s) AS duration_s
        FROM read_parquet({files}) GROUP BY caller
        """
    )
    elapsed = time.perf_counter() - start
    (lines,) = con.execute("SELECT count(*) FROM per_caller").fetchone()  # type: ignore[misc]
    return {"seconds": elapsed, "lines": lines}


def step_telereg(workdir: Path, paths: dict[str, list[str]], profile: str | None = None) -> Result:
    import ibis

    from telereg.core.engine import read_parquet_files
    from telereg.domains.fraud.features import line_features

    backend = ibis.duckdb.connect(**_duckdb_config(workdir))
    if profile:
        backend.raw_sql("PRAGMA enable_profiling = 'json'")
        backend.raw_sql(f"PRAGMA profiling_output = '{profile}'")
    start = time.perf_counter()
    with line_features(
        read_parquet_files(backend, paths["voice_cdr"]),
        read_parquet_files(backend, paths["cells"]),
        read_parquet_files(backend, paths["sms"]),
        read_parquet_files(backend, paths["data_sessions"]),
        read_parquet_files(backend, paths["gateway_tacs"]),
        home_province=HOME_PROVINCE,
        mid_latitude=MID_LATITUDE,
    ) as expr:
        # (entering the context runs the two groupings it computes beforehand)
        computed = time.perf_counter() - start
        backend.create_table("features", expr, temp=True)
    elapsed = time.perf_counter() - start
    if profile:
        backend.raw_sql("PRAGMA disable_profiling")
    cur = backend.raw_sql(f"SELECT {FEATURE_CHECKS} FROM features")
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return {
        "seconds": elapsed,
        "computed_seconds": computed,
        "checks": dict(zip(names, row, strict=True)),
        **_score(backend),
    }


def _score(backend: Any) -> Result:
    """The rule scores over the materialised features, as the fraud scan computes them.

    (The learned scorer needs an earlier period's features and police feedback: not here.)
    """
    from telereg.core.engine import to_frame
    from telereg.core.settings import Settings
    from telereg.domains.fraud.scoring import rule_scores, rule_suspects

    threshold = Settings.model_fields["fraud_rule_score_threshold"].default
    start = time.perf_counter()
    frame = to_frame(backend.table("features"))
    scored = rule_scores(frame, {})
    suspect = rule_suspects(scored, threshold)
    elapsed = time.perf_counter() - start
    planted = {r[0] for r in backend.raw_sql(_PLANTED).fetchall()}
    lines = scored.loc[suspect, "line"]
    return {
        "score_seconds": elapsed,
        "suspects": int(suspect.sum()),
        "suspects_planted": int(lines.isin(planted).sum()),
    }


#: The planted SIM-box cards' tokens.
_PLANTED = f"SELECT md5(i::VARCHAR) FROM range({GATEWAY_LINES}) t(i)"


def _rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for row in status.splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    return 0


def _disk_bytes(directory: Path) -> int:
    """Bytes on disk of the files in ``directory`` (DuckDB's spill files)."""
    total = 0
    for path in directory.glob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_blocks * 512
    return total


def run_child(
    step: str, workdir: Path, paths: dict[str, list[str]], profile: Path | None = None
) -> Result:
    """Run a step in a fresh interpreter; its result, peak RSS and peak spill.

    The child reports its own peak RSS (``getrusage``); the parent also polls the child's RSS
    and the size of DuckDB's temp directory, so a step that fails still has figures.
    """
    out = workdir / f"result-{step}.json"
    out.unlink(missing_ok=True)
    spec = json.dumps(
        {
            "step": step,
            "workdir": str(workdir),
            "paths": paths,
            "out": str(out),
            "profile": str(profile) if profile else None,
        }
    )
    spill = workdir / "duckdb-spill"
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--child", spec])
    peak_rss = peak_spill = 0
    while child.poll() is None:
        peak_rss = max(peak_rss, _rss_bytes(child.pid))
        peak_spill = max(peak_spill, _disk_bytes(spill))
        time.sleep(0.5)
    wall = time.perf_counter() - start
    result: Result = json.loads(out.read_text()) if out.exists() else {}
    out.unlink(missing_ok=True)
    if child.returncode != 0:
        result.setdefault("error", f"exit status {child.returncode}")
    result.setdefault("peak_rss_gib", peak_rss / 2**30)
    result["wall_seconds"] = wall
    result["peak_spill_gib"] = peak_spill / 2**30
    return result


def child_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    workdir, paths = Path(spec["workdir"]), spec["paths"]
    try:
        if spec["step"] == "bare":
            result = step_bare(workdir, paths)
        else:
            result = step_telereg(workdir, paths, spec["profile"])
    except Exception as err:
        Path(spec["out"]).write_text(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        raise
    # The whole process (Python, Ibis, DuckDB's buffers): peak resident set, KiB on Linux.
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    Path(spec["out"]).write_text(json.dumps(result, default=float))


# --- PostgreSQL ----------------------------------------------------------------------------

PG_TABLES = {
    "voice_cdr": (
        "source_row bigint, caller text, callee text, start_time timestamp, duration_s bigint, "
        "direction text, cell_id text, imei text, imei_tac text, peer_operator text, "
        "peer_province text, operator text, period text"
    ),
    "cells": (
        "source_row bigint, cell_id text, site_id text, longitude double precision, "
        "latitude double precision, city_code text, technology text, operator text, period text"
    ),
    "sms": (
        "source_row bigint, sender text, receiver text, sent_at timestamp, direction text, "
        "operator text, period text"
    ),
    "data_sessions": (
        "source_row bigint, phone text, day date, bytes bigint, app_category text, "
        "operator text, period text"
    ),
    "gateway_tacs": "tac text, ports integer",
}


def pg_features_sql() -> str:
    """``line_features`` written by hand for PostgreSQL (same joins, counts and cohort join)."""
    from telereg.domains.fraud import features as f
    from telereg.domains.fraud import parameters as fp

    scale = f._KM_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(MID_LATITUDE))
    lat = f._KM_PER_DEGREE_LAT
    return f"""
    WITH calls AS (
        SELECT *, start_time::date AS day FROM voice_cdr WHERE direction IS DISTINCT FROM 'MT'
    ), located AS (
        SELECT c.*, w.longitude * {scale!r} AS x_km, w.latitude * {lat!r} AS y_km
        FROM calls c LEFT JOIN cells w ON c.operator = w.operator AND c.cell_id = w.cell_id
    ), outgoing AS (
        SELECT operator, caller,
            count(*) AS calls_out,
            count(DISTINCT day) AS active_days,
            count(DISTINCT callee) AS callees,
            avg((peer_operator IS NOT NULL AND peer_operator <> operator)::int)
                AS other_operator_share,
            avg((peer_province IS NOT NULL AND peer_province <> '{HOME_PROVINCE}')::int)
                AS other_province_share,
            avg(duration_s) AS mean_duration_s,
            avg((duration_s < {fp.SHORT_CALL_S})::int) AS short_share,
            count(DISTINCT cell_id) AS cells,
            avg(x_km) AS mean_x, avg(y_km) AS mean_y,
            avg(x_km * x_km) AS mean_x2, avg(y_km * y_km) AS mean_y2
        FROM located GROUP BY operator, caller
    ), incoming AS (
        SELECT callee AS line,
               greatest(count(*) FILTER (WHERE direction IS DISTINCT FROM 'MT'),
                        count(*) FILTER (WHERE direction = 'MT')) AS calls_in
        FROM voice_cdr GROUP BY callee
    ), texts AS (
        SELECT line, count(*) AS sms
        FROM (SELECT sender AS line FROM sms UNION ALL SELECT receiver FROM sms) e
        GROUP BY line
    ), data_days AS (
        SELECT phone AS line, count(DISTINCT day) AS data_days FROM data_sessions GROUP BY phone
    ), pairs AS (
        SELECT DISTINCT operator, caller AS line, imei, imei_tac AS tac
        FROM calls WHERE imei IS NOT NULL
    ), per_imei AS (
        SELECT imei, count(DISTINCT line) AS imei_lines FROM pairs GROUP BY imei
    ), devices AS (
        SELECT p.operator, p.line, max(i.imei_lines) AS imei_lines,
               bool_or(l.tac IS NOT NULL) AS gateway_tac
        FROM pairs p
        LEFT JOIN per_imei i ON p.imei = i.imei
        LEFT JOIN (SELECT DISTINCT tac FROM gateway_tacs) l ON p.tac = l.tac
        GROUP BY p.operator, p.line
    ), days AS (
        SELECT operator, caller, day,
               min(extract(epoch FROM start_time))::bigint AS first,
               max(extract(epoch FROM start_time))::bigint AS last,
               min(cell_id) AS cell, count(*) AS n
        FROM calls GROUP BY operator, caller, day
    ), busy AS (
        SELECT * FROM days WHERE n >= {fp.COHORT_MIN_CALLS}
    ), peers AS (
        SELECT a.operator, a.caller, a.day, count(DISTINCT b.caller) AS peers
        FROM busy a JOIN busy b
          ON a.operator = b.operator AND a.day = b.day AND a.cell = b.cell
         AND a.caller <> b.caller
         AND abs(a.first - b.first) <= {fp.COHORT_WINDOW_S}
         AND abs(a.last - b.last) <= {fp.COHORT_WINDOW_S}
        GROUP BY a.operator, a.caller, a.day
    ), cohorts AS (
        SELECT operator, caller AS line, count(DISTINCT day) AS cohort_days
        FROM peers WHERE peers >= {fp.COHORT_MIN_PEERS} GROUP BY operator, caller
    ), joined AS (
        SELECT o.*, i.calls_in, t.sms, dd.data_days, dv.imei_lines, dv.gateway_tac,
               ch.cohort_days,
               o.mean_x2 - o.mean_x * o.mean_x + o.mean_y2 - o.mean_y * o.mean_y AS variance
        FROM outgoing o
        LEFT JOIN incoming i ON o.caller = i.line
        LEFT JOIN texts t ON o.caller = t.line
        LEFT JOIN data_days dd ON o.caller = dd.line
        LEFT JOIN devices dv ON o.operator = dv.operator AND o.caller = dv.line
        LEFT JOIN cohorts ch ON o.operator = ch.operator AND o.caller = ch.line
    )
    SELECT operator, caller AS line, calls_out, active_days,
        calls_out::float8 / active_days AS calls_per_day,
        coalesce(calls_in, 0) AS calls_in,
        calls_out::float8 / (coalesce(calls_in, 0) + 1) AS out_in_ratio,
        callees, callees::float8 / calls_out AS novelty,
        other_operator_share, other_province_share, mean_duration_s, short_share, cells,
        sqrt(CASE WHEN variance < 0 THEN 0 ELSE variance END) AS radius_km,
        coalesce(sms, 0) AS sms, coalesce(data_days, 0) AS data_days,
        coalesce(imei_lines, 0) AS imei_lines, coalesce(gateway_tac, false) AS gateway_tac,
        coalesce(cohort_days, 0) AS cohort_days
    FROM joined
    """


def run_postgres(workdir: Path, paths: dict[str, list[str]], dsn: str, work_mem: str) -> Result:
    """Load the subset into a fresh schema (not timed), compute the features, drop the schema."""
    import psycopg

    schema = f"fraud_bench_{os.getpid()}"
    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        try:
            pg.execute(f"SET search_path TO {schema}")
            load_start = time.perf_counter()
            for name, columns in PG_TABLES.items():
                pg.execute(f"CREATE UNLOGGED TABLE {name} ({columns})")
                csv = workdir / f"pg_{name}.csv"
                names = ", ".join(c.split()[0] for c in columns.split(", "))
                files = "[" + ", ".join(f"'{p}'" for p in paths[name]) + "]"
                con.execute(
                    f"COPY (SELECT {names} FROM read_parquet({files})) TO '{csv}' (HEADER false)"
                )
                with (
                    pg.cursor() as cur,
                    cur.copy(f"COPY {name} ({names}) FROM STDIN (FORMAT csv)") as copy,
                    csv.open("rb") as source,
                ):
                    while chunk := source.read(1 << 20):
                        copy.write(chunk)
                csv.unlink()
                pg.execute(f"ANALYZE {name}")
            load = time.perf_counter() - load_start
            pg.execute(f"SET work_mem = '{work_mem}'")
            start = time.perf_counter()
            pg.execute(f"CREATE TEMP TABLE features AS {pg_features_sql()}")
            elapsed = time.perf_counter() - start
            cur = pg.execute(f"SELECT {FEATURE_CHECKS} FROM features")
            row = cur.fetchone()
            assert row is not None
            assert cur.description is not None
            checks = dict(zip([d.name for d in cur.description], row, strict=True))
            version = pg.execute("SHOW server_version").fetchone()
            pg.execute("DROP TABLE features")
        finally:
            pg.execute(f"DROP SCHEMA {schema} CASCADE")
    con.close()
    return {
        "seconds": elapsed,
        "load_seconds": load,
        "checks": {k: float(v) for k, v in checks.items()},
        "version": version[0] if version else "?",
    }


def print_profile(path: Path, top: int = 8) -> None:
    """The operators that took longest in DuckDB's profile (thread time summed)."""
    found: list[tuple[float, str, int, str]] = []

    def walk(node: Result) -> None:
        info = node.get("extra_info") or {}
        what = info.get("Aggregates") or info.get("Conditions") or info.get("Projections") or ""
        found.append(
            (
                float(node.get("operator_timing") or 0),
                str(node.get("operator_type") or node.get("operator_name") or "?"),
                int(node.get("operator_cardinality") or 0),
                str(what)[:70],
            )
        )
        for child in node.get("children", []):
            walk(child)

    walk(json.loads(path.read_text()))
    print(f"DuckDB profile of line_features ({path}), top operators by time:")
    for seconds, name, rows, what in sorted(found, reverse=True)[:top]:
        print(f"  {seconds:8.2f} s  {name:<16} {rows:>12,} rows  {what}")


def compare(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """Names of checks that differ beyond float rounding."""
    return [k for k in a if not math.isclose(float(a[k]), float(b[k]), rel_tol=1e-6, abs_tol=1e-6)]


# --- main ----------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000_000, help="CDR rows to scan")
    parser.add_argument("--pg-rows", type=int, default=10_000_000, help="PostgreSQL subset")
    parser.add_argument("--skip-pg", action="store_true", help="no PostgreSQL comparison")
    parser.add_argument(
        "--skip-scan", action="store_true", help="only the PostgreSQL comparison on the subset"
    )
    parser.add_argument("--files", type=int, default=FILES, help="Parquet files for the CDRs")
    parser.add_argument("--workdir", type=Path, help="keep generated files here (reused)")
    parser.add_argument("--pg-dsn", default=PG_DSN)
    parser.add_argument("--pg-work-mem", default="512MB", help="PostgreSQL work_mem")
    parser.add_argument(
        "--profile", action="store_true", help="profile line_features (slows it a little)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child)
        return
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="telereg-fraud-bench-") as tmp:
            run(args, Path(tmp))


def _step(label: str, step: str, workdir: Path, paths: dict[str, list[str]], **kw: Any) -> Result:
    print(f"{label} (load average {os.getloadavg()[0]:.2f}) …", flush=True)
    result = run_child(step, workdir, paths, **kw)
    if "error" in result:
        print(f"  FAILED after {result['wall_seconds']:.1f} s: {result['error']}", flush=True)
    else:
        print(f"  {result['seconds']:.2f} s", flush=True)
    print(
        f"  peak RSS {result['peak_rss_gib']:.2f} GiB, "
        f"peak spill {result['peak_spill_gib']:.2f} GiB",
        flush=True,
    )
    return result


def run(args: argparse.Namespace, workdir: Path) -> None:
    marker = workdir / f"generated-{args.rows}-{args.files}.json"
    if marker.exists():
        paths = json.loads(marker.read_text())
        print(f"reusing {args.rows:,} CDR rows in {workdir}", flush=True)
    else:
        print(f"generating {args.rows:,} CDR rows in {args.files} files …", flush=True)
        start = time.perf_counter()
        paths = generate(workdir, args.rows, args.files)
        marker.write_text(json.dumps(paths))
        print(f"  generated in {time.perf_counter() - start:.1f} s", flush=True)
    r: Result = {"paths": paths, "profile": None}
    if not args.skip_scan:
        r["load_before"] = os.getloadavg()[0]
        r["bare_before"] = _step("bare DuckDB pass", "bare", workdir, paths)
        r["profile"] = workdir / "profile-line_features.json" if args.profile else None
        r["tele"] = _step("telereg line_features", "telereg", workdir, paths, profile=r["profile"])
        r["bare_after"] = _step("bare DuckDB pass again", "bare", workdir, paths)
        r["load_after"] = os.getloadavg()[0]

    r["pg_rows"] = pg_rows = min(args.pg_rows, args.rows)
    if not args.skip_pg:
        sub_paths = subset(workdir, paths, pg_rows)
        r["sub"] = _step(
            f"telereg line_features on {pg_rows:,} rows", "telereg", workdir, sub_paths
        )
        print(f"PostgreSQL on {pg_rows:,} rows …", flush=True)
        r["pg"] = pg = run_postgres(workdir, sub_paths, args.pg_dsn, args.pg_work_mem)
        print(f"  {pg['seconds']:.2f} s (load {pg['load_seconds']:.1f} s)", flush=True)
    report(args, r)


def _line(name: str, figure: str, target: str = "", verdict: str = "") -> None:
    print(f"| {name:<52} | {figure:>15} | {target:>6} | {verdict:<7} |")


def _report_scan(r: Result) -> None:
    tele, bare_before, bare_after = r["tele"], r["bare_before"], r["bare_after"]
    bares = [b for b in (bare_before, bare_after) if "error" not in b]
    # the faster reference run makes the ratio the stricter one
    bare = min(bares, key=lambda x: x["seconds"]) if bares else None

    def seconds(result: Result) -> str:
        if "error" in result:
            return f"FAILED at {result['wall_seconds']:.0f}"
        return f"{result['seconds']:.2f}"

    _line(
        "bare DuckDB pass (GROUP BY caller), s: before/after",
        f"{seconds(bare_before)} / {seconds(bare_after)}",
    )
    _line("telereg line_features, s", seconds(tele))
    if "error" not in tele:
        _line("(of which the groupings computed first, s)", f"{tele['computed_seconds']:.2f}")
        _line("telereg rule scores (to pandas, score), s", f"{tele['score_seconds']:.2f}")
    if bare is None or "error" in tele:
        _line("ratio to the faster bare pass", "—", "≤ 3×", "MISSED" if bare else "")
    else:
        total = tele["seconds"] + tele["score_seconds"]
        _line("(features alone to the bare pass)", f"{tele['seconds'] / bare['seconds']:.2f}×")
        _line(
            "features and scores to the faster bare pass",
            f"{total / bare['seconds']:.2f}×",
            "≤ 3×",
            _verdict(total <= TARGET_RATIO * bare["seconds"]),
        )
    _line(
        "peak RSS of the features and scores process, GiB",
        f"{tele['peak_rss_gib']:.2f}",
        "< 8",
        _verdict(tele["peak_rss_gib"] < TARGET_PEAK_GIB and "error" not in tele),
    )
    _line("peak DuckDB spill of line_features, GiB", f"{tele['peak_spill_gib']:.2f}")
    if bare is not None:
        _line("(peak RSS of the bare pass process, GiB)", f"{bare['peak_rss_gib']:.2f}")
        _line("(peak DuckDB spill of the bare pass, GiB)", f"{bare['peak_spill_gib']:.2f}")


def _report_pg(args: argparse.Namespace, r: Result) -> None:
    pg, sub, rows = r["pg"], r["sub"], r["pg_rows"]
    _line(f"PostgreSQL features on {rows:,} rows, s", f"{pg['seconds']:.2f}")
    if "error" in sub:
        _line(f"telereg line_features on {rows:,} rows, s", "FAILED")
        return
    _line(f"telereg line_features on {rows:,} rows, s", f"{sub['seconds']:.2f}")
    speedup = pg["seconds"] / sub["seconds"]
    _line("speed-up over PostgreSQL", f"{speedup:.1f}×", "≥ 10×", _verdict(speedup >= 10))
    _line(f"(peak RSS of line_features on {rows:,} rows, GiB)", f"{sub['peak_rss_gib']:.2f}")
    differ = compare(sub["checks"], pg["checks"])
    print()
    print(
        f"PostgreSQL {pg['version']}, work_mem {args.pg_work_mem}, load (not timed) "
        f"{pg['load_seconds']:.1f} s; results "
        + ("agree" if not differ else "DIFFER in " + ", ".join(differ))
        + f" ({sub['checks']['lines']:,.0f} lines, "
        f"{sub['checks']['cohort_lines']:,.0f} with cohort days)"
    )
    for k in differ:
        print(f"  {k}: DuckDB {sub['checks'][k]!r}, PostgreSQL {pg['checks'][k]!r}")


def report(args: argparse.Namespace, r: Result) -> None:
    paths = r["paths"]
    size_gb = sum(Path(p).stat().st_size for p in paths["voice_cdr"]) / 1e9
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print()
    print(
        f"data: {args.rows:,} calls in {len(paths['voice_cdr'])} Parquet files ({size_gb:.2f} GB), "
        f"{SUBSCRIBERS:,} subscribers, {CELLS:,} cells, {GATEWAY_LINES:,} SIM-box cards planted"
    )
    print(
        f"engine: DuckDB {duckdb.__version__}, {DUCKDB_THREADS} threads, memory_limit "
        f"{DUCKDB_MEMORY_LIMIT}; machine: {os.cpu_count()} CPUs, {ram_gib:.1f} GiB RAM"
    )
    checks = r.get("tele", {}).get("checks")
    if checks:
        print(
            f"features: {checks['lines']:,.0f} calling lines, {checks['gateway_tac_lines']:,.0f} "
            f"on a gateway TAC, {checks['cohort_lines']:,.0f} with cohort days; "
            f"{r['tele']['suspects']:,} rule suspects, {r['tele']['suspects_planted']:,} of them "
            f"planted SIM-box cards"
        )
    print()
    print(f"| {'measure':<52} | {'figure':>15} | {'target':>6} | {'verdict':<7} |")
    print(f"| {'-' * 52} | {'-' * 15}:| {'-' * 6}:| {'-' * 7} |")
    if "tele" in r:
        _report_scan(r)
    if "pg" in r:
        _report_pg(args, r)
    else:
        _line("speed-up over PostgreSQL", "skipped")
    if "tele" in r:
        print(
            f"load average (1 min): {r['load_before']:.2f} before the DuckDB steps, "
            f"{r['load_after']:.2f} after"
        )
        if "error" in r["tele"]:
            print(f"line_features FAILED: {r['tele']['error']}")
    print("scores: the rule scores only (the learned scorer needs police feedback history)")
    if r["profile"] and r["profile"].exists():
        print()
        print_profile(r["profile"])


if __name__ == "__main__":
    main()
