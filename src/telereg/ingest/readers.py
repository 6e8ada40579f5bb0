"""Read an operator's file into DuckDB as text columns plus a row number.

Everything is read as text so that a bad value becomes a reported row error,
not a failed file. ``__row`` is the row a person would look for: the
spreadsheet row for CSV and XLSX (the header is row 1), the record or feature
number for Parquet and GeoJSON.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from telereg.core.errors import InputError, TeleregError
from telereg.core.privacy import mask, mask_digits
from telereg.ingest import reasons
from telereg.ingest.contracts import FileFormat, normalise_header
from telereg.ingest.validate import ROW

RAW_TABLE = "raw_rows"
REJECTS_TABLE = "raw_rejects"
#: Rows of a workbook's n-th sheet (from 0) are numbered ``n * SHEET_ROWS`` + their row:
#: above Excel's 1,048,576 rows a sheet, so a number tells both sheet and row.
SHEET_ROWS = 10_000_000
_SNIFF_BYTES = 1 << 16
_MAX_LINE_BYTES = 64 << 20  # a single CSV line may hold a 10 MB field and still be read
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".xlsx": FileFormat.XLSX,
    ".parquet": FileFormat.PARQUET,
    ".geojson": FileFormat.GEOJSON,
    ".json": FileFormat.GEOJSON,
}


#: No dataset's headers (an ad-hoc read): header spelling (normalised) → column name.
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Source:
    """A file ready to be read: a SQL relation of text columns, and its headers."""

    format: FileFormat
    encoding: str
    columns: list[str]
    #: what follows FROM; CSV is parsed while the first table is built, other formats
    #: are already in ``raw_rows``
    relation: str
    #: whether the relation carries ``__row``; CSV rows are numbered from their rowid
    numbered: bool
    #: what the submitter should know about how the file was read (``reasons`` templates)
    notes: list[str] = field(default_factory=list)
    #: a CSV's text, as the reader reads it (UTF-8: transcoded when it was not; from
    #: its header on)
    text_path: Path | None = None
    #: lines above a CSV's header that were set aside as its title: the file's line
    #: numbers are those of ``text_path`` plus these
    title_lines: int = 0
    #: the reader's names of a CSV's columns with no header (not read, and not named as
    #: unknown columns: the file does not name them)
    unheaded: tuple[str, ...] = ()


#: The first bytes of an OLE2 compound file: an Excel 97–2003 ``.xls`` or a WPS ``.et``.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


#: The first bytes of the compressed files sent in place of a data file (a ``.csv.gz``, a
#: 7-Zip or RAR archive), and what each is called.
_COMPRESSED = (
    (re.compile(rb"\x1f\x8b"), "gzip"),
    (re.compile(rb"7z\xbc\xaf\x27\x1c"), "7-Zip"),
    (re.compile(rb"Rar!\x1a\x07"), "RAR"),
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2"),
    (re.compile(rb"\xfd7zXZ\x00"), "xz"),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd"),
)


def _compression(head: bytes) -> str | None:
    """What compressed the file, by its first bytes; None when it is not compressed."""
    return next((kind for magic, kind in _COMPRESSED if magic.match(head)), None)


#: How a JSON document begins: an object, or a list of objects or lists (no CSV header
#: begins ``[{``).
_JSON_START = re.compile(rb"\{|\[\s*[\[{]")


def sniff_format(path: Path, *, display_name: str) -> FileFormat:
    """The format by content; a file whose content contradicts its extension is refused."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n") and path.stat().st_size <= len(head):
        # (a byte-order mark and blank lines are nothing, too)
        raise InputError(reasons.EMPTY_FILE, where=display_name)
    if head.startswith(b"PAR1"):
        found = FileFormat.PARQUET
    elif head.startswith(b"PK\x03\x04"):
        if (
            not zipfile.is_zipfile(path)
            or "xl/workbook.xml" not in zipfile.ZipFile(path).namelist()
        ):
            raise InputError(reasons.ZIP_NOT_XLSX, where=display_name)
        found = FileFormat.XLSX
    elif _JSON_START.match(head.lstrip(b"\xef\xbb\xbf \t\r\n")):
        # (a list of features, or of anything, is JSON too: the reader says what it lacks)
        found = FileFormat.GEOJSON
    elif head.startswith(_UTF16_BOMS):
        found = FileFormat.CSV  # Excel's "Unicode text": tab-separated UTF-16
    elif head.startswith(_OLE2):
        raise InputError(reasons.OLD_WORKBOOK, where=display_name)
    elif (packed := _compression(head)) is not None:
        raise InputError(reasons.COMPRESSED_FILE.format(kind=packed), where=display_name)
    elif head.startswith(b"%PDF-"):
        raise InputError(reasons.PDF_FILE, where=display_name)
    elif b"\x00" in head:
        raise InputError(reasons.BINARY_FILE, where=display_name)
    else:
        found = FileFormat.CSV
    claimed = _EXTENSIONS.get(Path(display_name).suffix.lower())
    if claimed is not None and claimed != found:
        raise InputError(
            reasons.NAME_CONTRADICTS.format(
                claimed=claimed.value.upper(), found=found.value.upper()
            ),
            where=display_name,
        )
    return found


def _decodes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(data, final=False)  # a character cut at the end is not an error
    except UnicodeDecodeError:
        return False
    return True


def _transcode(path: Path, target: Path, encoding: str) -> None:
    with (
        path.open("r", encoding=encoding, newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(1 << 22):
            dst.write(chunk)


def _csv_encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(_UTF16_BOMS):
        return "utf-16"  # the BOM tells the byte order
    if _decodes(head, "utf-8"):
        return "utf-8"
    text = head.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    wide = sum(1 for ch in text if ord(ch) > 0x7F) - broken
    if wide > broken:
        # Mostly UTF-8 text with a few bad bytes (a line pasted from a GBK file): the
        # reader sets their lines aside. Read as GB18030, the UTF-8 text would be garbled.
        return "utf-8"
    if _decodes(head, "gb18030"):
        return "gb18030"  # a superset of GBK and GB2312, as operators' Excel exports them
    if broken <= max(2, text.count("\n") // 100):
        return "utf-8"  # plain text with a stray bad byte or two: their lines are set aside
    raise InputError(reasons.UNKNOWN_ENCODING)


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, workdir: Path, name: str) -> Source:
    encoding = _csv_encoding(path)
    source = path
    if encoding == "utf-8-sig":
        # Read as UTF-8 past its mark, not decoded here: a line pasted in from a GBK file
        # then costs that line, as in a file without the mark, not the whole file.
        source = workdir / "utf8.csv"
        with path.open("rb") as fh, source.open("wb") as out:
            fh.seek(len(codecs.BOM_UTF8))
            shutil.copyfileobj(fh, out, 1 << 20)
    elif encoding != "utf-8":
        source = workdir / "utf8.csv"
        try:
            _transcode(path, source, encoding)
        except UnicodeDecodeError as err:
            raise InputError(
                reasons.NOT_VALID_TEXT.format(encoding=encoding, detail=err.reason), where=name
            ) from err
    return _csv_source(con, source, encoding, workdir, name)


def _csv_source(
    con: duckdb.DuckDBPyConnection, source: Path, encoding: str, workdir: Path, name: str
) -> Source:
    """A CSV in UTF-8 ready to be read: its header found below any title lines, checked."""
    source = _header_on_one_line(source, workdir)
    try:
        headers, long_lines = _headers_of(con, source, name)
    except InputError:
        mended = _one_line_ending(source, workdir)
        if mended is None:
            raise
        source = mended
        headers, long_lines = _headers_of(con, source, name)
    titles = _title_lines(source) if _only_a_title(headers) else 0
    if titles:
        source = _below_titles(source, titles, workdir)
        headers, long_lines = _headers_of(con, source, name)
    if any(_RENAMED.search(h) for h in headers):
        _unique_headers(_header_as_sent(con, source, long_lines=long_lines), name)
    if headers and all(len(h) >= 2 and h[0] == h[-1] == '"' for h in headers):
        # Every header still wears its quotes: a value near the top whose quote is not
        # closed made the reader's detection settle on "no quote character".
        raise InputError(
            reasons.UNCLOSED_QUOTE,
            where=name,
        )
    notes = [reasons.TITLE_LINES.format(count=titles)] if titles else []
    unheaded = _unheaded(con, source, headers, long_lines=long_lines)
    if unheaded:
        letters = ", ".join(_column_letters(headers.index(h)) for h in unheaded)
        notes.append(reasons.COLUMNS_WITHOUT_HEADER.format(columns=letters))
    return Source(
        FileFormat.CSV,
        encoding,
        _unique_headers(headers, name),
        _csv_relation(con, source, headers, long_lines=long_lines),
        False,
        notes,
        text_path=source,
        title_lines=titles,
        unheaded=unheaded,
    )


def _unheaded(
    con: duckdb.DuckDBPyConnection, source: Path, headers: list[str], *, long_lines: bool
) -> tuple[str, ...]:
    """The reader's names (``column7``; ``column07`` with 10 columns or more, ``column007``
    with 100) of a CSV's columns whose header cell is empty, as the separators Excel leaves
    at the end of every line make them."""
    if not any(_UNNAMED.fullmatch(h) for h in headers):
        return ()
    sent = _header_as_sent(con, source, long_lines=long_lines)
    return tuple(
        h
        for place, h in enumerate(headers)
        if (named := _UNNAMED.fullmatch(h)) is not None
        and int(named.group(1)) == place
        and (place >= len(sent) or not sent[place])
    )


def _headers_of(con: duckdb.DuckDBPyConnection, source: Path, name: str) -> tuple[list[str], bool]:
    """The header as the reader finds it, and whether it needs its long-line buffer."""
    try:
        return _csv_headers(con, source), False
    except (duckdb.Error, UnicodeDecodeError) as err:
        # (the reader's message quotes the long line, cut at a byte limit: in the middle of
        # a Chinese character, the message itself cannot be decoded)
        if not (is_line_size_error(err) or isinstance(err, UnicodeDecodeError)):
            raise InputError(_cannot_read_csv(err), where=name) from err
    try:
        return _csv_headers(con, source, long_lines=True), True
    except (duckdb.Error, UnicodeDecodeError) as again:
        raise InputError(_cannot_read_csv(again), where=name) from again


#: The names the CSV reader gives columns whose header cell is empty.
_UNNAMED = re.compile(r"column([0-9]+)")
_DELIMITERS = (",", "\t", ";", "|")


def _only_a_title(headers: list[str]) -> bool:
    """Whether the reader's header has at most one real name: a report's title line."""
    return sum(not _UNNAMED.fullmatch(h) for h in headers) <= 1


def _title_lines(source: Path) -> int:
    """How many lines above a CSV's header hold a report's title, a unit or a date.

    As in a sheet (:func:`_after_titles`): lines of at most one value before the first
    line of several, up to ``_TITLE_ROWS`` of them, with whichever separator gives that
    line the most values. A file with no such line has no title: 0.
    """
    with source.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        head = list(itertools.islice(fh, _TITLE_ROWS + 1))
    for at in range(1, len(head)):
        delimiter = _delimiter_of(head[at])
        if _filled(head[at], delimiter) >= 2:
            above = (_filled(line, delimiter) for line in head[:at])
            return at if all(n <= 1 for n in above) else 0
    return 0


def _filled(line: str, delimiter: str) -> int:
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return 0
    return sum(cell.strip() != "" for cell in cells)


def _header_on_one_line(source: Path, workdir: Path) -> Path:
    """The CSV itself, or a copy whose header has its line breaks as spaces.

    A header typed with a line break in a cell (Alt+Enter: ``"通话时长⏎（秒）"``) is one
    quoted name over two lines, which the reader's detection cannot make out; as
    ``通话时长 （秒）`` it names its column as the contract spells it. Rows are numbered
    as a spreadsheet numbers them, one per record, so theirs do not change.
    """
    with source.open("rb") as fh:
        head = fh.read(1 << 16)
    first = head.split(b"\n", 1)[0]
    if b'"' not in first:
        return source
    text = head.decode("utf-8", errors="replace")
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=_delimiter_of(first.decode("utf-8", errors="replace")),
    )
    try:
        header = next(reader)
    except (csv.Error, StopIteration):
        return source
    spanned = reader.line_num
    if spanned < 2 or not any("\n" in name or "\r" in name for name in header):
        return source
    # The header's lines, as bytes: up to the end of its last line.
    end = 0
    for _ in range(spanned):
        end = head.index(b"\n", end) + 1
    target = workdir / "one_line_header.csv"
    with source.open("rb") as fh, target.open("wb") as out:
        fh.seek(end)
        ending = b"\r\n" if head[end - 2 : end] == b"\r\n" else b"\n"  # (the file's own)
        out.write(re.sub(rb"\r?\n", b" ", head[: end - len(ending)]) + ending)
        shutil.copyfileobj(fh, out, 1 << 20)
    return target


def _one_line_ending(source: Path, workdir: Path) -> Path | None:
    """A copy of a CSV whose lines end in both ``\\r\\n`` and ``\\n`` (lines pasted in
    from another file), all ending in ``\\n``, which the reader's detection cannot read
    mixed; None when they do not mix. Lines keep their numbers."""
    windows = unix = False
    with source.open("rb") as fh:
        carry = b""
        while chunk := fh.read(_CHUNK):
            data = carry + chunk
            windows = windows or b"\r\n" in data
            unix = unix or re.search(rb"(?<!\r)\n", data) is not None
            # (only a "\r" is carried: a "\n" carried would be found again, alone)
            carry = b"\r" if data.endswith(b"\r") else b""
            if windows and unix:
                break
    if not (windows and unix):
        return None
    target = workdir / "one_line_ending.csv"
    with source.open("rb") as fh, target.open("wb") as out:
        carry = b""
        while chunk := fh.read(_CHUNK):
            data = carry + chunk
            # (a "\r" ending the chunk may begin a "\r\n" the next chunk ends)
            carry = b"\r" if data.endswith(b"\r") else b""
            out.write(data[: len(data) - len(carry)].replace(b"\r\n", b"\n"))
        out.write(carry)
    return target


def _below_titles(source: Path, titles: int, workdir: Path) -> Path:
    """A copy of the CSV from its header on (its rows keep their numbers: see
    :attr:`Source.title_lines`)."""
    target = workdir / "below_titles.csv"
    with source.open("rb") as fh, target.open("wb") as out:
        for _ in range(titles):
            fh.readline()
        shutil.copyfileobj(fh, out, 1 << 20)
    return target


_CHUNK = 1 << 24
_EMPTY_LINE = re.compile(rb"\n\r?(?=\n)")


def empty_lines(path: Path) -> list[int]:
    """The numbers of the file's empty lines (1 = the first line), but those inside a
    quoted value.

    The CSV reader skips them without a word, so the rows after one would be numbered one
    short. A scan of the whole file: the caller looks only when the file has more lines
    than the reader gave rows (:func:`has_skipped_lines`). A file with quotes is parsed as
    CSV, which alone tells a quoted value's blank line from a blank line (a quote inside a
    value, ``5"``, quotes nothing).
    """
    found: list[int] = []
    first_line = 1  # the number of the line ``data`` starts in
    tail = b""  # the previous chunk's last two bytes: an empty line may straddle chunks
    quoted = False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if first_line == 1 and not tail and chunk.startswith((b"\n", b"\r\n")):
                found.append(1)  # (no line break before it: the scan below cannot see it)
            data = tail + chunk
            quoted = quoted or b'"' in chunk
            if b"\n\n" in data or b"\n\r\n" in data:
                counted, lines = 0, first_line
                for m in _EMPTY_LINE.finditer(data):
                    lines += data.count(b"\n", counted, m.start())  # (a running count)
                    counted = m.start()
                    if m.end() >= len(tail):  # (its second newline is new: not seen before)
                        found.append(lines + 1)
            first_line += data.count(b"\n", 0, len(data) - 2)
            tail = data[-2:]
    return _empty_lines_parsed(path) if quoted and found else found


def _empty_lines_parsed(path: Path) -> list[int]:
    """:func:`empty_lines` of a file with quotes: the lines the CSV parser finds empty."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        delimiter = _delimiter_of(fh.readline())
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            return [reader.line_num for record in reader if not record]
        except csv.Error:
            return []


def _delimiter_of(line: str) -> str:
    """The separator that gives a (header) line the most values."""
    counts = {d: _filled(line, d) for d in _DELIMITERS}
    return max(counts, key=lambda d: counts[d])


def _cannot_read_csv(err: Exception) -> str:
    if isinstance(err, UnicodeDecodeError):
        return reasons.CANNOT_READ_CSV.format(detail=reasons.LINE_TOO_LONG)
    # (the reader names the file by its path on the server: the sender knows which file)
    return reasons.CANNOT_READ_CSV.format(detail=_QUOTED_PATH.sub('"…"', first_line(err)))


_QUOTED_PATH = re.compile(r'"/[^"]*"')


#: How the CSV reader renames a header that repeats an earlier one (``phone`` → ``phone_1``).
_RENAMED = re.compile(r"_[0-9]+$")


def _header_as_sent(
    con: duckdb.DuckDBPyConnection, source: Path, *, long_lines: bool = False
) -> list[str]:
    """The header line's names as the file has them, with the reader's separator and quote
    (the reader renames a repeated name, so its names cannot tell a repeat)."""
    path = str(source).replace("'", "''")
    line_size = f", max_line_size = {_MAX_LINE_BYTES}" if long_lines else ""
    found = con.execute(f"SELECT Delimiter, Quote FROM sniff_csv('{path}'{line_size})").fetchone()
    delimiter, quote = (str(found[0]), str(found[1])) if found else (",", '"')
    if len(delimiter) != 1:
        return []
    with source.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            first = next(csv.reader(fh, delimiter=delimiter, quotechar=quote[:1] or '"'), [])
        except csv.Error:
            return []
    return [cell.strip() for cell in first]


def reopen_as_gb18030(
    con: duckdb.DuckDBPyConnection, path: Path, workdir: Path, name: str
) -> Source:
    """The same CSV, transcoded from GB18030 to UTF-8 first."""
    forget_unreadable(con)
    target = workdir / "utf8.csv"
    try:
        _transcode(path, target, "gb18030")
    except UnicodeDecodeError as err:
        raise InputError(reasons.MIXED_ENCODINGS, where=name) from err
    return _csv_source(con, target, "gb18030", workdir, name)


@dataclass(frozen=True)
class _Dialect:
    """How a CSV writes its values, as the reader's sniffer finds them."""

    delimiter: str
    quote: str
    escape: str
    comment: str
    skip: int


def _dialect(con: duckdb.DuckDBPyConnection, source: Path, *, long_lines: bool) -> _Dialect:
    """The sniffer's dialect, found as the header was (the same options)."""
    path = str(source).replace("'", "''")
    line_size = f", max_line_size = {_MAX_LINE_BYTES}" if long_lines else ""
    found = con.execute(
        "SELECT Delimiter, Quote, Escape, Comment, SkipRows FROM sniff_csv("
        f"'{path}', header = true, all_varchar = true, ignore_errors = true{line_size})"
    ).fetchone()
    assert found is not None, "the sniffer describes every file it reads"
    delimiter, quote, escape, comment = ("" if str(v) == "(empty)" else str(v) for v in found[:4])
    # A sample with no quotes in it gives none: RFC 4180's (which Excel writes) is taken, so
    # that a quoted value further down is read as one, or, holding a line break, sends the
    # file to the reader's own detection (see :func:`_csv_relation`).
    quote = quote or '"'
    # (an escape the sample did not show is the quote doubled, as RFC 4180 and Excel have it)
    return _Dialect(delimiter, quote, escape or quote, comment, int(found[4]))


def _csv_relation(
    con: duckdb.DuckDBPyConnection, source: Path, columns: list[str], *, long_lines: bool = False
) -> str:
    """The CSV read as text in the header's columns.

    A line with fewer fields than the header has the missing ones at its end empty (NULL),
    as if its separators had been there: operators' systems leave out the empty optional
    fields that end a line. A line with more is set aside as unreadable: which of its
    values belongs to which column cannot be told.

    Not in a file with a line break inside quotes (or a quote left open, which looks the
    same): there a quote left open takes the lines after it into one value, and padded, that
    short "line" would pass for a row and the lines in it be lost without a word; DuckDB's
    parallel reader cannot pad such a file either. Its short lines stay unreadable.
    """
    # A large line buffer halves the reader's speed, so it is used only when needed.
    line_size = f", max_line_size = {_MAX_LINE_BYTES}" if long_lines else ""
    rejects = (
        f"ignore_errors = true, store_rejects = true, rejects_table = '{REJECTS_TABLE}', "
        f"rejects_scan = '{REJECTS_TABLE}_scan'{line_size}"
    )
    path = str(source).replace("'", "''")
    dialect = _dialect(con, source, long_lines=long_lines)
    if line_break_in_quotes(source, dialect.quote):
        # (the quote given, as above: a sample with none would split a quoted line break)
        detected = (
            f"header = true, all_varchar = true, null_padding = false, "
            f"quote = {_sql_literal(dialect.quote)}, escape = {_sql_literal(dialect.escape)}"
        )
        return f"read_csv('{path}', {detected}, {rejects})"
    # The reader is told the sniffer's dialect and the header's columns: left to detect
    # them itself with padding on, it widens the table to a longer line in its sample and
    # reads that line as a row.
    names = ", ".join(f"{_sql_literal(c)}: 'VARCHAR'" for c in columns)
    comment = f", comment = {_sql_literal(dialect.comment)}" if dialect.comment else ""
    return (
        f"read_csv('{path}', auto_detect = false, header = true, skip = {dialect.skip}, "
        f"delim = {_sql_literal(dialect.delimiter)}, quote = {_sql_literal(dialect.quote)}, "
        f"escape = {_sql_literal(dialect.escape)}{comment}, columns = {{{names}}}, "
        f"null_padding = true, {rejects})"
    )


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def line_break_in_quotes(path: Path, quote: str) -> bool:
    """Whether a line break of the file may fall inside a quoted value: one with an odd
    number of quote characters before it (a stray quote counts as an opening one, so a
    file that has one is read as if it had such a break)."""
    if not quote:
        return False
    mark = quote.encode()
    if len(mark) != 1:
        return True
    odd = 0  # whether the quotes before the chunk are odd in number
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if mark not in chunk:
                if odd and b"\n" in chunk:
                    return True
                continue
            data = np.frombuffer(chunk, np.uint8)
            quotes = np.flatnonzero(data == mark[0])
            breaks = np.flatnonzero(data == ord("\n"))
            if ((np.searchsorted(quotes, breaks) + odd) % 2).any():
                return True
            odd = (len(quotes) + odd) % 2
    return False


def is_line_size_error(err: Exception) -> bool:
    return "maximum line size" in str(err).lower()


def _csv_headers(
    con: duckdb.DuckDBPyConnection, source: Path, *, long_lines: bool = False
) -> list[str]:
    path = str(source).replace("'", "''")
    line_size = f", max_line_size = {_MAX_LINE_BYTES}" if long_lines else ""
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_csv('{path}', header = true, all_varchar = true, "
        f"ignore_errors = true{line_size})"
    ).fetchall()
    return [str(row[0]) for row in described]


@dataclass(frozen=True)
class Unreadable:
    """A line the CSV reader could not split into the header's fields."""

    line: int
    message: str
    #: the line as sent (clear identifiers in it: mask before showing or storing it)
    text: str
    #: the line is not valid UTF-8
    bad_encoding: bool = False


def csv_unreadable(con: duckdb.DuckDBPyConnection) -> list[Unreadable]:
    """Lines the CSV reader could not split into the header's fields, in file order."""
    try:
        rows = con.execute(
            f"SELECT line, min(error_type), min(error_message), min(csv_line), "
            f"bool_or(error_type = 'INVALID ENCODING') FROM {REJECTS_TABLE} "
            "GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [
        Unreadable(int(line), _in_our_words(str(kind), str(message)), str(text or ""), bool(bad))
        for line, kind, message, text, bad in rows
    ]


_FIELDS_FOUND = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _in_our_words(kind: str, message: str) -> str:
    """What the reader says of a line, as a ``reasons`` message (translated on pages) where
    it is one of the usual troubles; the reader's own words otherwise."""
    # (a line with fewer fields is padded where it can be: see :func:`_csv_relation`)
    counted = _FIELDS_FOUND.search(message)
    if kind in ("MISSING COLUMNS", "TOO MANY COLUMNS") and counted:
        expected, found = counted.groups()
        fewer = kind == "MISSING COLUMNS"
        return (
            reasons.FEWER_FIELDS.format(found=found, expected=expected)
            if fewer
            else reasons.MORE_FIELDS.format(expected=expected)
        )
    if kind == "INVALID ENCODING":
        return reasons.NOT_UTF8_LINE
    if kind == "LINE SIZE OVER MAXIMUM":
        return reasons.LINE_TOO_LONG
    if kind == "UNQUOTED VALUE":
        return reasons.STRAY_QUOTE
    return message


def forget_unreadable(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the reader's record of unreadable lines (it would add to the next read's)."""
    con.execute(f"DROP TABLE IF EXISTS {REJECTS_TABLE}")
    con.execute(f"DROP TABLE IF EXISTS {REJECTS_TABLE}_scan")


def head_is_ascii(path: Path) -> bool:
    """Whether the part of the file the encoding was guessed from is plain ASCII."""
    with path.open("rb") as fh:
        return fh.read(_SNIFF_BYTES).isascii()


def is_encoding_error(err: Exception) -> bool:
    return "unicode" in str(err).lower() or "utf-8" in str(err).lower()


def renumber_after_rejects(con: duckdb.DuckDBPyConnection, table: str, lines: list[int]) -> None:
    """Give ``table``'s rows their file row numbers when the reader skipped some lines.

    A row after k skipped lines sits k rows further down the file than its
    position among the rows that were read.
    """
    shifts = sorted(line - index for index, line in enumerate(sorted(lines)))
    con.execute("CREATE OR REPLACE TEMP TABLE reject_shift (shift_at BIGINT)")
    con.executemany("INSERT INTO reject_shift VALUES (?)", [(s,) for s in shifts])
    con.execute(
        f"""
        UPDATE {table} SET {ROW} = rowid + 2 + (
            SELECT count(*) FROM reject_shift WHERE reject_shift.shift_at <= {table}.rowid + 2)
        """
    )


def first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:300]


def shown_header(header: str) -> str:
    """A header as messages repeat it: masked when it looks like a number or an ID (a file
    sent without its header line has its first row's values there)."""
    return mask(header) if sum(c.isdigit() for c in header) >= 6 else header


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {RAW_TABLE}").fetchall()]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOATS:
        return str(int(value))
    # (a larger number kept as a float has lost its last digits, as a spreadsheet keeps an
    # 18-digit ID number typed as a number: written as a float, it fails the ID's form)
    return str(value)


#: Whole numbers up to this size are exact as floats (2**53); larger ones have lost digits.
_EXACT_FLOATS = float(1 << 53)


def _float_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A float column as text, whole numbers without ``.0`` (as :func:`_text` writes them):
    pandas writes integers with gaps as floats, phone numbers among them."""
    whole = pc.and_(
        pc.equal(pc.floor(column), column), pc.less(pc.abs(column), pa.scalar(_EXACT_FLOATS))
    )
    as_integer = pc.cast(pc.if_else(whole, column, pa.scalar(None, column.type)), pa.int64())
    shown: pa.ChunkedArray = pc.if_else(
        whole, pc.cast(as_integer, pa.string()), pc.cast(column, pa.string())
    )
    return shown


def _register(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    con.register("arrow_in", table)
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    con.execute(f"CREATE TEMP TABLE {RAW_TABLE} AS SELECT * FROM arrow_in")
    con.unregister("arrow_in")


def _unique_headers(headers: list[str], name: str) -> list[str]:
    seen: set[str] = set()
    for header in headers:
        if not header:
            continue  # blank cells beyond the last header, as spreadsheets pad them
        if header in seen:
            raise InputError(
                reasons.HEADER_TWICE.format(header=repr(shown_header(header))), where=name
            )
        seen.add(header)
    return headers


def _header_cells(row: tuple[object, ...]) -> list[str]:
    """A sheet's header row as text, without the blank cells spreadsheets pad it with."""
    cells = [str(h).strip() if h is not None else "" for h in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _read_xlsx(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    known_headers: Mapping[str, str] = _NO_HEADERS,
) -> Source:
    """The first visible sheet, and every later one with the same header (a month split
    across sheets at Excel's row limit). Rows keep their spreadsheet numbers, the sheets
    after the first offset by ``SHEET_ROWS`` each; sheets with other headers, and hidden
    sheets, are named in a note."""
    from openpyxl import load_workbook

    # Opened as a file, not by its name: openpyxl refuses a name without an Excel
    # extension, and an upload is kept under a neutral one.
    with path.open("rb") as handle:
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except Exception as err:  # openpyxl raises many kinds for broken workbooks
            raise InputError(reasons.CANNOT_OPEN_WORKBOOK.format(detail=err), where=name) from err
        try:
            return _read_workbook(con, workbook, path, name, known_headers)
        finally:
            workbook.close()


def _read_workbook(
    con: duckdb.DuckDBPyConnection,
    workbook: Any,
    path: Path,
    name: str,
    known_headers: Mapping[str, str],
) -> Source:
    # A hidden sheet is no part of what the sender sees and sends: last month's data kept
    # for reference, a lookup list. It is named in a note, not read.
    sheets = [w for w in workbook.worksheets if w.sheet_state == "visible"]
    hidden = [w.title for w in workbook.worksheets if w.sheet_state != "visible"]
    if not sheets:
        raise InputError(reasons.NO_WORKSHEET, where=name)
    # Sheets before the one with the dataset's columns (a cover sheet of instructions, a
    # contact) are named in a note, not read.
    start = _data_sheet(sheets, known_headers)
    before, sheets = [w.title for w in sheets[:start]], sheets[start:]
    first = sheets[0].iter_rows(values_only=True)
    header_row, titles, first = _after_titles(first, known_headers)
    if header_row is None:
        raise InputError(reasons.EMPTY_SHEET, where=name)
    headers = _unique_headers(_header_cells(header_row), name)
    gathered = _Gathered([[] for _ in headers])
    read, other, lost = [sheets[0].title], [], list[str]()
    for position, sheet in enumerate(sheets):
        rows = first if position == 0 else sheet.iter_rows(values_only=True)
        places: list[int | None] = list(range(len(headers)))
        above, named = titles, headers
        if position > 0:
            theirs, above, rows = _after_titles(rows, known_headers)
            if theirs is None:
                continue
            named = _header_cells(theirs)
            found = _same_columns(headers, named, known_headers)
            if found is None:
                other.append(sheet.title)  # (a wholly blank sheet has no header: no news)
                continue
            places = found
            read.append(sheet.title)
            mine = {normalise_header(h) for h in headers}
            extra = [h for h in named if h and _names_column(h, known_headers, mine)]
            if extra:
                lost.append(f"{sheet.title}: {', '.join(extra)}")
        seen = _sheet_xml(path, sheet, first_row=above + 2, width=len(named))
        _refuse_unsaved(seen, sheet.title, name)
        gathered.add(
            sheet.title,
            rows,
            seen,
            offset=position * SHEET_ROWS,
            start=above + 2,
            places=places,
            named=named,
        )
    columns = zip(headers, gathered.columns, strict=True)
    table = pa.table(
        {
            **{h: pa.array(c, pa.string()) for h, c in columns if h},
            ROW: pa.array(gathered.numbers, pa.int64()),
        }
    )
    _register(con, table)
    shown = [h for h in headers if h]
    notes = _sheet_notes(read, other, before=before, hidden=hidden, titles=titles)
    if lost:
        notes.append(reasons.COLUMNS_NOT_IN_FIRST_SHEET.format(columns="; ".join(lost)))
    return Source(FileFormat.XLSX, "", shown, RAW_TABLE, True, notes + gathered.notes())


def _names_column(header: str, known_headers: Mapping[str, str], first: set[str]) -> bool:
    """Whether a later sheet's header names a column of the dataset the first sheet's
    headers (``first``, normalised) do not."""
    spelt = normalise_header(header)
    if spelt not in known_headers:
        return False
    return known_headers[spelt] not in {known_headers.get(h, h) for h in first}


@dataclass
class _Gathered:
    """A workbook's data rows, gathered sheet by sheet in the first sheet's columns."""

    columns: list[list[str | None]]
    numbers: list[int] = field(default_factory=list)
    #: cells given the value merged down over them
    filled: int = 0
    #: report totals (合计) skipped
    totals: int = 0
    #: cells holding a value under no header (``小区!G``)
    unread: set[str] = field(default_factory=set)

    def add(
        self,
        title: str,
        rows: Iterator[tuple[object, ...]],
        seen: _SheetXml,
        *,
        offset: int,
        start: int,
        places: list[int | None],
        named: list[str],
    ) -> None:
        """One sheet's rows: numbered from ``start`` plus ``offset``, each of the first
        sheet's columns taken from its place in this sheet (``places``), whose header is
        ``named``."""
        merged = _MergedDown(seen.merged)
        for number, padded, total in merged.fill(rows, start=start, width=len(named)):
            if total:
                self.totals += 1
                continue
            self.numbers.append(offset + number)
            for i, place in enumerate(places):
                self.columns[i].append(_text(padded[place]) if place is not None else None)
            if len(padded) > len(named) or "" in named:
                # (values under no header: the reader cannot tell whose they are)
                self.unread.update(
                    f"{title}!{_column_letters(place)}"
                    for place, value in enumerate(padded)
                    if value is not None and (place >= len(named) or not named[place])
                )
        self.filled += merged.filled

    def notes(self) -> list[str]:
        notes = []
        if self.filled:
            notes.append(reasons.MERGED_FILLED.format(count=self.filled))
        if self.totals:
            notes.append(reasons.TOTAL_ROWS.format(count=self.totals))
        if self.unread:
            shown = ", ".join(sorted(self.unread))
            notes.append(reasons.VALUES_WITHOUT_HEADER.format(columns=shown))
        return notes


def _refuse_unsaved(seen: _SheetXml, title: str, name: str) -> None:
    """Refuse a sheet whose formulas have no saved result (see :class:`_SheetXml`)."""
    if seen.unsaved:
        cells = ", ".join(seen.unsaved[:5]) + (" …" if len(seen.unsaved) > 5 else "")
        raise InputError(
            reasons.UNSAVED_FORMULAS.format(count=len(seen.unsaved), sheet=title, cells=cells),
            where=name,
        )


#: What a report's total row starts with, in place of a record's first value.
_TOTAL_WORDS = frozenset({"合计", "总计", "小计", "总计：", "合计：", "total", "sum"})


def _is_total(row: list[object]) -> bool:
    """Whether a sheet's row is its report's total (``合计`` and sums), not a record."""
    first = next((v for v in row if v is not None and str(v).strip()), None)
    return first is not None and str(first).strip().lower().replace(" ", "") in _TOTAL_WORDS


def _column_letters(place: int) -> str:
    """A 0-based column index as a spreadsheet's letters (0 → A, 26 → AA)."""
    letters = ""
    place += 1
    while place:
        place, rest = divmod(place - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _same_columns(
    headers: list[str], theirs: list[str], known_headers: Mapping[str, str]
) -> list[int | None] | None:
    """Where each of the first sheet's columns is in a later sheet's header: its place, or
    None for a column the dataset does not know and the later sheet lacks; None in all
    when the later sheet lacks a column of the dataset the first one has.

    Headers are compared as the dataset reads them (``主叫号码`` and ``caller`` are one
    column), so a sheet whose columns come in another order, spelt otherwise, or with a
    column more (a remark) is read with the first; a sheet of other columns is not.
    """

    def column(header: str) -> tuple[bool, str]:
        spelt = normalise_header(header)
        return spelt in known_headers, known_headers.get(spelt, spelt)

    mapped = [column(h)[1] for h in theirs if h]
    if len(set(mapped)) < len(mapped):
        return None  # (two of its headers name one column: which is it?)
    their_places = {column(h)[1]: place for place, h in enumerate(theirs) if h}
    places: list[int | None] = []
    for header in headers:
        known, name = column(header) if header else (False, "")
        place = their_places.get(name) if name else None
        if place is None and known:
            return None
        places.append(place)
    return places if any(place is not None for place in places) else None


@dataclass
class _MergedDown:
    """A sheet's cells merged down over data rows (top row → [(column, last row)], from
    :func:`_sheet_xml`), and how many cells :meth:`fill` gave their range's value."""

    ranges: dict[int, list[tuple[int, int]]]
    filled: int = 0

    def fill(
        self, rows: Iterator[tuple[object, ...]], *, start: int, width: int
    ) -> Iterator[tuple[int, list[object], bool]]:
        """The rows that hold a value, numbered from ``start`` and padded to ``width``,
        with each cell merged down given its range's value, and whether the row as sent
        is a report's total (``小计`` under a city merged down over it is one)."""
        filling: dict[int, tuple[int, object]] = {}  # column → (last row, value)
        for number, row in enumerate(rows, start=start):
            padded = [*row, *([None] * (width - len(row)))]
            for column, last in self.ranges.get(number, ()):
                filling[column] = (last, padded[column])
            if all(v is None for v in padded):
                continue  # trailing blank rows are common in spreadsheets
            total = _is_total(padded)
            for column, (last, value) in list(filling.items()):
                if number > last:
                    del filling[column]
                elif padded[column] is None and value is not None:
                    padded[column] = value
                    self.filled += 1
            yield number, padded, total


#: A formula cell with no saved result, as a program that does not calculate writes it:
#: ``<c r="E5"><f>G5+H5</f><v /></c>`` (group 1: the cell's attributes).
_UNSAVED_FORMULA = re.compile(
    rb"<(?:\w+:)?c\b([^>]*)>\s*<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*"
    rb"(<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)
#: A cell holding text: an empty saved value is an empty text (``=IF(A2="","",A2)``), as
#: Excel and WPS save it, not a result left out.
_TEXT_CELL = re.compile(rb'\bt="(?:str|s|inlineStr)"')
_CELL_REFERENCE = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
#: A merged range as the sheet's XML writes it: ``<mergeCell ref="A3:A7"/>``.
_MERGED_RANGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*ref="([A-Z]+)([0-9]+):([A-Z]+)([0-9]+)"')


@dataclass
class _SheetXml:
    """What the streaming reader does not see of a sheet, read from its XML: cells merged
    down over data rows (top row → [(column, last row)]), and formula cells with no saved
    result (their references, ``E5``)."""

    merged: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    unsaved: list[str] = field(default_factory=list)


def _sheet_xml(path: Path, sheet: Any, *, first_row: int, width: int) -> _SheetXml:
    """Merges and unsaved formulas of ``sheet`` (see :class:`_SheetXml`).

    A report sheet merges a value down over the rows it applies to (a city over its
    counties' rows); a person sees it in each of them, the file holds it only in the top
    one. Such a range is read as its value in every row, in its first column (a range
    across columns too does not say which of them the value belongs to). A formula has a
    saved result once Excel or WPS saved the file; a file a program wrote may have none,
    which the reader would take for an empty cell.
    """
    found = _SheetXml()
    where = getattr(sheet, "_worksheet_path", None)
    if not isinstance(where, str):
        return found

    def note(text: bytes, end: int) -> None:
        for match in _UNSAVED_FORMULA.finditer(text, 0, end):
            if match.group(2) is not None and _TEXT_CELL.search(match.group(1)):
                continue  # (an empty text saved as the formula's result)
            cell = _CELL_REFERENCE.search(match.group(1))
            if cell is not None and int(cell.group(2)) >= first_row:
                found.unsaved.append(cell.group(1).decode() + cell.group(2).decode())
        for match in _MERGED_RANGE.finditer(text, 0, end):
            left, top, _, bottom = match.groups()
            column, top_row, last = _column_index(left.decode()), int(top), int(bottom)
            if last > top_row and column < width and top_row >= first_row:
                found.merged.setdefault(top_row, []).append((column, last))

    tail = b""
    with zipfile.ZipFile(path) as archive, archive.open(where) as xml:
        while chunk := xml.read(1 << 20):
            text = tail + chunk
            # Read up to the last whole row (a cell cut between chunks is read with the
            # next one), or, past the rows, the last whole tag.
            rows_end = text.rfind(b"</row>")
            cut = rows_end + len(b"</row>") if rows_end >= 0 else max(text.rfind(b"<"), 0)
            note(text, cut)
            tail = text[cut:]
    note(tail, len(tail))
    return found


def _column_index(letters: str) -> int:
    """A spreadsheet column's letters as a 0-based index (A → 0, AA → 26)."""
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _data_sheet(sheets: list[Any], known_headers: Mapping[str, str]) -> int:
    """The place of the first sheet whose header names one of the dataset's columns; the
    first sheet's when none does (its header is then what the refusal quotes)."""
    for place, sheet in enumerate(sheets):
        header, _, _ = _after_titles(sheet.iter_rows(values_only=True), known_headers)
        cells = _header_cells(header) if header is not None else []
        if any(normalise_header(cell) in known_headers for cell in cells):
            return place
    return 0


#: Rows above a sheet's header that may hold its title (a report's name, a unit, a date).
_TITLE_ROWS = 5
#: Blank rows a sheet may begin with (not counted as title rows): past them, it is blank.
_BLANK_ROWS = 1000


def _after_titles(
    rows: Iterator[tuple[object, ...]], known_headers: Mapping[str, str] = _NO_HEADERS
) -> tuple[tuple[object, ...] | None, int, Iterator[tuple[object, ...]]]:
    """A sheet's header row, the title rows above it, and the rows after it.

    Chinese report templates put the report's title in the first row (one cell, often
    merged across the sheet), perhaps a line of who filled it in and when, and the header
    below. The header is the top row naming most of the dataset's columns (``known_headers``,
    normalised; the first such row); with none, the first row of several values after rows
    of at most one, up to ``_TITLE_ROWS`` of them; otherwise the first row. Blank rows
    above all that (a sheet begun lower down) are passed over, however many, up to
    ``_BLANK_ROWS``; they are counted among the rows above the header.
    """
    leading, first = 0, None  # (blank rows above the first with a value, and that row)
    for row in itertools.islice(rows, _BLANK_ROWS):
        if any(v is not None and str(v).strip() != "" for v in row):
            first = row
            break
        leading += 1
    if first is None:
        return None, 0, rows
    seen = [first, *itertools.islice(rows, _TITLE_ROWS)]
    place, header, rest = _header_among(seen, rows, known_headers)
    return header, leading + place, rest


def _header_among(
    seen: list[tuple[object, ...]],
    rows: Iterator[tuple[object, ...]],
    known_headers: Mapping[str, str],
) -> tuple[int, tuple[object, ...], Iterator[tuple[object, ...]]]:
    """:func:`_after_titles` in the first rows of a sheet (``seen``, the first not blank):
    the header's place among them, the header, and the rows after it."""
    named = [
        sum(normalise_header(str(v)) in known_headers for v in row if v is not None) for row in seen
    ]
    if any(named):
        # (the row naming the most: a cover line may name one, ``统计月份 | 2021年12月``)
        place = named.index(max(named))
        return place, seen[place], itertools.chain(seen[place + 1 :], rows)
    for place, row in enumerate(seen):
        if sum(v is not None and str(v).strip() != "" for v in row) >= 2:
            return place, row, itertools.chain(seen[place + 1 :], rows)
    return 0, seen[0], itertools.chain(seen[1:], rows)


def _sheet_notes(
    read: list[str], other: list[str], *, before: list[str], hidden: list[str], titles: int
) -> list[str]:
    """What the sender should know of how a workbook was read: which sheets were, and
    which were not, and why. (A sheet may be named after someone, number and all.)"""
    read, other, before, hidden = (
        [mask_digits(name) for name in names] for names in (read, other, before, hidden)
    )
    notes = []
    if len(read) > 1:
        shown = ", ".join(read)
        notes.append(reasons.SHEETS_READ.format(count=len(read), sheets=shown, rows=SHEET_ROWS))
    if other:
        notes.append(reasons.SHEETS_IGNORED.format(sheets=", ".join(other)))
    if before:
        notes.append(reasons.SHEETS_BEFORE.format(sheets=", ".join(before)))
    if hidden:
        notes.append(reasons.HIDDEN_SHEETS.format(sheets=", ".join(hidden)))
    if titles:
        notes.append(reasons.TITLE_ROWS.format(count=titles))
    return notes


def _read_parquet(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    known_headers: Mapping[str, str] = _NO_HEADERS,
) -> Source:
    """The columns the dataset knows (all, with no dataset), as text; the others are only
    named (the record's note lists them), so a column of a type text cannot hold, such as
    a nested one, costs nothing."""
    try:
        names = pq.read_schema(path).names
        _unique_headers(names, name)
        wanted = [n for n in names if not known_headers or normalise_header(n) in known_headers]
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(
            reasons.CANNOT_READ_PARQUET.format(detail=first_line(err)), where=name
        ) from err
    text = pa.table(
        {
            **{
                field.name: _parquet_text(con, table.column(field.name), field.name, name)
                for field in table.schema
            },
            ROW: pa.array(range(1, table.num_rows + 1), pa.int64()),
        }
    )
    _register(con, text)
    return Source(FileFormat.PARQUET, "", names, RAW_TABLE, True)


def _parquet_text(
    con: duckdb.DuckDBPyConnection, column: pa.ChunkedArray, header: str, name: str
) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        try:
            return column.cast(pa.string())
        except pa.ArrowInvalid as err:
            # (bytes, not text: which value, of which column, the sender must know to mend it)
            row = next(
                place
                for place, value in enumerate(column.to_pylist(), start=1)
                if value is not None and not _decodes(value, "utf-8")
            )
            raise InputError(
                reasons.NOT_UTF8_VALUE.format(column=repr(shown_header(header)), row=row),
                where=name,
            ) from err
    if pa.types.is_floating(column.type):
        return _float_text(column)
    if pa.types.is_nested(column.type):
        # (a list or a record where a value was expected: shown as JSON, it fails the
        # column's form with the value in the report; written by the engine, in order)
        nested = con.from_arrow(pa.table({"value": column}))
        return nested.project("CAST(to_json(value) AS VARCHAR)").to_arrow_table().column(0)
    return column.cast(pa.string())


def _read_geojson(
    con: duckdb.DuckDBPyConnection, path: Path, name: str, geometry_column: str | None
) -> Source:
    import shapely
    import shapely.errors
    import shapely.geometry

    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(reasons.NOT_JSON.format(detail=err), where=name) from err
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise InputError(reasons.NOT_FEATURE_COLLECTION, where=name)
    _check_declared_crs(document.get("crs"), name)
    features = document.get("features") or []
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise InputError(reasons.NOT_FEATURES, where=name)
    if not features:
        # (its columns are its features' properties: without one, every column is missing)
        raise InputError(reasons.NO_FEATURES, where=name)
    keys: list[str] = []
    for feature in features:
        for key in feature.get("properties") or {}:
            if key not in keys:
                keys.append(key)
    target = geometry_column or "geometry"
    if target in keys:
        raise InputError(reasons.GEOMETRY_PROPERTY.format(name=repr(target)), where=name)
    data: dict[str, list[str | None]] = {key: [] for key in [*keys, target]}
    for feature in features:
        properties = feature.get("properties") or {}
        for key in keys:
            data[key].append(_text(properties.get(key)))
        geometry = feature.get("geometry")
        try:
            # Heights (``[lon, lat, alt]``, as GPS tracks and GIS exports have them) are
            # dropped: the analyses measure on the ground.
            shape = shapely.force_2d(shapely.geometry.shape(geometry)) if geometry else None
            data[target].append(shape.wkt if shape is not None else None)
        except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.ShapelyError):
            # (a line of one point, a ring that does not close: that feature's own error)
            data[target].append("INVALID")  # reported by validation as an invalid geometry
    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in data.items()},
            ROW: pa.array(range(1, len(features) + 1), pa.int64()),
        }
    )
    _register(con, table)
    return Source(FileFormat.GEOJSON, "utf-8", list(data), RAW_TABLE, True)


#: Coordinate systems a GeoJSON file may declare (the 2008 form's ``crs`` member; RFC 7946
#: has none and means WGS-84): WGS-84, and CGCS2000 (EPSG:4490), within centimetres of it.
_LONLAT_CRS = re.compile(r"(?:CRS84|(?:^|[^0-9])(?:4326|4490))$", re.IGNORECASE)


def _check_declared_crs(crs: object, name: str) -> None:
    """Refuse a file that declares a coordinate system other than longitude and latitude."""
    if crs is None:
        return
    declared = _declared_crs(crs)
    if not isinstance(declared, str) or not _LONLAT_CRS.search(declared.strip()):
        shown = declared if isinstance(declared, str) else json.dumps(crs, ensure_ascii=False)
        raise InputError(reasons.GEOJSON_CRS.format(crs=shown[:120]), where=name)


def _declared_crs(crs: object) -> str | None:
    """The name a ``crs`` member gives its system: ``{"type": "name", "properties": {"name":
    …}}`` as the 2008 form has it, the older ``{"type": "EPSG", "properties": {"code":
    4326}}``, or a bare name, as some programs write it (``"EPSG:4326"``)."""
    if isinstance(crs, str):
        return crs
    properties = crs.get("properties") if isinstance(crs, dict) else None
    if not isinstance(properties, dict):
        return None
    if isinstance(properties.get("name"), str):
        return str(properties["name"])
    code = properties.get("code")
    kind = crs.get("type") if isinstance(crs, dict) else None
    if isinstance(code, int | str) and isinstance(kind, str) and kind.upper() == "EPSG":
        return f"EPSG:{code}"
    return None


def open_source(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    display_name: str,
    workdir: Path,
    geometry_column: str | None = None,
    known_headers: Mapping[str, str] = _NO_HEADERS,
    file_format: FileFormat | None = None,
) -> Source:
    """Prepare ``path`` for reading; non-CSV formats are loaded into ``raw_rows`` now.
    ``known_headers``: the dataset's header spellings (normalised) and their columns, by
    which a workbook's header, data sheet and later sheets are found; ``file_format``: the
    format :func:`sniff_format` already told, if the caller asked it."""
    file_format = file_format or sniff_format(path, display_name=display_name)
    try:
        if file_format is FileFormat.CSV:
            return _read_csv(con, path, workdir, display_name)
        if file_format is FileFormat.XLSX:
            return _read_xlsx(con, path, display_name, known_headers)
        if file_format is FileFormat.PARQUET:
            return _read_parquet(con, path, display_name, known_headers)
        return _read_geojson(con, path, display_name, geometry_column)
    except TeleregError:
        raise
    except Exception as err:  # an upload the libraries choke on is the sender's error
        raise InputError(
            reasons.CANNOT_READ_FORMAT.format(
                format=file_format.value, detail=first_line(err) or type(err).__name__
            ),
            where=display_name,
        ) from err
