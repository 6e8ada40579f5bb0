"""Ingest end to end: formats, validation reasons, duplicates, supersede, isolation, privacy."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from telereg import registry
from telereg.core.db import session_scope
from telereg.core.errors import ContractError, InputError, PermissionDeniedError
from telereg.core.i18n import localise
from telereg.core.models import AuditEntry
from telereg.core.periods import is_month
from telereg.core.permissions import Role
from telereg.core.privacy import Vault
from telereg.core.settings import Settings, load_settings
from telereg.ingest import lake, readers, reasons
from telereg.ingest.contracts import (
    Column,
    ColumnType,
    Contract,
    Form,
    RangeWhen,
    code_form,
    form_problem,
)
from telereg.ingest.models import Submission
from telereg.ingest.service import ingest_file
from telereg.ingest.submissions import error_report_csv, neutralise, quarantined_rows
from telereg.scenario.demo import prepare
from tests.conftest import ROOT, principal_of_role

CELLS_HEADER = "cell_id,site_id,longitude,latitude,city_code,technology\n"
CDR_HEADER = "caller,callee,start_time,duration_s,direction,cell_id,imei\n"


@pytest.fixture
def ready(settings: Settings, tmp_path: Path) -> Settings:
    """Operators seeded and CMCC's cells loaded, so CDRs can refer to them."""
    prepare(settings, principal=ROOT)
    cells = tmp_path / "cells.csv"
    cells.write_text(
        CELLS_HEADER
        + "C0001,S01,112.55,37.87,140100,4G\nC0002,S01,112.56,37.88,140100,5G\n"
        + "C0003,S02,113.30,40.08,140200,5G\n"
    )
    record = submit(settings, cells, "cells", period="2021-11")
    assert record.status == "accepted"
    return settings


def submit(settings: Settings, path: Path, dataset: str, operator: str | None = None, **kw):
    """Ingest as an administrator; by default as CMCC, or as the administration (CA) for
    the datasets only it submits."""
    contract = registry.contract(dataset)
    return ingest_file(
        settings,
        principal=kw.pop("principal", ROOT),
        contract=contract,
        path=path,
        filename=kw.pop("filename", path.name),
        operator=operator or ("CA" if contract.administration_only else "CMCC"),
        **kw,
    )


def assert_replaced(settings: Settings, submission_id: int, *, by: int) -> None:
    """The submission is out of use, replaced by ``by``, and its file kept (retrievable)."""
    replaced = _submission(settings, submission_id)
    assert not replaced.current
    assert replaced.superseded_by_id == by
    assert (settings.lake_dir / replaced.lake_path).exists(), "the replaced file is kept"


def submit_while_writing(settings: Settings, first: Path, second: Path, dataset: str):
    """Submit ``first``; while it is being written, submit ``second`` to the end.

    Returns both records, ``first``'s then ``second``'s (which was recorded first).
    """
    made: list = []

    def meanwhile(stage: str) -> None:
        if stage == "writing" and not made:
            made.append(submit(settings, second, dataset))

    return submit(settings, first, dataset, progress=meanwhile), made[0]


def cdr_file(tmp_path: Path, rows: list[str], name: str = "cdr.csv") -> Path:
    path = tmp_path / name
    path.write_text(CDR_HEADER + "".join(r + "\n" for r in rows))
    return path


GOOD_CALL = "13812341234,13900001111,2021-11-05 10:00:00,35,MO,C0001,861234567890123"


def lake_rows(settings: Settings, dataset: str) -> list[dict]:
    with session_scope(settings) as session:
        files = lake.current_files(session, settings, dataset)
    if not files:
        return []
    return (
        duckdb.execute(
            "SELECT * FROM read_parquet(?) ORDER BY source_row", [[str(f) for f in files]]
        )
        .to_arrow_table()
        .to_pylist()
    )


def errors_of(settings: Settings, record) -> list[dict]:
    text = "".join(error_report_csv(settings, _submission(settings, record.id))).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def _submission(settings: Settings, submission_id: int) -> Submission:
    with session_scope(settings) as session:
        found = session.get(Submission, submission_id)
        assert found is not None
        session.expunge(found)
        return found


def test_every_bad_row_is_reported_with_row_column_and_reason(ready: Settings, tmp_path: Path):
    path = cdr_file(
        tmp_path,
        [
            GOOD_CALL,
            "13812341234,13900002222,2021-11-05 11:00:00,-3,MO,C0002,",
            "13812341234,13900001111,2021-12-05 10:00:00,35,MO,C0009,861234567890123",
            "abc,13900001111,2021-11-05 10:00:00,35,XX,C0001,",
            "13812341234,13900001111,not-a-time,35,MO,C0001,",
        ],
    )
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.status == "partial"
    assert (record.rows_total, record.rows_accepted, record.rows_quarantined) == (5, 1, 4)
    found = {(int(e["row"]), e["column"], e["reason"]) for e in errors_of(ready, record)}
    assert (3, "duration_s", "below the minimum 0") in found
    assert (4, "start_time", "outside the period 2021-11") in found
    assert any(r == 4 and c == "cell_id" and "unknown value" in why for r, c, why in found)
    form = (
        "does not have the expected form: 5 to 20 digits (+ before them allowed), "
        "such as 03512345678"
    )
    assert (5, "caller", form) in found
    assert (5, "direction", "not one of: MO, MT") in found
    assert (6, "start_time", "not a valid timestamp") in found
    assert len(lake_rows(ready, "voice_cdr")) == 1


def test_identifiers_never_reach_the_lake_in_clear(ready: Settings, tmp_path: Path):
    record = submit(
        ready,
        cdr_file(
            tmp_path, [GOOD_CALL, "+8613812341234,13900001111,2021-11-05 12:00:00,5,MT,C0002,"]
        ),
        "voice_cdr",
    )
    assert record.status == "accepted"
    rows = lake_rows(ready, "voice_cdr")
    assert rows[0]["caller"] == rows[1]["caller"], "+86 and bare forms give one token"
    assert re.fullmatch(r"[0-9a-f]{32}", rows[0]["caller"])
    # The lake's files are compressed, so their values are read back, not their bytes.
    for path in ready.data_dir.rglob("*.parquet"):
        values = repr(pq.read_table(path).to_pylist())
        assert "13812341234" not in values, path
        assert "861234567890123" not in values, path
    assert Vault.of(ready).reveal(rows[0]["caller"]) == "13812341234"


def test_the_lake_file_is_zstd_compressed(ready: Settings, tmp_path: Path):
    submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr")
    with session_scope(ready) as session:
        (path,) = lake.current_files(session, ready, "voice_cdr")
    metadata = pq.ParquetFile(path).metadata
    codecs = {
        metadata.row_group(g).column(c).compression
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    }
    assert codecs == {"ZSTD"}


def test_same_bytes_twice_change_nothing(ready: Settings, tmp_path: Path):
    path = cdr_file(tmp_path, [GOOD_CALL])
    first = submit(ready, path, "voice_cdr")
    with session_scope(ready) as session:
        audit_before = len(session.scalars(select(AuditEntry)).all())
    files_before = sorted(p.name for p in ready.lake_dir.rglob("*.parquet"))
    again = submit(ready, path, "voice_cdr")
    assert again.duplicate_of == first.id
    assert again.id == first.id
    assert sorted(p.name for p in ready.lake_dir.rglob("*.parquet")) == files_before
    with session_scope(ready) as session:
        assert len(session.scalars(select(Submission)).all()) == 2  # cells + this one
        assert len(session.scalars(select(AuditEntry)).all()) == audit_before


def test_a_correction_supersedes_and_the_earlier_stays_retrievable(ready: Settings, tmp_path: Path):
    first = submit(ready, cdr_file(tmp_path, [GOOD_CALL], "v1.csv"), "voice_cdr")
    second = submit(
        ready,
        cdr_file(tmp_path, [GOOD_CALL, GOOD_CALL.replace("10:00:00", "11:00:00")], "v2.csv"),
        "voice_cdr",
    )
    assert second.superseded == first.id
    assert len(lake_rows(ready, "voice_cdr")) == 2, "readers see only the correction"
    assert_replaced(ready, first.id, by=second.id)
    rejected = submit(
        ready, cdr_file(tmp_path, ["x,y,z,1,MO,C0001,"], "v3.csv"), "voice_cdr", period="2021-11"
    )
    assert rejected.status == "rejected"
    assert len(lake_rows(ready, "voice_cdr")) == 2, "a rejected file supersedes nothing"


def test_the_original_sent_again_after_a_wrong_correction_is_back_in_use(
    ready: Settings, tmp_path: Path
):
    calls = [GOOD_CALL.replace("10:00:00", f"10:{m:02d}:00") for m in range(10)]
    original = submit(ready, cdr_file(tmp_path, calls, "full.csv"), "voice_cdr")
    wrong = submit(ready, cdr_file(tmp_path, calls[:2], "wrong.csv"), "voice_cdr")
    assert wrong.superseded == original.id
    assert f"replaces submission {original.id}, which had 10 accepted rows, with 2" in (
        wrong.message
    ), "a month replaced by a few rows is pointed out"
    assert len(lake_rows(ready, "voice_cdr")) == 2

    again = submit(ready, cdr_file(tmp_path, calls, "full.csv"), "voice_cdr")
    assert (again.id, again.duplicate_of, again.reinstated) == (original.id, original.id, True)
    assert again.current
    assert again.superseded == wrong.id
    assert len(lake_rows(ready, "voice_cdr")) == 10, "readers see the original again"
    assert_replaced(ready, wrong.id, by=original.id)
    with session_scope(ready) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "ingest.reinstate")
        ).one()
        assert entry.detail["withdrawn"] == [wrong.id]

    # Sent once more, the file in use changes nothing.
    assert submit(ready, cdr_file(tmp_path, calls, "full.csv"), "voice_cdr").reinstated is False


def test_same_bytes_for_another_month_or_after_a_rejection_are_ingested(
    ready: Settings, tmp_path: Path
):
    cells = tmp_path / "cells-more.csv"
    cells.write_text(CELLS_HEADER + "C0009,S09,112.60,37.90,140100,5G\n")
    october = submit(ready, cells, "cells", period="2021-10")
    assert october.status == "accepted"
    again = submit(ready, cells, "cells", period="2021-10")
    assert again.duplicate_of == october.id
    other_month = submit(ready, cells, "cells", period="2021-12")
    assert other_month.duplicate_of is None
    assert other_month.id != october.id
    assert _submission(ready, october.id).current, "each month keeps its own file"
    as_gcj02 = submit(ready, cells, "cells", period="2021-10", crs="gcj02")
    assert as_gcj02.duplicate_of is None
    # A call file whose cell the operator had not sent yet is rejected; once the cell
    # arrives, the same bytes are read again rather than answered with the rejection.
    calls = cdr_file(tmp_path, [GOOD_CALL.replace("C0001", "C0042")], "early.csv")
    early = submit(ready, calls, "voice_cdr", period="2021-11")
    assert early.status == "rejected"
    late_cells = tmp_path / "cells-late.csv"
    late_cells.write_text(
        CELLS_HEADER + "C0001,S01,112.55,37.87,140100,4G\nC0042,S04,112.58,37.86,140100,5G\n"
    )
    assert submit(ready, late_cells, "cells", period="2021-11").status == "accepted"
    retried = submit(ready, calls, "voice_cdr", period="2021-11")
    assert retried.duplicate_of is None
    assert retried.status == "accepted", retried.message
    with pytest.raises(InputError, match="YYYY-MM"):
        submit(ready, calls, "voice_cdr", period="2021-11\n")


def test_a_correction_received_later_stays_current_when_it_finishes_first(
    ready: Settings, tmp_path: Path
):
    first = cdr_file(tmp_path, [GOOD_CALL], "slow.csv")
    correction = cdr_file(
        tmp_path, [GOOD_CALL, GOOD_CALL.replace("10:00:00", "11:00:00")], "fast.csv"
    )
    # While the first file is being written, the correction arrives and is done first.
    slow, fast = submit_while_writing(ready, first, correction, "voice_cdr")
    assert slow.status == "accepted"
    assert _submission(ready, fast.id).current
    late = _submission(ready, slow.id)
    assert not late.current
    assert late.superseded_by_id == fast.id
    assert "received later" in late.message
    assert len(lake_rows(ready, "voice_cdr")) == 2, "readers see the correction"


def test_the_same_file_sent_twice_at_once_is_recorded_once(ready: Settings, tmp_path: Path):
    path = cdr_file(tmp_path, [GOOD_CALL], "twice.csv")
    # A client retries while the first upload is still being written.
    first, retry = submit_while_writing(ready, path, path, "voice_cdr")
    assert retry.duplicate_of is None
    assert first.duplicate_of == retry.id
    with session_scope(ready) as session:
        assert session.query(Submission).filter_by(dataset="voice_cdr").count() == 1
    assert len(lake_rows(ready, "voice_cdr")) == 1
    # The second ingest's files, published before it found the first record, are gone.
    files = sorted(p.name for p in (ready.lake_dir / "voice_cdr").rglob("*.parquet"))
    assert files == [f"{_submission(ready, retry.id).file_id}.parquet"]


def test_gbk_csv_with_chinese_headers(ready: Settings, tmp_path: Path):
    text = "主叫号码,被叫号码,开始时间,通话时长,呼叫方向,小区标识,IMEI\n" + GOOD_CALL + "\n"
    path = tmp_path / "话单.csv"
    path.write_bytes(text.encode("gbk"))
    seen: dict[str, list[Path]] = {}

    def look(stage: str) -> None:
        # The clear UTF-8 copy is made outside the lake, which holds pseudonymised data only.
        if stage == "validating":
            seen["lake"] = list(ready.lake_dir.rglob("utf8.csv"))
            seen["scratch"] = list((ready.data_dir / "scratch").rglob("utf8.csv"))

    record = submit(ready, path, "voice_cdr", progress=look)
    assert record.status == "accepted", record.message
    assert seen["lake"] == []
    assert len(seen["scratch"]) == 1
    assert not seen["scratch"][0].exists(), "and removed when the ingest ends"
    assert _submission(ready, record.id).encoding == "gb18030"


def test_a_gbk_csv_with_short_lines(ready: Settings, tmp_path: Path):
    # A GBK export that leaves out the empty IMEI, and one line cut short of its cell.
    text = "主叫号码,被叫号码,开始时间,通话时长,呼叫方向,小区标识,IMEI,对端运营商\n"
    short = GOOD_CALL.rsplit(",", 1)[0]
    cut = short.rsplit(",", 1)[0]
    text += "\n".join([short, GOOD_CALL + ",联通", cut, short + ",", GOOD_CALL]) + "\n"
    path = tmp_path / "话单.csv"
    path.write_bytes(text.encode("gbk"))
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert _submission(ready, record.id).encoding == "gb18030"
    assert (record.rows_accepted, record.rows_quarantined) == (4, 1), record.message
    rows = lake_rows(ready, "voice_cdr")
    assert [(r["source_row"], r["peer_operator"]) for r in rows] == [
        (2, None),
        (3, "CUCC"),
        (5, None),
        (6, None),
    ]
    assert {(e["row"], e["column"]) for e in errors_of(ready, record)} == {("4", "cell_id")}


def test_gbk_with_an_ascii_head_is_still_detected(ready: Settings, tmp_path: Path):
    # An English header and plain rows, then Chinese text in GBK past the sniffed head.
    header = "obstacle_id,site_id,county_code,kind,description,reported_date\n"
    plain = "".join(f"A{i:05d},S1,140105,power,no power yet,2021-12-01\n" for i in range(3000))
    late = "".join(f"B{i:05d},S1,140105,land,业主阻挠进场{i},2021-12-02\n" for i in range(100))
    path = tmp_path / "late-gbk.csv"
    path.write_bytes(header.encode() + plain.encode() + late.encode("gbk"))
    assert path.stat().st_size > 70_000, "the GBK bytes come after the sniffed head"
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_total, record.rows_accepted) == (3100, 3100), record.message
    assert record.message.startswith("all 3,100 rows accepted"), "grouped as pages show counts"
    assert _submission(ready, record.id).encoding == "gb18030"
    descriptions = pq.read_table(
        ready.lake_dir / _submission(ready, record.id).lake_path, columns=["description"]
    ).column(0)
    assert descriptions[-1].as_py() == "业主阻挠进场99"


def test_excel_unicode_text_is_read(ready: Settings, tmp_path: Path):
    # Excel's "Save as Unicode text": UTF-16 with a byte-order mark, tab-separated.
    text = CELLS_HEADER.replace(",", "\t") + "U0001\tS1\t112.5\t37.8\t140100\t5G\n"
    path = tmp_path / "cells.txt"
    path.write_bytes(text.encode("utf-16"))
    record = submit(ready, path, "cells", period="2021-12")
    assert (record.status, record.rows_accepted) == ("accepted", 1), record.message
    assert _submission(ready, record.id).encoding == "utf-16"


def test_utf8_with_a_few_broken_bytes_keeps_its_good_rows(ready: Settings, tmp_path: Path):
    # Not GB18030 either (a lone 0xFF): the broken line alone is set aside, with its reason.
    header = "obstacle_id,site_id,county_code,kind,description,reported_date\n"
    plain = "".join(f"A{i:05d},S1,140105,power,no power yet,2021-12-01\n" for i in range(3000))
    path = tmp_path / "broken.csv"
    path.write_bytes(header.encode() + plain.encode() + b"B00001,S1,140105,land,\xff,2021-12-02\n")
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.status, record.rows_accepted, record.rows_quarantined) == ("partial", 3000, 1)
    assert _submission(ready, record.id).encoding == "utf-8"
    assert errors_of(ready, record)[0]["row"] == "3002"


def test_a_parquet_files_nested_columns_are_ignored_or_reported(ready: Settings, tmp_path: Path):
    # An export tool's extra nested column is ignored as any unknown column is; a known
    # column sent as a list fails its form on its own row.
    table = pa.table(
        {
            "cell_id": ["N0001", "N0002"],
            "site_id": ["S9", "S9"],
            "longitude": [112.5, 112.5],
            "latitude": [37.8, 37.8],
            "city_code": [["140100"], ["140100", "140200"]],
            "technology": ["4G", "5G"],
            "extra": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
        }
    )
    pq.write_table(table, tmp_path / "cells.parquet")
    record = submit(ready, tmp_path / "cells.parquet", "cells", operator="CUCC", period="2021-11")
    assert record.status == "rejected", record.message
    assert "extra" in record.message, "the ignored column is named"
    errors = errors_of(ready, record)
    assert {(e["row"], e["column"]) for e in errors} >= {("1", "city_code"), ("2", "city_code")}
    assert errors[0]["value"] == '["140100"]'


def test_xlsx_parquet_and_geojson(ready: Settings, tmp_path: Path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["X0001", "S9", 112.5, 37.8, 140100, "5G"])
    sheet.append([None] * 6)
    sheet.append(["X0002", "S9", 112.5, 99.0, 140100, "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_total, record.rows_accepted) == (2, 1)
    assert errors_of(ready, record)[0]["row"] == "4", "spreadsheet row numbers"

    table = pa.table(
        {
            "cell_id": ["P0001"],
            "site_id": ["S1"],
            "longitude": [112.1],
            "latitude": [37.1],
            "city_code": ["140100"],
            "technology": ["4G"],
        }
    )
    pq.write_table(table, tmp_path / "cells.parquet")
    assert (
        submit(ready, tmp_path / "cells.parquet", "cells", operator="CTCC", period="2021-11").status
        == "accepted"
    )

    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"corridor_id": "T1", "name": "测试线", "kind": "hsr"},
                "geometry": {"type": "LineString", "coordinates": [[112.0, 37.0], [112.5, 37.5]]},
            },
            {
                "type": "Feature",
                "properties": {"corridor_id": "T2", "name": "点", "kind": "hsr"},
                "geometry": {"type": "Point", "coordinates": [112.0, 37.0]},
            },
        ],
    }
    (tmp_path / "lines.geojson").write_text(json.dumps(geojson))
    record = submit(ready, tmp_path / "lines.geojson", "corridors", period="2021-11", crs="gcj02")
    assert record.rows_accepted == 1
    assert any("geometry is not one of: LineString" in k for k in record.errors_by_reason)
    wkt = lake_rows(ready, "corridors")[0]["geometry"]
    first = [float(v) for v in wkt.split("(")[1].split(",")[0].split()]
    assert 111.99 < first[0] < 112.0, "converted from GCJ-02"
    assert 36.99 < first[1] < 37.0


def _corridor_file(path: Path, coordinates: list[list[float]], **extra: object) -> Path:
    feature = {
        "type": "Feature",
        "properties": {"corridor_id": "P1", "name": "投影线", "kind": "hsr"},
        "geometry": {"type": "LineString", "coordinates": coordinates},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", **extra, "features": [feature]}))
    return path


def test_geojson_in_a_projected_system_is_refused_or_quarantined(ready: Settings, tmp_path: Path):
    metres = [[500123.4, 4100234.5], [510000.0, 4110000.0]]  # CGCS2000 / 3-degree GK, metres
    declared = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    record = submit(
        ready, _corridor_file(tmp_path / "gk.geojson", metres, crs=declared), "corridors"
    )
    assert record.status == "rejected"
    assert "declares the coordinate system urn:ogc:def:crs:EPSG::4547" in record.message
    assert "文件声明的坐标系为 urn:ogc:def:crs:EPSG::4547" in localise(record.message, "zh_CN")
    # Undeclared, the positions give it away.
    record = submit(ready, _corridor_file(tmp_path / "bare.geojson", metres), "corridors")
    assert record.status == "rejected"
    assert any("projected coordinates?" in k for k in record.errors_by_reason)
    # WGS-84 and CGCS2000 (within centimetres of it) may be declared.
    for name in ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", "EPSG:4490"):
        crs = {"type": "name", "properties": {"name": name}}
        lonlat = [[112.0, 37.0], [112.5, 37.5]]
        path = _corridor_file(tmp_path / f"{name[-4:]}.geojson", lonlat, crs=crs)
        assert submit(ready, path, "corridors", period="2021-11").status == "accepted", name


def test_a_crs_member_written_otherwise_is_read_for_the_system_it_names(
    ready: Settings, tmp_path: Path
):
    lonlat = [[112.0, 37.0], [112.5, 37.5]]
    for number, crs in enumerate(
        ("EPSG:4326", {"type": "EPSG", "properties": {"code": 4326}}, "urn:ogc:def:crs:EPSG::4490")
    ):
        path = _corridor_file(tmp_path / f"{number}.geojson", lonlat, crs=crs)
        assert submit(ready, path, "corridors", period="2021-11").status == "accepted", crs
    for crs, named in (
        ("EPSG:4547", "EPSG:4547"),
        ({"type": "EPSG", "properties": {"code": 3857}}, "EPSG:3857"),
    ):
        path = _corridor_file(tmp_path / "projected.geojson", lonlat, crs=crs)
        record = submit(ready, path, "corridors", period="2021-11")
        assert record.status == "rejected"
        assert f"declares the coordinate system {named};" in record.message


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "the file is empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "bom.csv", "the file is empty"),
        (CDR_HEADER.encode(), "header-only.csv", "no data rows"),
        (b"PK\x03\x04" + b"\0" * 100, "fake.xlsx", "not an XLSX workbook"),
        (b"PAR1" + b"\0" * 100, "data.csv", "the name says CSV but the content is PARQUET"),
        (b"caller,callee\n1,2\n", "short.csv", "missing required column(s) start_time"),
        (b"\x00\x01\x02binary", "blob.csv", "binary file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "cdr.xls", "save it as"),
        # Compressed files and documents sent in place of the data, named as the data.
        (gzip.compress(CDR_HEADER.encode(), mtime=0), "cdr.csv", "a gzip-compressed file"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"x" * 50, "cdr.csv", "a 7-Zip-compressed file"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "cdr.csv", "a PDF document"),
        # A format the dataset does not take is refused before the file is parsed.
        (
            b'{"type": "FeatureCollection", "features": [' + b"{}," * 1000 + b"{}]}",
            "x.geojson",
            "voice_cdr accepts csv, xlsx, parquet, not geojson",
        ),
    ],
)
def test_bad_files_are_rejected_with_a_clear_message(
    ready: Settings, tmp_path: Path, content: bytes, name: str, message: str
):
    path = tmp_path / name
    path.write_bytes(content)
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.status == "rejected"
    assert message in record.message
    assert lake_rows(ready, "voice_cdr") == []


def test_files_the_readers_choke_on_are_rejected_with_a_message(ready: Settings, tmp_path: Path):
    # A duplicated Parquet column name (a column of lists is read as JSON text: see
    # test_a_parquet_files_nested_columns_are_ignored_or_reported).
    twice = pa.Table.from_arrays([pa.array(["C1"]), pa.array(["C2"])], names=["cell_id"] * 2)
    pq.write_table(twice, tmp_path / "twice.parquet")
    # A column of bytes, one of them not text (GBK, say): its column and row are named.
    raw = pa.table(
        {
            "cell_id": pa.array([b"C1", "小区".encode("gbk")], pa.binary()),
            "site_id": ["S1", "S1"],
        }
    )
    pq.write_table(raw, tmp_path / "bytes.parquet")
    # GeoJSON whose features are not objects, or with a property named like the geometry.
    (tmp_path / "nulls.geojson").write_text('{"type": "FeatureCollection", "features": [null]}')
    clash = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"corridor_id": "T1", "geometry": "x"},
                "geometry": {"type": "LineString", "coordinates": [[112, 37], [112.5, 37.5]]},
            }
        ],
    }
    (tmp_path / "clash.geojson").write_text(json.dumps(clash))
    (tmp_path / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    # A list of features, without the FeatureCollection around them.
    (tmp_path / "list.geojson").write_text(json.dumps(clash["features"]))
    for name, dataset, message in (
        ("list.geojson", "corridors", "GeoJSON must be a FeatureCollection"),
        ("none.geojson", "corridors", "the FeatureCollection has no features"),
        ("twice.parquet", "cells", "appears twice"),
        (
            "bytes.parquet",
            "cells",
            "column 'cell_id' holds bytes that are not UTF-8 text, first in row 2",
        ),
        ("nulls.geojson", "corridors", "list of Feature objects"),
        ("clash.geojson", "corridors", "named 'geometry'"),
    ):
        record = submit(ready, tmp_path / name, dataset, period="2021-11")
        assert record.status == "rejected", name
        assert message in record.message, (name, record.message)


def test_every_sheet_with_the_first_sheets_header_is_read(ready: Settings, tmp_path: Path):
    headers = ["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"]
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "11月-1"
    first.append(headers)
    first.append(["M0001", "S9", 112.5, 37.8, 140100, "5G"])
    second = workbook.create_sheet("11月-2")
    second.append([*headers, None])
    second.append(["M0002", "S9", 112.5, 37.8, 140100, "5G"])
    second.append(["M0003", "S9", 112.5, 99.0, 140100, "5G"])
    notes = workbook.create_sheet("说明")
    notes.append(["字段", "含义"])
    notes.append(["cell_id", "小区标识"])
    workbook.create_sheet("空白")
    workbook.save(tmp_path / "split.xlsx")
    record = submit(ready, tmp_path / "split.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_total, record.rows_accepted, record.rows_quarantined) == (3, 2, 1)
    assert "read 2 sheets with the same header (11月-1, 11月-2)" in record.message
    assert "ignored sheet(s) whose header differs from the first sheet's: 说明" in record.message
    assert "空白" not in record.message, "an empty sheet is no news"
    assert errors_of(ready, record)[0]["row"] == "10000003", "sheet 2, row 3"
    assert "第 2 个及以后的工作表" not in localise(record.message, "zh_CN")
    assert "读取了 2 个表头相同的工作表" in localise(record.message, "zh_CN")


def test_blank_header_cells_of_a_workbook_are_ignored(ready: Settings, tmp_path: Path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    headers = ["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"]
    sheet.append([*headers, None, None])
    sheet.append(["X0007", "S9", 112.5, 37.8, 140100, "5G", None, "a note"])
    workbook.save(tmp_path / "padded.xlsx")
    record = submit(ready, tmp_path / "padded.xlsx", "cells", operator="CUCC", period="2021-11")
    assert record.status == "accepted", record.message


def test_a_file_without_its_header_line_does_not_repeat_numbers_in_the_message(
    ready: Settings, tmp_path: Path
):
    path = tmp_path / "headless.csv"
    path.write_text(GOOD_CALL + "\n" + GOOD_CALL + "\n")
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.status == "rejected"
    assert "missing required column" in record.message
    assert "13812341234" not in record.message
    assert "138****1234" in record.message


def test_a_files_name_is_kept_without_the_senders_folders_or_hidden_characters(
    ready: Settings, tmp_path: Path
):
    path = tmp_path / "cells.csv"
    for number, (sent, kept) in enumerate(
        (
            ("C:\\Users\\张三\\小区清单.csv", "小区清单.csv"),
            ("..\\..\\报表\\小区.csv", "小区.csv"),
            ("../../etc/cells.csv", "cells.csv"),
            ("\u202eexe.csv", "exe.csv"),
            ("..", "upload"),
            ("a/b/", "b"),
        )
    ):
        path.write_text(CELLS_HEADER + f"N{number:04d},S01,112.55,37.87,140100,4G\n")
        record = submit(ready, path, "cells", period="2021-11", filename=sent)
        assert record.filename == kept, sent


def test_unknown_columns_are_named_and_ignored(ready: Settings, tmp_path: Path):
    path = tmp_path / "extra.csv"
    path.write_text(CDR_HEADER.strip() + ",note\n" + GOOD_CALL + ",hello\n")
    record = submit(ready, path, "voice_cdr")
    assert record.status == "accepted"
    assert "ignored unknown column(s): note" in record.message


@pytest.mark.parametrize(
    ("trailing", "letters"),
    [(2, "B, I, J"), (5, "B, I, J, K, L, M")],
    ids=["10 columns", "13 columns (the reader numbers them column00 …)"],
)
def test_columns_with_no_header_are_named_by_their_letters_not_the_readers_names(
    ready: Settings, tmp_path: Path, trailing: int, letters: str
):
    # The separators Excel leaves at the end of every line, and a note under no header in
    # column B: neither is a column the file names.
    header = CDR_HEADER.strip().replace("caller,", "caller,,", 1)
    row = GOOD_CALL.replace(",", ",a note,", 1)
    path = tmp_path / "cdr.csv"
    path.write_text(f"{header}{',' * trailing}\n{row}{',' * trailing}\n")
    record = submit(ready, path, "voice_cdr")
    assert record.status == "accepted", record.message
    assert f"column(s) with no header were not read: {letters}" in record.message
    assert "column1" not in record.message
    assert "unknown column" not in record.message


def test_a_10_mb_field_is_a_row_error_not_a_crash(ready: Settings, tmp_path: Path):
    path = tmp_path / "huge.csv"
    path.write_text(
        CELLS_HEADER
        + "C0100,"
        + "S" * 10_000_000
        + ",112.5,37.8,140100,4G\n"
        + "C0101,S1,112.5,37.8,140100,4G\n"
        + "C0102,S1\n"
        + "C0103,S1,112.5,37.8,140100,4G\n"
    )
    record = submit(ready, path, "cells", period="2022-02")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 2)
    assert any("longer than" in k for k in record.errors_by_reason)
    assert sorted({e["row"] for e in errors_of(ready, record)}) == ["2", "4"]
    assert [r["source_row"] for r in lake_rows(ready, "cells") if r["period"] == "2022-02"] == [
        3,
        5,
    ]
    # A page shows the field's start; the API gives it whole.
    found = _submission(ready, record.id)
    columns, [row, _], _ = quarantined_rows(ready, found, cut_at=300)
    shown = row[columns.index("site_id")]
    assert (len(shown), shown[-1]) == (301, "…")
    columns, [row, _], _ = quarantined_rows(ready, found)
    assert len(row[columns.index("site_id")]) == 10_000_000


def test_malformed_csv_lines_are_reported_and_rows_keep_their_numbers(
    ready: Settings, tmp_path: Path
):
    path = tmp_path / "ragged.csv"
    path.write_text(
        CELLS_HEADER
        + "C0201,S1,112.5,37.8,140100,4G\n"
        + "C0202,S1,112.5,37.8,140100,4G,extra,fields\n"
        + "C0203,S1,112.5,99,140100,4G\n"
    )
    record = submit(ready, path, "cells", period="2022-03")
    errors = errors_of(ready, record)
    assert {e["row"] for e in errors} == {"3", "4"}
    [ragged] = [e["reason"] for e in errors if e["row"] == "3"]
    assert ragged == "unreadable line: the line has more fields than the header's 6"
    assert localise(ragged, "zh_CN") == "无法读取的行：该行的字段多于表头的 6 个"
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    assert [r[1] for r in rows] == [
        "*: unreadable line: the line has more fields than the header's 6",
        "latitude: above the maximum 54",
    ], "each reason names its column"


def test_an_unreadable_line_is_kept_in_the_quarantine_as_sent_with_numbers_masked(
    ready: Settings, tmp_path: Path
):
    ragged = "13812345678,13900001111,2021-11-05 10:00:00,35,MO,C0001,861234567890123,extra"
    path = cdr_file(tmp_path, [GOOD_CALL, ragged])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_total, record.rows_accepted, record.rows_quarantined) == (2, 1, 1)
    with session_scope(ready) as session:
        submission = session.get(Submission, record.id)
        assert submission is not None
        columns, rows, total = quarantined_rows(ready, submission)
    assert total == record.rows_quarantined, "every quarantined row is in the quarantine"
    row = dict(zip(columns, rows[0], strict=True))
    assert row["source_row"] == 3
    assert "unreadable line" in row["reasons"]
    assert row["raw_line"].startswith("138****5678,139****1111,2021-11-05 10:00:00,35,MO,")
    assert "13812345678" not in str(rows)
    assert "861234567890123" not in str(rows)
    [error] = errors_of(ready, record)
    assert error["value"].startswith("138****5678,"), "the report shows the line, masked"


def test_a_line_without_its_trailing_optional_fields_is_a_row_with_them_empty(
    ready: Settings, tmp_path: Path
):
    # Operators' systems leave out the empty fields that end a line: no IMEI, and not even
    # its comma. Read as if the comma were there; the rows after keep their numbers.
    short = GOOD_CALL.rsplit(",", 1)[0]
    bad = GOOD_CALL.replace(",35,", ",-1,")
    path = cdr_file(tmp_path, [short, GOOD_CALL, short + ",", bad, GOOD_CALL])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (4, 1), record.message
    rows = lake_rows(ready, "voice_cdr")
    assert [r["source_row"] for r in rows] == [2, 3, 4, 6]
    assert [r["imei"] is None for r in rows] == [True, False, True, False]
    [error] = errors_of(ready, record)
    assert (error["row"], error["column"]) == ("5", "duration_s")


def test_a_short_line_lacking_a_required_value_names_the_column(ready: Settings, tmp_path: Path):
    short = "13812341234,13900001111,2021-11-05 10:00:00,35"
    path = cdr_file(tmp_path, [GOOD_CALL, short, GOOD_CALL])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 1), record.message
    errors = errors_of(ready, record)
    assert {(e["row"], e["column"], e["reason"]) for e in errors} == {
        ("3", column, "required value is missing") for column in ("direction", "cell_id")
    }
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    [row] = rows
    assert set(row[1].split("; ")) == {
        "direction: required value is missing",
        "cell_id: required value is missing",
    }
    assert [r["source_row"] for r in lake_rows(ready, "voice_cdr")] == [2, 4]


def test_a_line_with_another_separator_is_not_accepted(ready: Settings, tmp_path: Path):
    # Padded, a line written with semicolons is one value and empty fields after it: never
    # a row, as every dataset requires a value beyond its first column.
    semicolons = GOOD_CALL.replace(",", ";")
    path = cdr_file(tmp_path, [GOOD_CALL, semicolons, GOOD_CALL])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 1), record.message
    assert {e["row"] for e in errors_of(ready, record)} == {"3"}
    assert [r["source_row"] for r in lake_rows(ready, "voice_cdr")] == [2, 4]
    assert all(
        len(c.columns) > 1 and any(x.required for x in c.columns[1:])
        for c in registry.CONTRACTS.values()
    )


def test_short_lines_are_not_padded_in_a_file_with_a_line_break_in_quotes(
    ready: Settings, tmp_path: Path
):
    # A quote left open takes the lines after it into one value: padded, that short "line"
    # would pass for a row. So a file with a line break inside quotes (which an open quote
    # looks like) has its short lines unreadable, as sent; rows keep the numbers a
    # spreadsheet shows.
    text = (
        "phone,day,bytes,app_category\n"
        '13800000001,2021-11-01,100,"video\nstreaming"\n'
        "13800000002,2021-11-02,200\n"
        "13800000003,2021-11-03,300,game\n"
    )
    path = tmp_path / "sessions.csv"
    path.write_text(text)
    record = submit(ready, path, "data_sessions", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 1), record.message
    rows = lake_rows(ready, "data_sessions")
    assert [(r["source_row"], r["app_category"]) for r in rows] == [
        (2, "video\nstreaming"),
        (4, "game"),
    ]
    [error] = errors_of(ready, record)
    assert (error["row"], error["reason"]) == (
        "3",
        "unreadable line: the line has 3 fields, the header 4",
    )


def test_a_line_break_in_quotes_below_the_readers_sample_is_not_padded(
    ready: Settings, tmp_path: Path
):
    # The reader's sniffer looks at the first 20,000 lines or so: with no quote among them,
    # it names none, and the quote further down must still keep short lines from padding.
    plain = "".join(f"138{i:08d},2021-11-01,{i},game\n" for i in range(30_000))
    text = (
        "phone,day,bytes,app_category\n"
        + plain
        + '13900000001,2021-11-02,200,"video\nstreaming"\n'
        + "13900000002,2021-11-03,300\n"
    )
    path = tmp_path / "sessions.csv"
    path.write_text(text)
    record = submit(ready, path, "data_sessions", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (30_001, 1), record.message
    rows = lake_rows(ready, "data_sessions")
    assert [(r["source_row"], r["app_category"]) for r in rows[-2:]] == [
        (30_001, "game"),
        (30_002, "video\nstreaming"),
    ]
    [error] = errors_of(ready, record)
    assert (error["row"], error["reason"]) == (
        "30003",  # (as a spreadsheet numbers it: the quoted line break is one row)
        "unreadable line: the line has 3 fields, the header 4",
    )


def test_a_line_break_in_quotes_is_found_across_chunks(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(readers, "_CHUNK", 4)
    path = tmp_path / "quoted.csv"
    path.write_bytes(b'a,b\n"x",1\n"y""z",2\n')
    assert not readers.line_break_in_quotes(path, '"')
    path.write_bytes(b'a,b\n"x",1\n"y\n\nz",2\n')
    assert readers.line_break_in_quotes(path, '"')
    path.write_bytes(b'a,b\n"x",1\n"y,2\nw,3\n')  # (a quote left open)
    assert readers.line_break_in_quotes(path, '"')
    assert not readers.line_break_in_quotes(path, "")


def test_operators_submit_only_their_own_data(ready: Settings, tmp_path: Path):
    path = cdr_file(tmp_path, [GOOD_CALL])
    unicom = principal_of_role(Role.OPERATOR, operator_code="CUCC")
    with pytest.raises(PermissionDeniedError):
        submit(ready, path, "voice_cdr", operator="CMCC", principal=unicom)
    with pytest.raises(PermissionDeniedError):
        submit(ready, path, "voice_cdr", principal=principal_of_role(Role.VIEWER))
    # Reference geography (what coverage is measured against) is not an operator's to send.
    corridor = tmp_path / "corridor.geojson"
    corridor.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(PermissionDeniedError, match="corridors is the administration's"):
        submit(ready, corridor, "corridors", operator="CUCC", principal=unicom)
    # Nor is police feedback, which the fraud model learns from: an operator could teach it
    # that its rivals' customers are fraud, or that its own gateways are not.
    feedback = tmp_path / "feedback.csv"
    feedback.write_text(
        "phone,imei,domain,case_reference,confirmed_on,fraud_type\n"
        "13800000001,,,JQ1,2021-10-03,loan\n"
    )
    with pytest.raises(PermissionDeniedError, match="police_feedback is the administration's"):
        submit(ready, feedback, "police_feedback", operator="CUCC", principal=unicom)
    # Nor are the targets operators are measured against.
    targets = tmp_path / "targets.csv"
    targets.write_text("region_code,year,indicator,value\n140000,2021,new_5g_sites,1\n")
    with pytest.raises(PermissionDeniedError, match="targets is the administration's"):
        submit(ready, targets, "targets", operator="CUCC", principal=unicom)


def test_the_administrations_datasets_are_filed_under_its_own_code(ready: Settings, tmp_path: Path):
    corridor = _corridor_file(tmp_path / "mine.geojson", [[112.5, 37.8], [112.6, 37.9]])
    # An administrator sending corridors as China Mobile's would make them pass for its report.
    with pytest.raises(InputError, match="send it under the operator code CA"):
        submit(ready, corridor, "corridors", operator="CMCC")
    assert submit(ready, corridor, "corridors", operator="CA").status == "accepted"


def test_an_identifier_in_the_wrong_column_is_masked_in_reports_and_quarantine(
    ready: Settings, tmp_path: Path
):
    # An ID number where the city code belongs: not an identifier column, so not turned
    # into a token, but neither the error report nor the quarantine may show it in clear.
    path = tmp_path / "cells.csv"
    path.write_text(CELLS_HEADER + "C0077,S77,112.60,37.90,140700200311189193,5G\n")
    record = submit(ready, path, "cells", operator="CUCC", period="2021-12")
    assert record.rows_quarantined == 1
    shown = [e["value"] for e in errors_of(ready, record) if e["column"] == "city_code"]
    assert shown
    assert set(shown) == {"140***********9193"}
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    assert "140700200311189193" not in repr(rows)
    assert "140***********9193" in repr(rows)
    # As people write numbers too: in groups, bracketed, with a country code, full-width.
    written = ("182 2755 6502", "(182)2755-6502", "+86 182-2755-6502", "１８２２７５５６５０２")
    path.write_text(
        CELLS_HEADER + "".join(f"C00{i}8,S77,112.60,37.90,{v},5G\n" for i, v in enumerate(written))
    )
    record = submit(ready, path, "cells", operator="CUCC", period="2021-12")
    assert record.rows_quarantined == len(written)
    report = repr(errors_of(ready, record))
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    for shown in (report, repr(rows)):
        assert "2755" not in shown
        assert "２７５５" not in shown
        assert shown.count("6502") + shown.count("６５０２") >= len(written)


def test_a_code_that_is_a_phone_or_id_number_is_refused(ready: Settings, tmp_path: Path):
    # A code reaches the lake, case titles and police packages in clear: one that is a
    # mobile or ID-card number names a person. Numeric codes of other lengths are codes,
    # and so is a cell's own id of 11 digits (a 5G cell's NCI in decimal).
    path = tmp_path / "cells.csv"
    path.write_text(
        CELLS_HEADER
        + "13812345678,S1,112.60,37.90,140100,5G\n"
        + "C0101,110101199003077777,112.60,37.90,140100,5G\n"
        + "C0102,11010119900307777x,112.60,37.90,140100,5G\n"
        + "460001234567890,S1,112.60,37.90,140100,5G\n"
        + "C0104,13912345678,112.60,37.90,140100,5G\n"
        + "C0103,1381234567,112.60,37.90,140100,5G\n"
    )
    record = submit(ready, path, "cells", operator="CUCC", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (3, 3), record.message
    reason = "looks like a phone or ID-card number: codes must not be personal identifiers"
    assert record.errors_by_reason == {f"site_id: {reason}": 3}
    report = errors_of(ready, record)
    assert [(e["row"], e["value"]) for e in report] == [
        ("3", "110***********7777"),
        ("4", "110***********777x"),
        ("6", "139****5678"),
    ]
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    for clear in ("13912345678", "110101199003077777", "11010119900307777x"):
        assert clear not in repr(rows)
    kept = [
        (r["cell_id"], r["site_id"]) for r in lake_rows(ready, "cells") if r["operator"] == "CUCC"
    ]
    assert kept == [("13812345678", "S1"), ("460001234567890", "S1"), ("C0103", "1381234567")]
    assert "not a mobile or ID-card number" in registry.contract("cells").column("site_id").rules()
    assert "not a mobile" not in registry.contract("cells").column("cell_id").rules()


def test_an_imeis_tac_is_kept_only_for_an_imei(ready: Settings, tmp_path: Path):
    # A phone number where the IMEI belongs: its first 8 digits beside the masked form
    # (139****3333) would show it whole. An IMEI keeps its TAC, which names the model.
    wrong = GOOD_CALL.replace("861234567890123", "13922223333").replace("10:00", "11:00")
    record = submit(ready, cdr_file(tmp_path, [GOOD_CALL, wrong]), "voice_cdr")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert [r["imei_tac"] for r in lake_rows(ready, "voice_cdr")] == ["86123456"]
    columns, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    [row] = [dict(zip(columns, r, strict=True)) for r in rows]
    assert row["imei_tac"] is None
    assert "13922223" not in repr(rows)
    assert [e["value"] for e in errors_of(ready, record)] == ["139****3333"]


def test_a_quote_left_open_near_the_top_is_named_as_such(ready: Settings, tmp_path: Path):
    # Every value quoted, and row 3's first value missing its closing quote: the reader
    # cannot tell where values end. The file is refused for that, not for "missing" columns.
    good = ",".join(f'"{v}"' for v in GOOD_CALL.split(","))
    broken = good.replace('",', ",", 1)
    header = ",".join(f'"{h}"' for h in CDR_HEADER.strip().split(","))
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join([header, good, broken, good.replace("10:00:00", "11:00:00")]) + "\n")
    record = submit(ready, path, "voice_cdr")
    assert record.status == "rejected"
    assert "quoted value is not closed" in record.message
    assert "missing required column" not in record.message


def test_cdr_references_are_per_operator(ready: Settings, tmp_path: Path):
    record = submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr", operator="CUCC")
    assert record.status == "rejected", "CUCC has no cells yet, so C0001 is unknown to it"


def test_bad_period_is_an_input_error(ready: Settings, tmp_path: Path):
    with pytest.raises(InputError, match="'2021-13' is not a valid month: the month is 01 to 12"):
        submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr", period="2021-13")


def test_a_period_not_yet_begun_or_before_1950_is_refused(ready: Settings, tmp_path: Path):
    cells = tmp_path / "cells.csv"
    cells.write_text(CELLS_HEADER + "C0001,S01,112.55,37.87,140100,4G\n")
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    current = now.strftime("%Y-%m")
    for period, message in (
        (f"{now.year + 1}-01", f"is after the current month {current}"),
        ("1900-01", "is before the year 1950"),
    ):
        with pytest.raises(InputError, match=message):
            submit(ready, cells, "cells", period=period)
    with session_scope(ready) as session:
        periods = {s.period for s in session.scalars(select(Submission))}
    assert periods == {"2021-11"}, "nothing was recorded"
    assert submit(ready, cells, "cells", period=current).status == "accepted"


def test_formula_cells_are_neutralised():
    assert neutralise("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert neutralise("-3") == "'-3"
    assert neutralise("+86") == "'+86"
    assert neutralise("@SUM") == "'@SUM"
    assert neutralise("plain") == "plain"
    assert neutralise(None) == ""


def test_error_report_masks_identifiers(ready: Settings, tmp_path: Path):
    record = submit(
        ready,
        cdr_file(tmp_path, ["1381234123X,13900001111,2021-11-05 10:00:00,1,MO,C0001,"]),
        "voice_cdr",
    )
    values = {e["column"]: e["value"] for e in errors_of(ready, record)}
    assert values["caller"] == "138****123X"


def test_a_bad_mobile_number_is_told_the_form_in_words_and_by_example(
    ready: Settings, tmp_path: Path
):
    path = tmp_path / "sms.csv"
    path.write_text(
        "sender,receiver,sent_at,direction\n"
        "13800001111,10086,2021-11-05 10:00:00,MO\n"
        "1380000111,10086,2021-11-05 10:01:00,MO\n"  # (10 digits)
    )
    record = submit(ready, path, "sms")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    english = (
        "does not have the expected form: an 11-digit mobile number beginning 13 to 19 "
        "(86 or +86 before it allowed), such as 13800138000"
    )
    assert [(e["row"], e["column"], e["reason"]) for e in errors_of(ready, record)] == [
        ("3", "sender", english)
    ]
    assert record.errors_by_reason == {f"sender: {english}": 1}
    submission = _submission(ready, record.id)
    _, rows, _ = quarantined_rows(ready, submission)
    assert [row[1] for row in rows] == [f"sender: {english}"]
    # The download in Chinese (as the web page asks for it) says it in Chinese.
    report = error_report_csv(ready, submission, reason=lambda r: localise(r, "zh_CN"))
    chinese = list(csv.reader(io.StringIO("".join(report).lstrip("\ufeff"))))
    assert chinese[1][2] == (
        "格式不符合要求：应为以 13 至 19 开头的 11 位手机号码（前面可带 86 或 +86），"
        "例如 13800138000"
    )
    for told in (english, chinese[1][2]):
        assert not set("\\^$[]{}") & set(told), "no regular expression in what a clerk reads"


def test_every_pattern_of_every_contract_is_described_with_an_example():
    forms = [
        (contract.name, column)
        for contract in registry.CONTRACTS.values()
        for column in contract.columns
        if column.pattern is not None
    ]
    assert len(forms) > 20
    for name, column in forms:
        form = column.pattern
        assert isinstance(form, Form), (name, column.name)
        assert form_problem(form) is None, (name, column.name)
        assert form.regex not in form.words, (name, column.name)
        assert re.fullmatch(form.regex, form.example), (name, column.name)
        assert len(form.example) <= column.max_length, (name, column.name)
        rule = reasons.RULE_MATCHES.format(
            form=form.words, example=form.example, pattern=form.regex
        )
        assert rule in column.rules(), "the datasets' reference gives the words, then the regex"


def test_a_contract_with_an_undescribed_pattern_is_refused_when_it_loads():
    def contract_with(pattern: object) -> Contract:
        column = Column("code", ColumnType.STRING, "A code.", pattern=pattern)  # type: ignore[arg-type]
        return Contract("demo", "demo", "Demo", "示例", "A demo.", columns=(column,))

    with pytest.raises(ContractError, match="not as a bare regular expression"):
        contract_with(r"[0-9]{4}")
    with pytest.raises(ContractError, match="not described in words"):
        contract_with(Form(r"[0-9]{4}", "", "1234"))
    with pytest.raises(ContractError, match="has no example"):
        contract_with(Form(r"[0-9]{4}", "4 digits", ""))
    with pytest.raises(ContractError, match="does not fit its example '123'"):
        contract_with(Form(r"[0-9]{4}", "4 digits", "123"))
    with pytest.raises(ContractError, match="is not a regular expression"):
        contract_with(Form(r"[0-9", "4 digits", "1234"))
    with pytest.raises(ContractError, match="gives its example in its words"):
        contract_with(Form(r"[0-9]{4}", "4 digits, such as 1234", "1234"))
    with pytest.raises(ContractError, match="separates reasons"):
        contract_with(Form(r"[0-9;]{4}", "4 digits; or semicolons", "1234"))
    with pytest.raises(ContractError, match="its example '13800138000' is one"):
        contract_with(code_form(2, 32, example="13800138000"))
    with pytest.raises(ContractError, match="too long"):
        Column(
            "code",
            ColumnType.STRING,
            "A code.",
            pattern=code_form(2, 32, example="A" * 9),
            max_length=8,
        )
    described = contract_with(code_form(2, 32, example="TY-0001"))
    assert described.column("code").pattern == code_form(2, 32, example="TY-0001")


def test_period_is_inferred_from_the_rows(ready: Settings, tmp_path: Path):
    record = submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr")
    assert record.period == "2021-11"


def test_another_region_loads(tmp_path: Path):
    from telereg.reference.regions import load_regions

    hebei = load_regions("130000")
    assert hebei.province.name == "河北省"
    assert len(hebei.cities) == 11
    assert all(c.code.startswith("13") for c in (*hebei.cities, *hebei.counties))
    settings = load_settings(data_dir=tmp_path / "var", region_code="130000")
    prepare(settings, principal=ROOT)
    path = tmp_path / "cells.csv"
    path.write_text(CELLS_HEADER + "H0001,S1,114.5,38.0,130100,4G\nH0002,S1,112.5,37.8,140100,4G\n")
    record = submit(settings, path, "cells", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), (
        "Shanxi codes are foreign here"
    )


def test_ingested_corridors_replace_and_extend_the_shipped_ones(ready: Settings, tmp_path: Path):
    from telereg.geography.service import corridors

    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "corridor_id": "G5",
                    "name": "京昆高速（新线形）",
                    "kind": "expressway",
                },
                "geometry": {"type": "LineString", "coordinates": [[112.0, 37.0], [112.5, 37.5]]},
            },
            {
                "type": "Feature",
                "properties": {
                    "corridor_id": "TOUR-1",
                    "name": "黄河一号旅游公路",
                    "kind": "tourist_road",
                },
                "geometry": {"type": "LineString", "coordinates": [[110.5, 36.1], [110.6, 36.5]]},
            },
        ],
    }
    (tmp_path / "mine.geojson").write_text(json.dumps(geojson, ensure_ascii=False))
    assert submit(ready, tmp_path / "mine.geojson", "corridors").status == "accepted"
    with session_scope(ready) as session:
        found = {c.corridor_id: c for c in corridors(session, settings=ready)}
    assert found["G5"].name == "京昆高速（新线形）"
    assert found["G5"].source.startswith("ingested")
    assert "TOUR-1" in found
    assert found["HSR-DX"].source == "shipped"

    # A later upload replaces the same id again, whatever the month it was sent for or the
    # row the feature is on, and what it does not name stays.
    def upload(name: str, features: list[tuple[str, str]], period: str) -> None:
        document = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"corridor_id": cid, "name": title, "kind": "expressway"},
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[112.1, 37.0 + k / 10], [112.6, 37.5]],
                    },
                }
                for k, (cid, title) in enumerate(features)
            ],
        }
        (tmp_path / name).write_text(json.dumps(document, ensure_ascii=False))
        assert submit(ready, tmp_path / name, "corridors", period=period).status == "accepted"

    upload("second.geojson", [("G99", "新建高速"), ("G5", "京昆高速（改线）")], "2021-12")
    upload("third.geojson", [("G5", "京昆高速（第三版）")], "2021-10")
    with session_scope(ready) as session:
        found = {c.corridor_id: c for c in corridors(session, settings=ready)}
    assert found["G5"].name == "京昆高速（第三版）", "the latest upload wins"
    assert {"TOUR-1", "G99"} <= set(found)


def test_heights_are_dropped_and_a_broken_feature_costs_only_itself(
    ready: Settings, tmp_path: Path
):
    # A GPS track with heights, and a "line" of one point among good features.
    def feature(cid: str, coordinates: list[list[float]]) -> dict:
        return {
            "type": "Feature",
            "properties": {"corridor_id": cid, "name": cid, "kind": "expressway"},
            "geometry": {"type": "LineString", "coordinates": coordinates},
        }

    document = {
        "type": "FeatureCollection",
        "features": [
            feature("Z-1", [[112.1, 37.0, 812.5], [112.6, 37.5, 790.0]]),
            feature("ONE-POINT", [[112.1, 37.0]]),
            feature("FLAT-1", [[112.2, 37.1], [112.7, 37.6]]),
            # Paris to Lyon, sent by mistake; a corridor with no coordinates
            feature("ABROAD", [[2.35, 48.85], [4.83, 45.76]]),
            feature("EMPTY", []),
        ],
    }
    path = tmp_path / "tracks.geojson"
    path.write_text(json.dumps(document))
    record = submit(ready, path, "corridors", period="2020-03")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 3), record.message
    found = {e["row"]: e["reason"] for e in errors_of(ready, record)}
    assert sorted(found) == ["2", "4", "5"]
    assert "wholly outside the region 山西省 (140000)" in found["4"]
    assert "empty" in found["5"]
    stored = {r["corridor_id"]: r["geometry"] for r in lake_rows(ready, "corridors")}
    assert stored["Z-1"] == "LINESTRING (112.1 37, 112.6 37.5)"


def test_ingested_population_replaces_the_estimates(ready: Settings, tmp_path: Path):
    from telereg.geography.service import populated
    from telereg.reference.regions import load_regions

    shipped = load_regions(ready.region_code)
    # Jincheng's three counties with no census figure shipped (see population-…-counties.csv)
    jincheng = [c for c in shipped.counties_of("140500") if c.population_estimated]
    first, second, third = (c.code for c in jincheng)
    path = tmp_path / "人口.csv"
    path.write_bytes(
        (
            "行政区划代码,名称,常住人口,年份,数据来源\n"
            f"{first},甲,300000,2020,县级公报\n"
            f"{second},乙,200000,2020,县级公报\n"
            "149999,不存在,5,2020,县级公报\n"
            f"{third},丙,-3,2020,县级公报\n"
            "140200,大同市,3000000,2021,年鉴\n"
        ).encode("gbk")
    )
    record = submit(ready, path, "population", operator="CA")
    assert (record.rows_accepted, record.rows_quarantined) == (3, 2), record
    reasons_of = {(e["row"], e["column"]): e["reason"] for e in errors_of(ready, record)}
    assert "city or county code" in reasons_of[("4", "region_code")]
    assert "below the minimum" in reasons_of[("5", "population")]

    with session_scope(ready) as session:
        found = populated(session, ready)
    by_code = found.by_code
    assert (by_code[first].population, by_code[first].population_estimated) == (300_000, False)
    assert by_code[second].population == 200_000
    assert by_code[third].population_estimated, "no valid figure: still an estimate"
    # The third takes what the city's other counties leave; the city stays as shipped.
    city = by_code["140500"]
    assert city.population == shipped.by_code["140500"].population
    total = sum(c.population or 0 for c in found.counties_of("140500"))
    assert abs(total - (city.population or 0)) <= 1
    # Datong's own figure replaces the shipped one, and its counties share it.
    assert by_code["140200"].population == 3_000_000
    datong = sum(c.population or 0 for c in found.counties_of("140200"))
    assert abs(datong - 3_000_000) <= len(found.counties_of("140200"))
    assert found.province.population == sum(c.population or 0 for c in found.cities)
    assert "县级公报 (2020)" in found.population_source
    assert "年鉴 (2021)" in found.population_source
    # Elsewhere nothing moved.
    other = shipped.counties_of("140300")[0]
    assert by_code[other.code].population == other.population

    # A later figure for the same county wins.
    again = tmp_path / "更正.csv"
    again.write_text(
        f"region_code,population,year,source\n{first},310000,2020,更正\n", encoding="utf-8"
    )
    assert submit(ready, again, "population", operator="CA", period="2022-01").status == (
        "accepted"
    )
    with session_scope(ready) as session:
        assert populated(session, ready).by_code[first].population == 310_000
    # Reference figures come from the administration, never from an operator's user.
    unicom = principal_of_role(Role.OPERATOR, operator_code="CUCC")
    with pytest.raises(PermissionDeniedError, match="population is the administration's"):
        submit(ready, again, "population", operator="CUCC", principal=unicom)


def test_longitude_and_latitude_columns_declared_gcj02_are_stored_as_wgs84(
    ready: Settings, tmp_path: Path
):
    from telereg.core.geo import gcj02_to_wgs84

    path = tmp_path / "cells-gcj.csv"
    path.write_text(CELLS_HEADER + "J0001,S1,112.55,37.87,140100,4G\n")
    record = submit(ready, path, "cells", operator="CUCC", period="2021-11", crs="gcj02")
    assert record.status == "accepted", record.message
    [row] = [r for r in lake_rows(ready, "cells") if r["cell_id"] == "J0001"]
    lon, lat = gcj02_to_wgs84(112.55, 37.87)
    assert (row["longitude"], row["latitude"]) == pytest.approx((float(lon), float(lat)), abs=1e-7)
    assert 0.001 < abs(row["longitude"] - 112.55) < 0.01, (
        "moved by the few hundred metres of GCJ-02"
    )


def test_a_list_without_dates_needs_its_month(ready: Settings, tmp_path: Path):
    # Filed under today's month, a corrected cell list would sit beside the one it corrects.
    path = tmp_path / "cells-fix.csv"
    path.write_text(CELLS_HEADER + "C0001,S01,112.60,37.90,140100,4G\n")
    with session_scope(ready) as session:
        before = session.query(Submission).count()
    with pytest.raises(InputError, match=r"cells has no date column.*give the period"):
        submit(ready, path, "cells")
    with session_scope(ready) as session:
        assert session.query(Submission).count() == before, "nothing recorded"
    corrected = submit(ready, path, "cells", period="2021-11")
    assert corrected.superseded is not None, "with the month, it replaces the list it corrects"


def test_a_standing_list_needs_no_month(ready: Settings, tmp_path: Path):
    corridor = {
        "type": "Feature",
        "properties": {"corridor_id": "X-1", "name": "测试线", "kind": "expressway"},
        "geometry": {"type": "LineString", "coordinates": [[112.0, 37.0], [112.5, 37.5]]},
    }
    path = tmp_path / "corridor.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [corridor]}))
    record = submit(ready, path, "corridors")
    assert record.status == "accepted", record.message
    assert is_month(record.period)


def test_each_operator_s_cells_as_they_stood_in_a_month(ready: Settings, tmp_path: Path):
    def cells(name: str, operator: str, period: str) -> str:
        path = tmp_path / name
        path.write_text(CELLS_HEADER + "C0009,S09,112.60,37.90,140100,4G\n")
        record = submit(ready, path, "cells", operator=operator, period=period)
        assert record.status == "accepted", record.message
        with session_scope(ready) as session:
            return session.get(Submission, record.id).lake_path

    # CMCC: 2021-11 (the fixture's), 2021-12, 2022-02; CUCC: only 2022-01.
    with session_scope(ready) as session:
        november = lake.current_files(session, ready, "cells")[0]
    december = cells("cmcc-12.csv", "CMCC", "2021-12")
    february = cells("cmcc-02.csv", "CMCC", "2022-02")
    january = cells("cucc-01.csv", "CUCC", "2022-01")

    def as_of(period: str) -> set[str]:
        with session_scope(ready) as session:
            found = lake.files_as_of(session, ready, "cells", period)
        return {str(p.relative_to(ready.lake_dir)) for p in found}

    first = str(november.relative_to(ready.lake_dir))
    assert as_of("2021-11") == {first, january}, "CUCC's only list, though later"
    assert as_of("2021-12") == {december, january}
    assert as_of("2022-01") == {december, january}
    assert as_of("2022-03") == {february, january}


def test_a_mistyped_date_costs_its_row_not_the_file(ready: Settings, tmp_path: Path):
    calls = [GOOD_CALL.replace("10:00:00", f"10:{m % 60:02d}:{m // 60:02d}") for m in range(40)]
    calls[25] = calls[25].replace("2021-11-05", "2012-11-05")
    record = submit(ready, cdr_file(tmp_path, calls), "voice_cdr")
    assert (record.status, record.period, record.rows_quarantined) == ("partial", "2021-11", 1)
    assert "period 2021-11 taken from the rows; 1 row(s) dated outside it" in record.message
    (error,) = errors_of(ready, record)
    assert (error["row"], error["column"]) == ("27", "start_time")

    # Two months in like measure are two files run together: refused, as before.
    halves = calls[:20] + [c.replace("2021-11-05", "2021-12-05") for c in calls[20:25]]
    refused = submit(ready, cdr_file(tmp_path, halves, "halves.csv"), "voice_cdr")
    assert refused.status == "rejected"
    assert "rows span 2021-11 to 2021-12" in refused.message


def test_a_partly_accepted_file_is_checked_again_once_its_cells_arrive(
    ready: Settings, tmp_path: Path
):
    calls = cdr_file(tmp_path, [GOOD_CALL, GOOD_CALL.replace("C0001", "C0042")], "partial.csv")
    first = submit(ready, calls, "voice_cdr")
    assert (first.status, first.rows_accepted) == ("partial", 1)
    files_before = sorted(p.name for p in ready.lake_dir.rglob("*.parquet"))
    again = submit(ready, calls, "voice_cdr")
    assert (again.id, again.duplicate_of) == (first.id, first.id), "the cell is still unknown"
    assert sorted(p.name for p in ready.lake_dir.rglob("*.parquet")) == files_before
    late_cells = tmp_path / "cells-late.csv"
    late_cells.write_text(
        CELLS_HEADER + "C0001,S01,112.55,37.87,140100,4G\nC0042,S04,112.58,37.86,140100,5G\n"
    )
    assert submit(ready, late_cells, "cells", period="2021-11").status == "accepted"
    rechecked = submit(ready, calls, "voice_cdr")
    assert rechecked.duplicate_of is None
    assert (rechecked.status, rechecked.rows_accepted) == ("accepted", 2)
    assert rechecked.superseded == first.id
    assert len(lake_rows(ready, "voice_cdr")) == 2
    # Accepted whole, the same bytes are a plain duplicate again.
    assert submit(ready, calls, "voice_cdr").duplicate_of == rechecked.id


OBSTACLES_HEADER = "obstacle_id,site_id,county_code,kind,description,reported_date\n"


def test_a_number_written_in_free_text_is_masked_in_the_lake(ready: Settings, tmp_path: Path):
    # A contact's phone number in a description: not an identifier column, so no token, but
    # it names someone. A police case reference keeps its digits.
    path = tmp_path / "obstacles.csv"
    # Numbers are written in groups, and typed in full-width digits, as often as not.
    written = [
        "call 13812345678 or 110101199003077777",
        "张工 138-1234-5678，业主 140102 19840707 857X",
        "电话：１３８１２３４５６７８ 或 139 1234 5678",
        "no power yet 2021 since 2021-11-05",
    ]
    lines = [f"A0000{n},S1,140105,power,{text},2021-12-01" for n, text in enumerate(written)]
    path.write_text(OBSTACLES_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert record.rows_accepted == 4, record.message
    shown = [r["description"] for r in lake_rows(ready, "site_obstacles")]
    assert shown == [
        "call 138****5678 or 110****7777",
        "张工 138****5678，业主 140****857X",
        "电话：１３８****５６７８ 或 139****5678",
        "no power yet 2021 since 2021-11-05",
    ]
    listed = registry.contract("site_obstacles").column("description").rules()
    assert any("masked" in rule for rule in listed), "the dataset's documentation says so"
    assert not registry.contract("police_feedback").column("case_reference").masks_numbers


def test_a_number_written_in_groups_is_masked_in_the_lake_quarantine_and_report(
    ready: Settings, tmp_path: Path
):
    # Dots, slashes, underscores, long dashes, spaced hyphens, double spaces: the number
    # is a number all the same.
    written = [
        "138.1234.5678",
        "138/1234/5678",
        "138_1234_5678",
        "138—1234—5678",
        "138 - 1234 - 5678",
        "138  1234  5678",
    ]
    described = [
        f"A1{n:03d},S1,140105,power,业主 {w} 张三,2021-12-01" for n, w in enumerate(written)
    ]
    # (the same numbers where a date belongs: quarantined, and shown in the error report)
    misdated = [f"A2{n:03d},S1,140105,power,no power,{w}" for n, w in enumerate(written)]
    path = tmp_path / "obstacles.csv"
    path.write_text(OBSTACLES_HEADER + "\n".join(described + misdated) + "\n", encoding="utf-8")
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (6, 6), record.message
    shown = [r["description"] for r in lake_rows(ready, "site_obstacles")]
    assert shown == ["业主 138****5678 张三"] * len(written)
    report = errors_of(ready, record)
    assert [e["column"] for e in report] == ["reported_date"] * len(written)
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    for values in ([e["value"] for e in report], [str(r) for r in rows]):
        for value in values:
            assert "1234" not in value, value
            assert "138" in value, value
            assert "5678" in value, value


def test_a_case_reference_is_a_code_not_a_persons_particulars(ready: Settings, tmp_path: Path):
    # The reference goes into packages and case titles as written: a victim's name and
    # numbers written there would go with it.
    references = [
        "JQ2021110500001",
        "A1401/2021-17_x",
        "受害人 王五 13812345678 身份证140102198407078571",
        "13812345678",
        "140102198407078571",
    ]
    path = tmp_path / "feedback.csv"
    path.write_text(
        "phone,imei,domain,case_reference,confirmed_on,fraud_type\n"
        + "".join(f"1380000000{n},,,{r},2021-10-03,loan\n" for n, r in enumerate(references)),
        encoding="utf-8",
    )
    record = submit(ready, path, "police_feedback", operator="CA", period="2021-10")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 3), record.message
    kept = [r["case_reference"] for r in lake_rows(ready, "police_feedback")]
    assert kept == references[:2]
    report = errors_of(ready, record)
    assert [(e["row"], e["reason"].split(":")[0]) for e in report] == [
        ("4", "does not have the expected form"),
        ("5", "looks like a phone or ID-card number"),
        ("6", "looks like a phone or ID-card number"),
    ]
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    for shown in (repr(report), repr(rows)):
        assert "13812345678" not in shown
        assert "140102198407078571" not in shown


def test_an_identifier_in_a_date_column_is_masked_in_the_quarantine(
    ready: Settings, tmp_path: Path
):
    path = cdr_file(tmp_path, [GOOD_CALL.replace("2021-11-05 10:00:00", "110101199003077777")])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.rows_quarantined == 1
    _, rows, _ = quarantined_rows(ready, _submission(ready, record.id))
    assert "110101199003077777" not in repr(rows)
    assert "110***********7777" in repr(rows)


def test_a_time_with_its_utc_offset_is_kept_as_china_standard_time(ready: Settings, tmp_path: Path):
    moments = ["2021-11-04T16:30:00Z", "2021-11-05 10:00:00+08:00", "2021-11-04 22:30:00-0300"]
    path = cdr_file(tmp_path, [GOOD_CALL.replace("2021-11-05 10:00:00", m) for m in moments])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.rows_accepted == 3, record.message
    times = [r["start_time"].isoformat(sep=" ") for r in lake_rows(ready, "voice_cdr")]
    assert times == ["2021-11-05 00:30:00", "2021-11-05 10:00:00", "2021-11-05 09:30:00"]
    # A Parquet file whose times are instants in UTC: the first half hour of November.
    sms = pa.table(
        {
            "sender": ["13812341234"],
            "receiver": ["13900001111"],
            "sent_at": pa.array([1635697800], pa.timestamp("s", tz="UTC")),
            "direction": ["MO"],
        }
    )
    pq.write_table(sms, tmp_path / "sms.parquet")
    record = submit(ready, tmp_path / "sms.parquet", "sms", period="2021-11")
    assert record.rows_accepted == 1, record.message
    assert lake_rows(ready, "sms")[0]["sent_at"].isoformat(sep=" ") == "2021-11-01 00:30:00"


def test_an_integer_column_takes_whole_numbers_only(ready: Settings, tmp_path: Path):
    durations = ["60.5", "0x1F", "-0.4", "60", "60.0"]
    path = cdr_file(tmp_path, [GOOD_CALL.replace(",35,", f",{d},") for d in durations])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 3), record.message
    assert {e["row"] for e in errors_of(ready, record)} == {"2", "3", "4"}
    assert [r["duration_s"] for r in lake_rows(ready, "voice_cdr")] == [60, 60]


def test_the_chinese_column_names_of_the_documentation_are_headers(ready: Settings, tmp_path: Path):
    names = {c.name: c.description_zh for c in registry.contract("voice_cdr").columns}
    header = ",".join(names[n] for n in CDR_HEADER.strip().split(",")) + "\n"
    assert "通话时长（秒）" in header
    path = tmp_path / "cdr.csv"
    path.write_text(header + GOOD_CALL + "\n")
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.rows_accepted == 1, record.message


def test_numbers_a_program_kept_as_floats(ready: Settings, tmp_path: Path):
    # An 18-digit ID number typed into a spreadsheet as a number has lost its last digits:
    # refused, not read as another person's number.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    columns = [c.name for c in registry.contract("subscriptions").columns]
    sheet.append(columns)
    row = {
        "phone": "13812341234",
        "imsi": "460001234567890",
        "id_number": 1.101011990010103e17,
        "outlet_id": "OUT1",
        "channel": "own_store",
        "activated_at": "2021-11-02 09:00:00",
        "card_type": "personal",
        "home_city": "140100",
        "status": "active",
    }
    sheet.append([row[c] for c in columns])
    workbook.save(tmp_path / "subs.xlsx")
    record = submit(ready, tmp_path / "subs.xlsx", "subscriptions", period="2021-11")
    assert record.rows_quarantined == 1, record.message
    assert [e["column"] for e in errors_of(ready, record)] == ["id_number"]
    # pandas writes a column of integers with a gap as floats: the numbers are read whole.
    calls = pa.table(
        {
            "caller": pa.array([13812341234.0, 13812341234.0], pa.float64()),
            "callee": pa.array([13900001111.0, None], pa.float64()),
            "start_time": ["2021-11-05 10:00:00", "2021-11-05 11:00:00"],
            "duration_s": [35, 40],
            "direction": ["MO", "MO"],
            "cell_id": ["C0001", "C0001"],
        }
    )
    pq.write_table(calls, tmp_path / "calls.parquet")
    record = submit(ready, tmp_path / "calls.parquet", "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert [e["column"] for e in errors_of(ready, record)] == ["callee"], "the gap is missing"


def test_one_subscriber_one_token_whatever_the_country_prefix(ready: Settings, tmp_path: Path):
    callers = ["13812341234", "+8613812341234", "8613812341234", "008613812341234"]
    path = cdr_file(tmp_path, [GOOD_CALL.replace("13812341234", c, 1) for c in callers])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.rows_accepted == 4, record.message
    assert len({r["caller"] for r in lake_rows(ready, "voice_cdr")}) == 1


def test_a_header_named_twice_is_refused(ready: Settings, tmp_path: Path):
    path = tmp_path / "cdr.csv"
    path.write_text(CDR_HEADER.strip() + ",caller\n" + GOOD_CALL + ",13700000000\n")
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert record.status == "rejected"
    assert "the column 'caller' appears twice" in record.message
    assert lake_rows(ready, "voice_cdr") == []


def test_rows_with_no_value_at_all_are_skipped_with_a_note(ready: Settings, tmp_path: Path):
    path = cdr_file(tmp_path, [GOOD_CALL, ",,,,,,", ",,,,,,", GOOD_CALL.replace(",35,", ",-1,")])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_total, record.rows_accepted, record.rows_quarantined) == (2, 1, 1)
    assert [e["row"] for e in errors_of(ready, record)] == ["5"], "rows keep their numbers"
    assert "2 rows with no value at all were skipped" in record.message


def test_a_gbk_line_among_utf8_text_costs_that_line(ready: Settings, tmp_path: Path):
    # Read as GB18030, the UTF-8 rows would be garbled; read as UTF-8, one line is lost.
    rows = "".join(f"A{i:05d},S1,140105,land,业主阻挠进场{i},2021-12-01\n" for i in range(5))
    pasted = "B00001,S1,140105,land,物业不同意,2021-12-02\n".encode("gbk")
    path = tmp_path / "mixed.csv"
    path.write_bytes(OBSTACLES_HEADER.encode() + rows.encode() + pasted)
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (5, 1), record.message
    assert _submission(ready, record.id).encoding == "utf-8"
    shown = [r["description"] for r in lake_rows(ready, "site_obstacles")]
    assert shown == [f"业主阻挠进场{i}" for i in range(5)]
    # One bad byte at the top of a plain file costs its line, not the file.
    path = tmp_path / "early.csv"
    path.write_bytes(
        OBSTACLES_HEADER.encode()
        + b"C00001,S1,140105,land,\xff,2021-12-02\n"
        + b"".join(b"C%05d,S1,140105,power,none,2021-12-01\n" % i for i in range(2, 50))
    )
    record = submit(ready, path, "site_obstacles", operator="CUCC", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (48, 1), record.message
    # So in a file with a byte-order mark, as Excel saves "CSV UTF-8": the line's number is
    # that of the file.
    path = tmp_path / "marked.csv"
    path.write_bytes(codecs.BOM_UTF8 + OBSTACLES_HEADER.encode() + pasted + rows.encode())
    record = submit(ready, path, "site_obstacles", operator="CTCC", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (5, 1), record.message
    assert [e["row"] for e in errors_of(ready, record)] == ["2"]


def test_a_long_line_of_chinese_text_is_a_row_error(ready: Settings, tmp_path: Path):
    # The reader's message quotes the line cut at a byte limit, mid-character.
    path = tmp_path / "long.csv"
    path.write_text(
        OBSTACLES_HEADER + "A00001,S1,140105,land," + "业主阻挠" * 600_000 + ",2021-12-01\n"
        "A00002,S1,140105,land,业主阻挠,2021-12-01\n",
        encoding="utf-8",
    )
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message


def test_compact_times_as_operators_cdr_exports_write_them(ready: Settings, tmp_path: Path):
    # 20211105100000, and no month given: the month comes from the rows.
    moments = ["20211105100000", "20211130235959", "20211399000000"]
    path = cdr_file(tmp_path, [GOOD_CALL.replace("2021-11-05 10:00:00", m) for m in moments])
    record = submit(ready, path, "voice_cdr")
    assert (record.period, record.rows_accepted, record.rows_quarantined) == ("2021-11", 2, 1)
    times = [r["start_time"].isoformat(sep=" ") for r in lake_rows(ready, "voice_cdr")]
    assert times == ["2021-11-05 10:00:00", "2021-11-30 23:59:59"]
    assert [e["column"] for e in errors_of(ready, record)] == ["start_time"]


def test_rows_after_empty_lines_keep_their_line_numbers(ready: Settings, tmp_path: Path):
    # The reader skips empty lines without a word; the rows after them keep the numbers
    # a text editor shows. Line 4 is empty, line 7 (after another empty line) is bad, and
    # line 9 is short of required values.
    lines = [GOOD_CALL, GOOD_CALL, "", GOOD_CALL, "", GOOD_CALL.replace(",35,", ",-1,")]
    lines += [GOOD_CALL, "only,three,fields"]
    path = tmp_path / "cdr.csv"
    path.write_bytes((CDR_HEADER.replace("\n", "\r\n") + "\r\n".join(lines) + "\r\n").encode())
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (4, 2), record.message
    errors = errors_of(ready, record)
    assert sorted({e["row"] for e in errors}) == ["7", "9"]
    assert ("9", "duration_s", "required value is missing") in {
        (e["row"], e["column"], e["reason"]) for e in errors
    }
    assert [r["source_row"] for r in lake_rows(ready, "voice_cdr")] == [2, 3, 5, 8]


def test_rows_below_empty_lines_above_the_header_keep_their_line_numbers(
    ready: Settings, tmp_path: Path
):
    bad = GOOD_CALL.replace(",35,", ",-1,")
    for ending in ("\n", "\r\n"):
        # Lines 1 and 2 empty, the header on line 3: the bad row is on line 5.
        text = ending * 2 + ending.join([CDR_HEADER.strip(), GOOD_CALL, bad]) + ending
        path = tmp_path / "cdr.csv"
        path.write_bytes(text.encode())
        record = submit(ready, path, "voice_cdr", period="2021-11")
        assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
        assert {e["row"] for e in errors_of(ready, record)} == {"5"}, repr(ending)
        assert [r["source_row"] for r in lake_rows(ready, "voice_cdr")] == [4]


def test_a_csv_whose_lines_end_in_both_ways_is_read(ready: Settings, tmp_path: Path):
    # Written on Windows, with a line pasted in from a file written elsewhere.
    bad = GOOD_CALL.replace(",35,", ",-1,")
    path = tmp_path / "cdr.csv"
    path.write_bytes(f"{CDR_HEADER.strip()}\r\n{GOOD_CALL}\n{bad}\r\n{GOOD_CALL}\r\n".encode())
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 1), record.message
    assert {e["row"] for e in errors_of(ready, record)} == {"3"}


def test_a_blank_line_inside_a_quoted_value_does_not_shift_the_rows_after_it(
    ready: Settings, tmp_path: Path
):
    # A description typed with an empty line in it (Alt+Enter twice in Excel): one row, and
    # the bad county code of the third row is reported as row 4, as a spreadsheet shows it.
    rows = [
        ["A1", "S1", "140105", "power", "第一行\n\n第三行", "2021-12-01"],
        ["A2", "S1", "140105", "power", "ok", "2021-12-01"],
        ["A3", "S1", "999999", "power", "bad county", "2021-12-01"],
    ]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([OBSTACLES_HEADER.strip().split(","), *rows])
    path = tmp_path / "obstacles.csv"
    path.write_text(text.getvalue())
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (2, 1), record.message
    assert [e["row"] for e in errors_of(ready, record)] == ["4"]
    accepted = [r for r in lake_rows(ready, "site_obstacles") if r["obstacle_id"] == "A1"]
    assert accepted[0]["description"] == "第一行\n\n第三行"


def test_a_later_sheet_with_the_same_columns_otherwise_written_is_read(
    ready: Settings, tmp_path: Path
):
    # One sheet per city, as clerks keep them: the third in Chinese, in another order, with
    # a remark column. Its cells are the same columns, so they are read, not dropped.
    headers = ["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"]
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "太原"
    first.append(headers)
    first.append(["Y0001", "S9", 112.5, 37.8, 140100, "5G"])
    second = workbook.create_sheet("大同")
    second.append(headers)
    second.append(["Y0002", "S9", 113.3, 40.1, 140200, "5G"])
    third = workbook.create_sheet("阳泉")
    third.append(["制式", "小区标识", "站址编号", "经度", "纬度", "地市编码", "备注"])
    third.append(["4G", "Y0003", "S8", 113.6, 37.9, 140300, "新建"])
    workbook.save(tmp_path / "by-city.xlsx")
    record = submit(ready, tmp_path / "by-city.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.status, record.rows_accepted) == ("accepted", 3), record.message
    rows = {r["cell_id"]: r for r in lake_rows(ready, "cells") if r["cell_id"].startswith("Y")}
    assert (rows["Y0003"]["technology"], rows["Y0003"]["city_code"]) == ("4G", "140300")
    assert rows["Y0003"]["source_row"] == 2 * 10_000_000 + 2


def test_a_column_only_a_later_sheet_has_is_named_not_dropped_silently(
    ready: Settings, tmp_path: Path
):
    headers = CDR_HEADER.strip().split(",")
    workbook = openpyxl.Workbook()
    workbook.active.append(headers[:6])  # (no IMEI column)
    workbook.active.append(GOOD_CALL.split(",")[:6])
    later = workbook.create_sheet("下半月")
    later.append(headers)
    later.append(GOOD_CALL.replace("10:00", "11:00").split(","))
    workbook.save(tmp_path / "cdr.xlsx")
    record = submit(ready, tmp_path / "cdr.xlsx", "voice_cdr")
    assert record.rows_accepted == 2, record.message
    assert "were not read (下半月: imei)" in record.message


def test_a_title_row_above_a_sheets_header_is_skipped(ready: Settings, tmp_path: Path):
    # As Chinese report templates have it: the report's name in a merged first row, a
    # blank row, then the header; rows keep their spreadsheet numbers.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["中国联通 2021年11月 基站小区信息表"])
    sheet.merge_cells("A1:F1")
    sheet.append([])
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["T0001", "S9", 112.5, 37.8, 140100, "5G"])
    sheet.append(["T0002", "S9", 112.5, 99.0, 140100, "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert errors_of(ready, record)[0]["row"] == "5", "the spreadsheet's own row number"
    assert "2 title row(s) above the header were skipped" in record.message


def test_a_sheet_begun_below_many_blank_rows_is_read(ready: Settings, tmp_path: Path):
    # Eight blank rows, a title, the header on row 10: more rows above it than a title
    # takes, but blank ones say nothing.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A9"] = "基站小区信息表"
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["T0001", "S9", 112.5, 37.8, 140100, "5G"])
    sheet.append(["T0002", "S9", 112.5, 99.0, 140100, "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert errors_of(ready, record)[0]["row"] == "12", "the spreadsheet's own row number"


def test_a_cover_sheet_and_hidden_sheets_are_not_read_as_data(ready: Settings, tmp_path: Path):
    # Instructions first, last month's rows kept in a hidden sheet, then the data: only the
    # data is read, its rows numbered as the first sheet read, and the rest named.
    workbook = openpyxl.Workbook()
    cover = workbook.active
    cover.title = "填报说明"
    cover.append(["联系人：李工", "13912341111"])
    old = workbook.create_sheet("旧数据")
    data = workbook.create_sheet("当月")
    for sheet in (old, data):
        sheet.append(CELLS_HEADER.strip().split(","))
    old.append(["H0001", "S9", 112.5, 37.8, 140100, "4G"])
    old.sheet_state = "hidden"
    data.append(["H0002", "S9", 112.5, 37.8, 140100, "5G"])
    data.append(["H0003", "S9", 112.5, 99.0, 140100, "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert errors_of(ready, record)[0]["row"] == "3"
    ours = {r["cell_id"] for r in lake_rows(ready, "cells") if r["cell_id"].startswith("H")}
    assert ours == {"H0002"}
    assert "before the one with the dataset's columns not read: 填报说明" in record.message
    assert "hidden sheet(s) not read: 旧数据" in record.message


def test_numbers_in_sheet_names_and_headers_are_masked_in_the_message(
    ready: Settings, tmp_path: Path
):
    # Sheets named after the people they are about, hidden or not read for their header.
    workbook = openpyxl.Workbook()
    data = workbook.active
    data.append(CELLS_HEADER.strip().split(","))
    data.append(["H0002", "S9", 112.5, 37.8, 140100, "5G"])
    workbook.create_sheet("张三13812345678").sheet_state = "hidden"
    workbook.create_sheet("李四 139 1111 2222").append(["姓名", "电话"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert record.status == "accepted", record.message
    assert "hidden sheet(s) not read: 张三138****5678" in record.message
    assert "whose header differs from the first sheet's: 李四 139******2222" in record.message
    # A file without its header line whose first row names one number twice.
    twice = "13812341234,13812341234,2021-11-05 10:00:00,35,MO,C0001,861234567890123"
    path = cdr_file(tmp_path, [twice, GOOD_CALL]).read_text().split("\n", 1)[1]
    (tmp_path / "headless.csv").write_text(path)
    record = submit(ready, tmp_path / "headless.csv", "voice_cdr", period="2021-11")
    assert "the column '138****1234' appears twice" in record.message
    assert "13812341234" not in record.message
    # The file's name too, as stored and shown.
    named = submit(
        ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr", filename="张三13812341234.csv"
    )
    assert named.filename == "张三138****1234.csv"
    assert _submission(ready, named.id).filename == "张三138****1234.csv"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_title_lines_above_a_csvs_header_are_skipped(
    ready: Settings, tmp_path: Path, encoding: str
):
    # Saved from such a report as CSV: the title alone on its line (or with the empty cells
    # of its merged row), a unit line, then the header. Lines keep their file numbers, past
    # an empty line and a short one too.
    lines = ["中国联通2021年11月基站小区信息表,,,,,", "单位：个", CELLS_HEADER.strip()]
    lines += ["T0001,S9,112.5,37.8,140100,5G", "", "T0002,S9,112.5,99.0,140100,5G", "T0003,S9"]
    path = tmp_path / "cells.csv"
    path.write_bytes("\r\n".join([*lines, ""]).encode(encoding))
    record = submit(ready, path, "cells", operator="CUCC", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 2), record.message
    errors = errors_of(ready, record)
    assert sorted({e["row"] for e in errors}) == ["6", "7"]
    assert {e["column"] for e in errors if e["row"] == "7"} == {
        "longitude",
        "latitude",
        "city_code",
        "technology",
    }
    assert [r["source_row"] for r in lake_rows(ready, "cells") if r["cell_id"] == "T0001"] == [4]
    assert "2 title line(s) above the header were skipped" in record.message


def test_full_width_digits_and_stray_spaces_are_normalised_where_a_value_has_a_form(
    ready: Settings, tmp_path: Path
):
    # As typed with a Chinese input method, or pasted from a web page: the caller in
    # full-width digits with a full-width +86, a tab after the duration, a no-break space
    # before the direction. The subscriber keeps one token; a row still bad once normalised
    # (a full-width letter in a number) keeps its values as sent for its report.
    wide = GOOD_CALL.replace("13812341234", "＋８６１３８１２３４１２３４")
    spaced = GOOD_CALL.replace(",35,", ",35\t,").replace(",MO,", ",\u00a0MO,")
    still_bad = GOOD_CALL.replace(",35,", ",３５ｓ,")
    path = cdr_file(tmp_path, [GOOD_CALL, wide, spaced, still_bad])
    record = submit(ready, path, "voice_cdr", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (3, 1), record.message
    assert "2 row(s) passed once their values were normalised" in record.message
    rows = lake_rows(ready, "voice_cdr")
    assert len({r["caller"] for r in rows}) == 1
    assert {(r["duration_s"], r["direction"]) for r in rows} == {(35, "MO")}
    [error] = errors_of(ready, record)
    assert (error["row"], error["column"], error["value"]) == ("5", "duration_s", "３５ｓ")


def test_a_listed_value_may_be_written_by_its_chinese_name(ready: Settings, tmp_path: Path):
    # The datasets page and the error report name an obstacle's kinds in Chinese; a clerk
    # who writes 规划 means planning. A name no kind has stays an error.
    path = tmp_path / "obstacles.csv"
    rows = ["B00001,S1,140105,规划,x,2021-12-01", "B00002,S1,140105,天气,x,2021-12-01"]
    path.write_text(OBSTACLES_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    kinds = {r["obstacle_id"]: r["kind"] for r in lake_rows(ready, "site_obstacles")}
    assert kinds["B00001"] == "planning"
    assert [e["value"] for e in errors_of(ready, record)] == ["天气"]


def test_dates_as_spreadsheets_give_them_are_read(ready: Settings, tmp_path: Path):
    # A day Excel shows as its serial number in a cell formatted "General", and the Chinese
    # form; a time as a serial with its fraction of the day.
    path = tmp_path / "obstacles.csv"
    rows = ["D00001,S1,140105,power,x,44531", "D00002,S1,140105,power,x,2021年12月2日"]
    path.write_text(OBSTACLES_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    record = submit(ready, path, "site_obstacles", period="2021-12")
    assert record.rows_accepted == 2, record.message
    days = {r["obstacle_id"]: str(r["reported_date"]) for r in lake_rows(ready, "site_obstacles")}
    assert (days["D00001"], days["D00002"]) == ("2021-12-01", "2021-12-02")
    calls = cdr_file(tmp_path, [GOOD_CALL.replace("2021-11-05 10:00:00", "44505.4166666667")])
    record = submit(ready, calls, "voice_cdr", period="2021-11")
    assert record.rows_accepted == 1, record.message
    ours = [r for r in lake_rows(ready, "voice_cdr") if r["operator"] == "CMCC"]
    assert [str(r["start_time"]) for r in ours] == ["2021-11-05 10:00:00"], "it replaced the rest"


def test_a_header_alone_is_not_taken_for_a_title(ready: Settings, tmp_path: Path):
    # One named column and empty ones: no later line of several values, so no title; the
    # missing columns are named as before.
    path = tmp_path / "cells.csv"
    path.write_text("cell_id,,,\nT0001,,,\n", encoding="utf-8")
    record = submit(ready, path, "cells", operator="CUCC", period="2021-11")
    assert record.status == "rejected"
    assert "missing required column(s) site_id" in record.message


def test_a_workbooks_cells_merged_down_are_read_in_every_row_they_cover(
    ready: Settings, tmp_path: Path
):
    # A report sheet merges a city's code down over its cells' rows: a person sees it in
    # each row, the file holds it only in the first. A blank row under a merge stays blank.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["M0001", "S1", 112.5, 37.8, 140100, "5G"])
    sheet.append(["M0002", "S1", 112.5, 37.8, None, "5G"])
    sheet.append(["M0003", "S2", 112.6, 37.9, None, "4G"])
    sheet.append(["M0004", "S2", 112.6, 37.9, 140200, "5G"])
    sheet.append(["M0005", "S3", 112.7, 37.7, None, None])
    sheet.append([None] * 6)
    sheet.merge_cells("E2:E4")
    sheet.merge_cells("E5:E7")  # over a blank row: that row is no record
    sheet.merge_cells("F5:F6")
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.status, record.rows_total, record.rows_accepted) == ("accepted", 5, 5)
    assert "merged" in record.message
    rows = {r["cell_id"]: r for r in lake_rows(ready, "cells")}
    assert [rows[f"M000{i}"]["city_code"] for i in range(1, 6)] == ["140100"] * 3 + ["140200"] * 2
    assert rows["M0005"]["technology"] == "5G"


def test_a_two_digit_year_is_quarantined_not_read_as_the_year_21(ready: Settings, tmp_path: Path):
    two_digit = GOOD_CALL.replace("2021-11-05", "21-11-05")
    another = GOOD_CALL.replace("13812341234", "13812341235")
    path = cdr_file(tmp_path, [GOOD_CALL, two_digit, another])
    record = submit(ready, path, "voice_cdr")
    assert (record.period, record.status, record.rows_accepted) == ("2021-11", "partial", 2)
    (error,) = errors_of(ready, record)
    assert (error["row"], error["column"]) == ("3", "start_time")
    assert "1950" in error["reason"]
    assert "four digits" in error["reason"]
    # Sent alone, such rows name no month: the file asks for its period, not "0021-11".
    only = cdr_file(tmp_path, [two_digit], name="only.csv")
    refused = submit(ready, only, "voice_cdr")
    assert (refused.status, refused.period) == ("rejected", "")
    assert "give the period" in refused.message


def test_a_workbooks_formulas_with_no_saved_result_are_named_not_read_as_blanks(
    ready: Settings, tmp_path: Path
):
    # A program that writes formulas without calculating them leaves no result in the file:
    # read as blank, an optional column would be stored empty. The file is refused instead.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "小区"
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["F0001", "S1", 112.5, 37.8, 140100, "5G"])
    sheet.append(["F0002", "S1", "=C2+0.01", 37.8, "=E2", "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert record.status == "rejected"
    assert "2 formula cell(s) of sheet 小区 have no saved result (C3, E3)" in record.message
    assert "save it" in record.message
    assert not [r for r in lake_rows(ready, "cells") if r["cell_id"].startswith("F")]
    # Saved by Excel or WPS, a formula keeps its result beside it, and is read as that.
    from telereg.ingest.readers import _UNSAVED_FORMULA

    saved = b'<c r="E3" s="1"><f>E2</f><v>140100</v></c><c r="F3" t="s"><v>4</v></c>'
    assert _UNSAVED_FORMULA.search(saved) is None
    # An empty text saved as a formula's result (=IF(A2="","",A2), as Excel saves it) is
    # read as an empty cell, not refused.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology"])
    sheet.append(["F0003", "S1", 112.5, 37.8, 140100, "5G"])
    sheet.append(["F0004", "S1", 112.5, 37.8, 140100, "=F2"])
    workbook.save(tmp_path / "saved.xlsx")
    _rewrite_sheet(
        tmp_path / "saved.xlsx",
        b'<c r="F3"><f>F2</f><v /></c>',
        b'<c r="F3" t="str"><f>F2</f><v/></c>',
    )
    record = submit(ready, tmp_path / "saved.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    errors = errors_of(ready, record)
    assert [(e["column"], e["reason"]) for e in errors] == [
        ("technology", "required value is missing")
    ]
    assert _UNSAVED_FORMULA.search(b'<x:c r="E3"><x:f t="shared" si="0"/></x:c>') is not None


def test_numbers_as_spreadsheets_and_pandas_write_them_pass_a_second_look(
    ready: Settings, tmp_path: Path
):
    # pandas writes an integer column with gaps as floats (13812345611.0); Excel's #,##0
    # exports 1,234. Both are read as the number they are, and counted in the record.
    floated = GOOD_CALL.replace("13812341234", "13812345611.0")
    grouped = GOOD_CALL.replace(",35,", ',"1,234",').replace("13900001111", "13900001112")
    path = cdr_file(tmp_path, [floated, grouped])
    record = submit(ready, path, "voice_cdr")
    assert record.status == "accepted", record.message
    assert "2 row(s)" in record.message or "2 rows" in record.message, record.message
    rows = lake_rows(ready, "voice_cdr")
    assert sorted(r["duration_s"] for r in rows) == [35, 1234]
    from telereg.core.privacy import pseudonymise

    key = ready.secret("pseudonym_key")
    assert pseudonymise("13812345611", key) in {r["caller"] for r in rows}


def test_headers_match_however_brackets_spaces_and_line_breaks_are_typed(
    ready: Settings, tmp_path: Path
):
    # Half-width brackets where the datasets page has full-width ones, a space before the
    # unit, an upper-case ID: the same columns.
    header = "主叫号码,被叫号码,开始时间,通话时长 (秒),呼叫方向,小区 ID,IMEI\n"
    path = tmp_path / "cdr.csv"
    path.write_text(header + GOOD_CALL + "\n", encoding="utf-8")
    record = submit(ready, path, "voice_cdr")
    assert (record.status, record.rows_accepted) == ("accepted", 1), record.message
    workbook = openpyxl.Workbook()
    workbook.active.append(["主叫号码", "被叫号码", "开始时间", "时长(秒)", "呼叫方向", "小区标识"])
    workbook.active.append(GOOD_CALL.replace("13900001111", "13900001112").split(",")[:6])
    workbook.save(tmp_path / "cdr.xlsx")
    record = submit(ready, tmp_path / "cdr.xlsx", "voice_cdr")
    assert (record.status, record.rows_accepted) == ("accepted", 1), record.message


def test_a_submission_reads_back_with_tokens_of_its_own(ready: Settings, tmp_path: Path):
    # Were the lake's tokens read back, sending a number and reading its token would
    # re-identify that token wherever it is seen, with no reason given and no audit record.
    from telereg.core.privacy import pseudonymise
    from telereg.ingest.submissions import accepted_parquet, accepted_rows_csv

    again = GOOD_CALL.replace("10:00:00", "11:00:00")
    record = submit(ready, cdr_file(tmp_path, [GOOD_CALL, again, "x,y"]), "voice_cdr")
    found = _submission(ready, record.id)
    rows = list(csv.DictReader(io.StringIO("".join(accepted_rows_csv(ready, found))[1:])))
    lake_token = pseudonymise("13812341234", ready.secret("pseudonym_key"))
    assert lake_token in {r["caller"] for r in lake_rows(ready, "voice_cdr")}
    callers = {r["caller"] for r in rows}
    assert len(callers) == 1, "one number, one token within the submission"
    (caller,) = callers
    assert caller.startswith("r")
    assert len(caller) == 32
    assert caller != lake_token
    (tmp_path / "rows.parquet").write_bytes(b"".join(accepted_parquet(ready, found)))
    assert not any((ready.data_dir / "scratch").glob("*/rows.parquet")), "removed once read"
    assert set(pq.read_table(tmp_path / "rows.parquet").column("caller").to_pylist()) == callers
    _, quarantined, _ = quarantined_rows(ready, found)
    assert lake_token not in repr(quarantined)
    # Another submission of the same number reads back with another token.
    other = submit(ready, cdr_file(tmp_path, [GOOD_CALL], name="b.csv"), "voice_cdr")
    theirs = "".join(accepted_rows_csv(ready, _submission(ready, other.id)))
    assert caller not in theirs


def test_a_quote_inside_a_value_does_not_hide_the_empty_lines_after_it(
    ready: Settings, tmp_path: Path
):
    # 5" (inches) quotes nothing: the empty lines after it still move the rows down.
    rows = [
        GOOD_CALL.replace("861234567890123", '8612345678901"'),
        "",
        GOOD_CALL.replace("10:00", "11:00"),
        "",
        GOOD_CALL.replace(",35,", ",-1,"),
    ]
    record = submit(ready, cdr_file(tmp_path, rows), "voice_cdr")
    assert [e["row"] for e in errors_of(ready, record) if e["column"] == "duration_s"] == ["6"]
    from telereg.ingest.readers import empty_lines

    path = tmp_path / "quoted.csv"
    path.write_bytes(b'a,b\n1,"x\n\ny"\n2,3\n\n4,5\n')
    assert empty_lines(path) == [6], "the blank line inside the quoted value is its own"


def test_a_header_typed_with_a_line_break_in_a_cell_is_read(ready: Settings, tmp_path: Path):
    # Alt+Enter in a header cell: one quoted name over two lines, in a GBK file.
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    header = ["主叫号码", "被叫号码", "开始时间", "通话时长\n（秒）", "呼叫方向", "小区标识"]
    writer.writerow(header)
    writer.writerow(GOOD_CALL.split(",")[:6])
    writer.writerow(GOOD_CALL.replace(",35,", ",-5,").split(",")[:6])
    path = tmp_path / "cdr.csv"
    path.write_bytes(text.getvalue().encode("gbk"))
    record = submit(ready, path, "voice_cdr")
    assert (record.rows_accepted, record.rows_quarantined) == (1, 1), record.message
    assert [(e["row"], e["column"]) for e in errors_of(ready, record)] == [("3", "duration_s")]


def test_a_month_sent_in_two_parts_says_the_second_replaced_the_first(
    ready: Settings, tmp_path: Path
):
    # Clerks split a month's calls in halves; the second half, sent apart, replaces the
    # first. Not refused (a correction may change the days), but the record says so.
    first = [GOOD_CALL.replace("2021-11-05", f"2021-11-{d:02d}") for d in (1, 7, 15)]
    second = [GOOD_CALL.replace("2021-11-05", f"2021-11-{d:02d}") for d in (16, 20, 30)]
    submit(ready, cdr_file(tmp_path, first, name="part1.csv"), "voice_cdr")
    record = submit(ready, cdr_file(tmp_path, second, name="part2.csv"), "voice_cdr")
    assert record.status == "accepted"
    assert "2021-11-01–2021-11-15" in record.message
    assert "2021-11-16–2021-11-30" in record.message
    assert "one file" in record.message
    # A correction over the same days says nothing of the kind.
    fixed = [row.replace(",35,", ",36,") for row in second]
    again = submit(ready, cdr_file(tmp_path, fixed, name="part2b.csv"), "voice_cdr")
    assert "one file" not in again.message


def test_a_month_written_as_a_month_is_read_as_its_first_day(ready: Settings, tmp_path: Path):
    header = "county_code,month,households,households_10g_pon,pon_ports_10g,pon_ports_total"
    header += ",subscribers_gigabit,subscribers_500m,subscribers_total\n"
    counties = ["140105", "140106", "140107", "140108", "140109", "140110"]
    # (44531 is Excel's serial day 2021-12-01, as a cell formatted "General" shows it)
    months = ["2021-12", "202112", "2021年12月", "2021/12", "2021.12", "44531"]
    path = tmp_path / "fibre.csv"
    rows = [f"{c},{m},1000,900,50,60,100,200,300\n" for c, m in zip(counties, months, strict=True)]
    path.write_text(header + "".join(rows), encoding="utf-8")
    record = submit(ready, path, "fibre", operator="CTCC")
    assert (record.status, record.period, record.rows_accepted) == ("accepted", "2021-12", 6), (
        record.message
    )
    days = {str(r["month"]) for r in lake_rows(ready, "fibre")}
    assert days == {"2021-12-01"}
    # A shortened October (2021.1, as a spreadsheet shows 2021.10) is not read as January.
    path.write_text(header + "140105,2021.1,1000,900,50,60,100,200,300\n", encoding="utf-8")
    assert submit(ready, path, "fibre", operator="CTCC", period="2021-10").rows_accepted == 0


def test_a_sheets_total_row_is_skipped_and_values_under_no_header_are_named(
    ready: Settings, tmp_path: Path
):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "小区"
    sheet.append(["cell_id", "site_id", "longitude", "latitude", "city_code", "technology", None])
    sheet.append(["Z0001", "S1", 112.5, 37.8, 140100, "5G", "备注：新建"])
    sheet.append(["Z0002", "S1", 112.5, 37.8, 140100, "5G"])
    sheet.append([None, "小计", None, None, None, "2"])  # (under the site merged down)
    sheet.append(["合计", None, None, None, None, "2"])
    sheet.merge_cells("A3:A4")
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.status, record.rows_total, record.rows_accepted) == ("accepted", 2, 2)
    assert "2 total row(s)" in record.message
    assert "values in column(s) with no header were not read: 小区!G" in record.message


def test_listed_values_are_read_by_the_chinese_names_the_contract_gives_them(
    ready: Settings, tmp_path: Path
):
    # CDR exports write the direction as 主叫/被叫 and the other party's operator by name,
    # or a code in lower case; the datasets page lists the names each code is read by.
    header = CDR_HEADER.strip() + ",peer_operator\n"
    rows = [
        GOOD_CALL.replace(",MO,", ",主叫,") + ",中国联通",
        GOOD_CALL.replace(",MO,", ",mo,").replace("10:00", "11:00") + ",电信",
    ]
    path = tmp_path / "cdr.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    record = submit(ready, path, "voice_cdr")
    assert (record.status, record.rows_accepted) == ("accepted", 2), record.message
    got = sorted((r["direction"], r["peer_operator"]) for r in lake_rows(ready, "voice_cdr"))
    assert got == [("MO", "CTCC"), ("MO", "CUCC")]
    # A word the contract does not give is not guessed from the interface's words.
    bad = GOOD_CALL.replace(",MO,", ",已接收,").replace("10:00", "12:00")
    path.write_text(CDR_HEADER + bad + "\n", encoding="utf-8")
    assert submit(ready, path, "voice_cdr").rows_accepted == 0
    direction = registry.contract("voice_cdr").column("direction")
    assert "`MO` (主叫/呼出)" in "; ".join(direction.rules())


def test_a_sheets_header_is_found_below_a_title_and_a_line_of_who_filled_it_in(
    ready: Settings, tmp_path: Path
):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["中国联通 2021年11月 基站小区信息表"])
    sheet.append(["填报单位：联通山西分公司", None, None, "填报日期：2021年12月6日"])
    sheet.append(["地市编码", "140100"])  # (a cover line naming one column: not the header)
    sheet.append(["小区标识", "站址编号", "经度", "纬度", "地市编码", "制式"])
    sheet.append(["W0001", "S9", 112.5, 37.8, 140100, "5G"])
    workbook.save(tmp_path / "cells.xlsx")
    record = submit(ready, tmp_path / "cells.xlsx", "cells", operator="CUCC", period="2021-11")
    assert (record.status, record.rows_accepted) == ("accepted", 1), record.message
    assert "3 title row(s)" in record.message
    assert [r["source_row"] for r in lake_rows(ready, "cells") if r["cell_id"] == "W0001"] == [5]


def test_a_line_break_typed_at_the_end_of_a_value_is_trimmed(ready: Settings, tmp_path: Path):
    fields = GOOD_CALL.split(",")
    fields[5] = '"C0001\n"'  # (Alt+Enter after the cell id)
    record = submit(ready, cdr_file(tmp_path, [",".join(fields)]), "voice_cdr")
    assert (record.status, record.rows_accepted) == ("accepted", 1), errors_of(ready, record)
    assert [r["cell_id"] for r in lake_rows(ready, "voice_cdr")] == ["C0001"]


def test_a_file_sent_with_the_wrong_period_says_which_month_its_rows_are_of(
    ready: Settings, tmp_path: Path
):
    record = submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr", period="2021-12")
    assert record.status == "rejected"
    assert "the rows are of 2021-11, not 2021-12" in record.message
    assert "2021-11" in localise(record.message, "zh_CN")


def _rewrite_sheet(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` in a workbook's first sheet (as Excel, not openpyxl, writes)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    assert old in entries[sheet], entries[sheet]
    entries[sheet] = entries[sheet].replace(old, new)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_a_full_disk_is_said_so_and_stores_nothing(ready: Settings, tmp_path: Path):
    """The disk fills while the accepted rows are written (the engine's I/O error): the
    submitter is told what happened, and nothing of the file is kept."""
    from telereg.core.errors import StorageError

    def disk_full(stage: str) -> None:
        if stage == "writing":
            raise duckdb.IOException("Could not write file: No space left on device")

    lake_before = sorted(p for p in ready.lake_dir.rglob("*") if p.is_file())
    with pytest.raises(StorageError, match="disk full or read-only") as raised:
        submit(ready, cdr_file(tmp_path, [GOOD_CALL]), "voice_cdr", progress=disk_full)
    assert "No space left on device" in str(raised.value)
    assert sorted(p for p in ready.lake_dir.rglob("*") if p.is_file()) == lake_before
    with session_scope(ready) as session:
        assert lake.current_files(session, ready, "voice_cdr") == []


def test_a_coverage_target_is_a_share_and_a_percentage_is_read_as_one(
    ready: Settings, tmp_path: Path
):
    # An administrator writes 95 % as people do: 95%, full-width, or 95 (meant as a per cent,
    # which would pass as a target of 9,500 %). Sites are counted in whole numbers.
    path = tmp_path / "targets.csv"
    path.write_text(
        "region_code,year,indicator,value\n"
        "140000,2021,corridor_coverage,95%\n"
        "140100,2021,gigabit_coverage,0.8\n"
        "140200,2021,key_area_coverage,95\n"
        "140300,2021,new_5g_sites,1200\n"
        "140400,2021,new_5g_sites,45%\n"
        "140500,2021,new_5g_sites,12.5\n"
        "140600,2021,key_place_coverage,９５.５ ％\n"
        "140700,2021,key_place_coverage,95%%\n"
        "140800,2021,new_5g_sites,1e20\n"
        "140900,2021,new_5g_sites,inf\n"
        "141000,2021,corridor_coverage,nan\n"
        "141100,2021,新建5G基站,300\n",
        encoding="utf-8",
    )
    record = submit(ready, path, "targets", operator="CA", period="2021-11")
    assert (record.rows_accepted, record.rows_quarantined) == (6, 6)
    kept = {r["region_code"]: r["value"] for r in lake_rows(ready, "targets")}
    assert kept == {
        "140000": 0.95,
        "140100": 0.8,
        "140300": 1200.0,
        "140600": 0.955,
        "140800": 1e20,
        "141100": 300.0,  # (its indicator by the Chinese name, which has a letter)
    }
    share = "a coverage target is a share between 0 and 1 (written 0.95 or 95%)"
    reasons_by_row = {int(e["row"]): e["reason"] for e in errors_of(ready, record)}
    assert reasons_by_row == {
        4: share,
        # (45% is read as 0.45, no whole number: the row keeps its value as sent, and why)
        6: reasons.NOT_VALID.format(type="float"),
        7: "a target of new sites is a whole number",
        9: reasons.NOT_VALID.format(type="float"),
        11: reasons.NOT_VALID.format(type="float"),
        12: reasons.NOT_VALID.format(type="float"),
    }
    # The rule is in the datasets reference with the column's own.
    value = registry.contract("targets").column("value")
    assert share in registry.contract("targets").rules_of(value)


def test_a_rule_across_columns_must_name_a_number_and_listed_values():
    indicator = Column("indicator", ColumnType.STRING, "", enum=("a", "b"))
    value = Column("value", ColumnType.FLOAT, "")
    rule = RangeWhen("value", "indicator", ("a",), "a share", maximum=1)
    Contract("ok", "t", "T", "T", "", (indicator, value), ranges_when=(rule,))
    for wrong, problem in (
        (replace(rule, column="indicator"), "names no numeric column indicator"),
        (replace(rule, when="value"), "names no listed column value"),
        (replace(rule, values=("c",)), "names values its column does not list"),
        (replace(rule, maximum=None), "sets no bound"),
        (replace(rule, words="a; b"), "separates reasons"),
    ):
        with pytest.raises(ContractError, match=re.escape(problem)):
            Contract("bad", "t", "T", "T", "", (indicator, value), ranges_when=(wrong,))
    with pytest.raises(ContractError, match="only a float column takes a percentage"):
        Column("n", ColumnType.INTEGER, "", percent=True)
