"""Writing operator-style files: CSV (UTF-8 or GBK, Chinese headers), XLSX."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.csv as pacsv

Encoding = Literal["utf-8", "gbk"]
_FIXED_TIME = dt.datetime(2021, 12, 1)  # noqa: DTZ001 - openpyxl stores naive times


@dataclass(frozen=True)
class OperatorFile:
    """A file as an operator would send it, and where it goes."""

    dataset: str
    operator: str
    period: str
    path: Path
    crs: Literal["wgs84", "gcj02"] = "wgs84"


def write_csv(
    table: pa.Table, path: Path, *, encoding: Encoding = "utf-8", headers: list[str] | None = None
) -> Path:
    """A CSV file; GBK files are written the slow way, as Excel would, with the given headers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if encoding == "utf-8" and headers is None:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
        return path
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers or table.column_names)
        for row in zip(
            *(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True
        ):
            writer.writerow(["" if v is None else v for v in row])
    return path


def write_xlsx(table: pa.Table, path: Path) -> Path:
    """A workbook whose bytes depend only on its content (fixed times inside and in the zip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook(write_only=True)
    workbook.properties.created = workbook.properties.modified = _FIXED_TIME
    sheet = workbook.create_sheet("data")
    sheet.append(table.column_names)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for row in zip(*columns, strict=True):
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=(2021, 12, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2021-12-01T00:00:00Z", data
                )
            out.writestr(info, data)
    return path


def nullable(values: Any, keep: Any) -> pa.Array:
    """``values`` where ``keep`` is true, null elsewhere (an operator's empty cell)."""
    return pa.array(values, mask=~np.asarray(keep, dtype=bool))


def with_bad_rows(table: pa.Table, bad: dict[int, dict[str, Any]]) -> pa.Table:
    """A copy of ``table`` where the rows at the given positions get the given values."""
    data = {name: table.column(name).to_pylist() for name in table.column_names}
    for index, values in bad.items():
        for name, value in values.items():
            data[name][index] = value
    return pa.table(
        {
            name: pa.array([None if v is None else str(v) for v in data[name]])
            for name in table.column_names
        }
    )
