"""Ingest benchmark: a CDR-shaped CSV through validation, pseudonymisation and the Parquet write.

Prints the ingest time next to a bare DuckDB ``COPY (SELECT * FROM read_csv(...)) TO
parquet`` of the same file, measured in the same run.

    .venv/bin/python benchmarks/ingest_cdr.py --rows 10000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from telereg import registry
from telereg.core.principal import cli_principal
from telereg.core.settings import load_settings
from telereg.ingest.service import ingest_file
from telereg.scenario.demo import prepare

CELLS = 2000
SUBSCRIBERS = 500_000


def generate(workdir: Path, rows: int, *, imei: bool = True) -> tuple[Path, Path]:
    """A month of calls among SUBSCRIBERS numbers over CELLS cells (DuckDB writes it).

    Without ``imei`` the file has the two phone-number columns as its only identifiers.
    """
    cells = workdir / "cells.csv"
    cdr = workdir / "cdr.csv"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (SELECT printf('C%06d', i) AS cell_id, printf('S%05d', i // 3) AS site_id,
                     round(111.5 + random() * 2, 5) AS longitude,
                     round(36.0 + random() * 3, 5) AS latitude,
                     '140100' AS city_code,
                     CASE WHEN i % 2 = 0 THEN '5G' ELSE '4G' END AS technology
              FROM range({CELLS}) t(i)) TO '{cells}' (HEADER)
        """
    )
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""
        COPY (SELECT (13800000000 + a)::VARCHAR AS caller,
                     (13800000000 + (random() * {SUBSCRIBERS})::BIGINT)::VARCHAR AS callee,
                     TIMESTAMP '2021-11-01'
                       + to_seconds((random() * 2591999)::BIGINT) AS start_time,
                     (random() * 600)::INTEGER AS duration_s,
                     CASE WHEN random() < 0.5 THEN 'MO' ELSE 'MT' END AS direction,
                     printf('C%06d', (random() * {CELLS - 1})::INTEGER) AS cell_id,
                     -- one handset per subscriber, as in a real network; some records lack it
                     {
            "CASE WHEN random() < 0.7 THEN (860000000000000 + a)::VARCHAR END AS imei"
            if imei
            else "NULL::VARCHAR AS imei"
        }
              FROM (SELECT (random() * {SUBSCRIBERS})::BIGINT AS a FROM range({rows})))
        TO '{cdr}' (HEADER)
        """
    )
    return cells, cdr


def bare_copy(cdr: Path, out: Path) -> float:
    start = time.perf_counter()
    duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{cdr}')) TO '{out}' (FORMAT parquet)")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--imei", action="store_true", help="add IMEIs: a third identifier column to pseudonymise"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="telereg-bench-") as tmp:
        workdir = Path(tmp)
        print(f"generating {args.rows:,} CDR rows …", flush=True)
        cells, cdr = generate(workdir, args.rows, imei=args.imei)
        size_mb = cdr.stat().st_size / 1e6
        settings = load_settings(data_dir=workdir / "var")
        principal = cli_principal("bench")
        prepare(settings, principal=principal)
        ingest_file(
            settings,
            principal=principal,
            contract=registry.contract("cells"),
            path=cells,
            filename="cells.csv",
            operator="CMCC",
            period="2021-11",
        )
        reference = bare_copy(cdr, workdir / "bare.parquet")
        stages: list[tuple[str, float]] = []
        start = time.perf_counter()
        record = ingest_file(
            settings,
            principal=principal,
            contract=registry.contract("voice_cdr"),
            path=cdr,
            filename="cdr.csv",
            operator="CMCC",
            period="2021-11",
            progress=lambda stage: stages.append((stage, time.perf_counter() - start)),
        )
        elapsed = time.perf_counter() - start
        assert record.rows_accepted == args.rows, record
        rate = args.rows / elapsed
        print(f"file: {size_mb:,.0f} MB, {args.rows:,} rows")
        print("stages: " + ", ".join(f"{name} @ {t:.1f}s" for name, t in stages))
        print(f"bare DuckDB COPY read_csv → parquet : {reference:6.2f} s")
        print(
            f"telereg ingest (validate, pseudonymise {3 if args.imei else 2} identifier columns, "
            "write, vault): "
            f"{elapsed:6.2f} s = {rate / 1e6:.2f} M rows/s = "
            f"{elapsed / reference:.2f}× the bare copy"
        )
        ok = rate >= 1e6 and elapsed <= 2.5 * reference
        print("target (≥ 1 M rows/s and ≤ 2.5× bare copy):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
