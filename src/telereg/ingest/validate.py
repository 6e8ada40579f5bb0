"""Validation of a file against its contract, as Ibis expressions.

Each rule of each column becomes one boolean expression that is true where a
row breaks it, with a reason; the engine evaluates them column-wise over the
whole file. Nothing here loops over rows in Python.

Rules come in two kinds. *Row rules* look at one row alone (required, type,
range, pattern, enumeration, length); they are evaluated while the file is
read, into flag columns of one materialised table. *Set rules* need that table
first: duplicate keys, references to other data, the period (which may be
inferred from the rows) and geometry; they are evaluated over it, where row
numbers are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as dt_date

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from telereg.ingest import reasons
from telereg.ingest.contracts import (
    ENGINE_TYPES,
    PERSONAL_NUMBER,
    PERSONAL_NUMBER_LENGTHS,
    Column,
    ColumnType,
    Contract,
)

ROW = "__row"
BAD = "__bad"
_TRUE = ("true", "1", "yes", "y", "t", "是")
_FALSE = ("false", "0", "no", "n", "f", "否")
#: Types converted by a cast (booleans are read from words instead).
_CAST = {kind: name for kind, name in ENGINE_TYPES.items() if kind is not ColumnType.BOOLEAN}


@dataclass(frozen=True)
class Period:
    """A calendar month, ``YYYY-MM``."""

    label: str

    @property
    def start(self) -> str:
        return f"{self.label}-01"

    @property
    def end(self) -> str:
        year, month = map(int, self.label.split("-"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return f"{year:04d}-{month:02d}-01"


@dataclass(frozen=True)
class Check:
    column: str
    fails: ir.BooleanValue
    reason: ir.StringValue


def blank(value: ir.StringValue) -> ir.BooleanValue:
    """Values arrive trimmed, with blanks as NULL (see ``ingest.service``)."""
    return value.isnull()


#: The lake keeps times as the wall clock of China Standard Time, as operators' systems
#: write them; a time sent with its offset from UTC (``…+08:00``, ``…-0500``, ``…Z``) is
#: converted to it. (China keeps one zone all year.)
LOCAL_ZONE = "Asia/Shanghai"
_INSTANT = dt.Timestamp(timezone="UTC")
_LOCAL = dt.Timestamp()


@ibis.udf.scalar.builtin(name="timezone")  # type: ignore[untyped-decorator]
def _wall_clock(zone: str, moment: _INSTANT) -> _LOCAL:  # type: ignore[valid-type]
    """The wall-clock time in ``zone`` of an instant (DuckDB's ``timezone``)."""


def _has_offset(text: ir.StringValue) -> ir.BooleanValue:
    """Whether a date and time ends with an offset from UTC: ``Z``, ``±hh``, ``±hhmm`` or
    ``±hh:mm``. Only a text longer than ``YYYY-MM-DD HH:MM:SS`` can: the length is tested
    first, so the usual time costs no more than that."""
    signs = ("+", "-")
    ends: ir.BooleanValue = (text.length() > 19) & (
        text.endswith("Z")
        | text.right(3).left(1).isin(signs)
        | text.right(5).left(1).isin(signs)
        | text.right(6).left(1).isin(signs)
    )
    return ends


def _whole_number(value: ir.Value) -> ir.IntegerValue:
    """The text as a 64-bit integer, null unless it is one: the engine's cast would round
    ``60.5`` to 61 and read ``0x1F`` as 31."""
    whole = value.try_cast("int64")
    exact = value.try_cast("float64")
    kept: ir.IntegerValue = ibis.ifelse(exact == whole.cast("float64"), whole, ibis.null("int64"))
    return kept


@ibis.udf.scalar.builtin(name="try_strptime")  # type: ignore[untyped-decorator]
def _parsed(text: str, form: str) -> _LOCAL:  # type: ignore[valid-type]
    """``text`` read with the ``strftime`` form ``form`` (null where it does not fit)."""


def _digits(text: ir.StringValue, count: int) -> ir.BooleanValue:
    """Whether ``text`` is ``count`` digits and nothing else (the length is tested first)."""
    only: ir.BooleanValue = (text.length() == count) & text.re_search(f"^[0-9]{{{count}}}$")
    return only


def _local_time(value: ir.Value) -> ir.TimestampValue:
    """The text as a time of :data:`LOCAL_ZONE`'s wall clock (see there). Besides the ISO
    forms (``2021-11-05 10:00:00``, ``2021/11/5 9:00``), operators' CDR exports write
    ``20211105100000``."""
    text = value.cast("string")
    zoned = _wall_clock(LOCAL_ZONE, text.try_cast(_INSTANT))
    local: ir.TimestampValue = ibis.cases(
        (_has_offset(text), zoned),
        (_digits(text, 14), _parsed(text, "%Y%m%d%H%M%S")),
        else_=text.try_cast("timestamp"),
    )
    return local


def _date(value: ir.Value) -> ir.DateValue:
    """The text as a date: ISO forms, and ``20211105``."""
    text = value.cast("string")
    day: ir.DateValue = ibis.ifelse(
        _digits(text, 8), _parsed(text, "%Y%m%d").cast("date"), text.try_cast("date")
    )
    return day


#: The years a date or time may fall in: a year outside them was misread, most often a
#: two-digit year (``21-12-01`` reads as the year 21, ``12/01/21`` as the year 12).
FIRST_YEAR, LAST_YEAR = 1950, 2099


def plausible(converted: ir.Value) -> ir.BooleanValue:
    """Whether a converted date or time falls in ``FIRST_YEAR``–``LAST_YEAR`` (null when
    it is null): two comparisons, not a year extracted from every value."""
    low = ibis.literal(dt_date(FIRST_YEAR, 1, 1)).cast(converted.type())
    high = ibis.literal(dt_date(LAST_YEAR + 1, 1, 1)).cast(converted.type())
    inside: ir.BooleanValue = (converted >= low) & (converted < high)
    return inside


def typed(column: Column, value: ir.Value) -> ir.Value:
    """The value converted to the column's type (null where it does not convert)."""
    if column.type is ColumnType.INTEGER:
        return _whole_number(value)
    if column.type is ColumnType.TIMESTAMP:
        return _local_time(value)
    if column.type is ColumnType.DATE:
        return _date(value)
    if column.type in _CAST:
        return value.try_cast(_CAST[column.type])
    if column.type is ColumnType.BOOLEAN:
        lowered = value.cast("string").lower()
        return ibis.cases((lowered.isin(_TRUE), True), (lowered.isin(_FALSE), False), else_=None)
    return value


def _text(reason: str) -> ir.StringValue:
    return ibis.literal(reason, type="string")


def _personal_number(value: ir.StringValue) -> ir.BooleanValue:
    """Whether a code is a mobile or ID-card number (:data:`PERSONAL_NUMBER`). The engine's
    regular expressions have no lookahead to refuse it within the code's own form, so it is
    a rule of its own; the length is tested first, so the usual code costs no more."""
    personal: ir.BooleanValue = value.length().isin(PERSONAL_NUMBER_LENGTHS) & value.re_search(
        f"^(?:{PERSONAL_NUMBER})$"
    )
    return personal


def row_checks(contract: Contract, rows: ir.Table, *, flag_only: bool = False) -> list[Check]:
    """Rules about single rows.

    ``flag_only``: for telling bad rows from good, not why: a date's or a time's "not
    valid" and "misread year" are one test then (the engine converts the value once for
    it; as two, it converted it twice), and its reason is the first's.
    """
    checks: list[Check] = []
    for column in contract.columns:
        value = rows[column.name]
        present = ~blank(value)
        if column.required:
            checks.append(Check(column.name, ~present, _text(reasons.REQUIRED)))
        converted = typed(column, value)
        dated = column.type in (ColumnType.TIMESTAMP, ColumnType.DATE)
        if flag_only and dated:
            checks.append(
                Check(
                    column.name,
                    present & ~plausible(converted).fill_null(False),
                    _text(reasons.NOT_VALID.format(type=column.type.value)),
                )
            )
        elif column.type in _CAST or column.type is ColumnType.BOOLEAN:
            checks.append(
                Check(
                    column.name,
                    present & (converted.isnull() | ~_finite(column, converted)),
                    _text(reasons.NOT_VALID.format(type=column.type.value)),
                )
            )
        if dated and not flag_only:
            checks.append(
                Check(
                    column.name,
                    ~plausible(converted),
                    _text(reasons.IMPLAUSIBLE_YEAR.format(first=FIRST_YEAR, last=LAST_YEAR)),
                )
            )
        if column.minimum is not None:
            checks.append(
                Check(
                    column.name,
                    converted < column.minimum,
                    _text(reasons.BELOW_MINIMUM.format(minimum=f"{column.minimum:g}")),
                )
            )
        if column.maximum is not None:
            checks.append(
                Check(
                    column.name,
                    converted > column.maximum,
                    _text(reasons.ABOVE_MAXIMUM.format(maximum=f"{column.maximum:g}")),
                )
            )
        if column.pattern:
            matches = value.re_search(f"^(?:{column.pattern.regex})$")
            form = reasons.WRONG_FORM.format(
                form=column.pattern.words, example=column.pattern.example
            )
            checks.append(Check(column.name, present & ~matches, _text(form)))
            if column.pattern.refuses_personal_numbers:
                checks.append(
                    Check(column.name, _personal_number(value), _text(reasons.LOOKS_PERSONAL))
                )
        if column.enum:
            allowed = ", ".join(column.enum)
            checks.append(
                Check(
                    column.name,
                    present & ~value.isin(column.enum),
                    _text(reasons.NOT_ONE_OF.format(allowed=allowed)),
                )
            )
        if column.type in (ColumnType.STRING, ColumnType.GEOMETRY):
            checks.append(
                Check(
                    column.name,
                    value.length() > column.max_length,
                    _text(reasons.TOO_LONG.format(length=column.max_length)),
                )
            )
    return checks + _ranges_when(contract, rows)


def _finite(column: Column, converted: ir.Value) -> ir.BooleanValue:
    """Whether a number is finite: ``nan`` and ``inf`` read as floats, and are nobody's
    figure (true for a value of any other type)."""
    if column.type is not ColumnType.FLOAT:
        return ibis.literal(True)
    finite: ir.BooleanValue = ~(converted.isnan() | converted.isinf())
    return finite


def _ranges_when(contract: Contract, rows: ir.Table) -> list[Check]:
    """The rules across columns (:class:`RangeWhen`), for the valid numbers they bound."""
    checks = []
    for rule in contract.ranges_when:
        column = contract.column(rule.column)
        number = typed(column, rows[rule.column])
        outside = [
            *([number < rule.minimum] if rule.minimum is not None else []),
            *([number > rule.maximum] if rule.maximum is not None else []),
            # (not ``floor``, which the engine takes through a 64-bit integer: ``1e20`` fails)
            *([number % 1 != 0] if rule.whole else []),
        ]
        applies = rows[rule.when].isin(rule.values) & _finite(column, number)
        checks.append(Check(rule.column, applies & ibis.or_(*outside), _text(rule.words)))
    return checks


def set_checks(
    contract: Contract,
    rows: ir.Table,
    *,
    references: dict[str, ir.Column],
    period: Period | None,
) -> list[Check]:
    """Rules across rows (duplicate keys), against other data (references) and the period."""
    checks: list[Check] = []
    if period is not None and contract.period_column is not None:
        column = contract.column(contract.period_column)
        converted = typed(column, rows[column.name])
        start = ibis.literal(period.start).cast(converted.type())
        end = ibis.literal(period.end).cast(converted.type())
        checks.append(
            Check(
                column.name,
                (converted < start) | (converted >= end),
                _text(reasons.OUTSIDE_PERIOD.format(period=period.label)),
            )
        )
    for column in contract.columns:
        if column.references is None:
            continue
        value = rows[column.name]
        checks.append(
            Check(
                column.name,
                ~blank(value) & ~value.isin(references[column.name]),
                _text(reasons.UNKNOWN_VALUE.format(reference=column.references.describe())),
            )
        )
    for key in contract.unique:
        first = rows[ROW].min().over(ibis.window(group_by=[rows[k] for k in key]))
        complete = ibis.and_(*[~blank(rows[k]) for k in key])
        checks.append(
            Check(
                "+".join(key),
                complete & (rows[ROW] != first),
                _text(_duplicate_prefix("+".join(key))) + first.cast("string"),
            )
        )
    return checks


def _duplicate_prefix(key: str) -> str:
    """The reason for a duplicate up to the row number, which the engine appends."""
    prefix, row_field, rest = reasons.DUPLICATE.partition("{row}")
    assert row_field, "the reason names the row"
    assert not rest, "the row number ends the reason"
    return prefix.format(key=key)


def _is_literal(value: ir.Value) -> bool:
    return isinstance(value.op(), ops.Literal)


def flag_rows(rows: ir.Table, checks: list[Check], *, prefix: str) -> ir.Table:
    """``rows`` with one flag column per rule (and its reason when computed)."""
    fails = {f"{prefix}{i}": c.fails.fill_null(False) for i, c in enumerate(checks)}
    # Fixed reasons stay literals; only computed ones (duplicates) become columns.
    reasons = {
        f"{prefix}reason_{i}": c.reason for i, c in enumerate(checks) if not _is_literal(c.reason)
    }
    return rows.mutate(**fails, **reasons)


def any_flag(rows: ir.Table, prefixes: tuple[str, ...]) -> ir.BooleanValue:
    flags = [rows[c] for c in rows.columns if c.startswith(prefixes) and "reason" not in c]
    return ibis.or_(*flags) if flags else ibis.literal(False)


def error_rows(rows: ir.Table, checks: list[Check], *, prefix: str) -> list[ir.Table]:
    """Per rule, the rows breaking it: row number, column, reason and the offending text."""
    return [
        rows.filter(rows[f"{prefix}{i}"]).select(
            row=rows[ROW],
            column=ibis.literal(check.column),
            reason=check.reason if _is_literal(check.reason) else rows[f"{prefix}reason_{i}"],
            value=rows[check.column.split("+")[0]].cast("string").substr(0, 200),
        )
        for i, check in enumerate(checks)
    ]
