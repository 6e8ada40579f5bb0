"""Per-line calling features for SIM-box and card-breaking work, as Ibis expressions.

Everything here takes and returns Ibis tables, so the same code runs on
DuckDB over local Parquet and on Spark. A *line* is an operator's number
(its token: numbers are pseudonymised at ingest). A call record is one leg of a call:
*originated* (MO), made by the operator's subscriber in ``caller``, or *terminated* (MT),
received by the subscriber in ``callee``, whose cell and IMEI the record then holds. Lines
are the callers of originated legs (and of legs of unknown direction); every feature of
what a line did comes from those, and terminated legs count only as calls received. The
features:

* activity: outgoing calls, active days, calls per active day, calls received (the
  terminated legs to the line, or the originated legs to it when there are more of those:
  an operator that sends only originated legs still shows calls between its own
  subscribers, and one that sends both never has a call counted twice), and outgoing per
  received (``out_in_ratio``);
* who is called: distinct callees, and ``novelty`` = distinct callees per
  outgoing call (1.0 when every call goes to a new number), the shares of
  calls to other operators and other provinces;
* how long: mean duration, the share of calls under ``SHORT_CALL_S``;
* where: distinct cells and the radius of gyration of the serving cells (km; null
  when none of the line's cells is located, so that no "static" rule is met by it);
* what else: SMS and days with mobile data (a SIM box has neither);
* the device: how many lines the busiest of the line's IMEIs carried in the
  period (``imei_lines``; a gateway's port carries many cards), and whether
  any IMEI's TAC is a listed gateway model;
* cohorts: on how many days the line switched on and off within
  ``COHORT_WINDOW_S`` of at least ``COHORT_MIN_PEERS`` other lines at the
  same cell (the ports of one gateway do this).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from telereg.core import engine
from telereg.domains.fraud.parameters import (
    COHORT_MIN_CALLS,
    SHORT_CALL_S,
    FeatureParameters,
)

#: ``direction`` of a terminated leg (a call received; see the module's note).
TERMINATED = "MT"
#: Active days are kept as bits of a 64-bit integer: exact within this many days.
DAY_BITS = 63
#: Calls per day are counted in 3-bit fields, 16 to a 64-bit integer, for this many day
#: slots (day % DAY_SLOTS): a month's days each have their own slot. A field that passes
#: 7 carries into the next; the carry is seen because the fields then no longer add up
#: to the line's calls, and such a line (it made 8 calls or more on a day) can have a
#: busy day. The 48 bits leave room: the sums overflow only at 2**18 calls on one day.
DAY_SLOTS = 32
_SLOT_BITS = 3
_SLOTS_PER_WORD = 16
_SLOT_WORDS = DAY_SLOTS // _SLOTS_PER_WORD
_KM_PER_DEGREE_LAT = 110.57
_KM_PER_DEGREE_LON_EQUATOR = 111.32
#: The local plane's origin: China's central meridian (distances do not depend on it).
_ORIGIN_LONGITUDE = 105.0

FEATURES = (
    "calls_out",
    "active_days",
    "calls_per_day",
    "calls_in",
    "out_in_ratio",
    "callees",
    "novelty",
    "other_operator_share",
    "other_province_share",
    "mean_duration_s",
    "short_share",
    "cells",
    "radius_km",
    "sms",
    "data_days",
    "imei_lines",
    "gateway_tac",
    "cohort_days",
)


@contextmanager
def line_features(
    calls: ir.Table,
    cells: ir.Table,
    sms: ir.Table,
    data: ir.Table,
    gateway_tacs: ir.Table,
    *,
    home_province: str,
    mid_latitude: float,
    parameters: FeatureParameters | None = None,
) -> Iterator[ir.Table]:
    """One row per (operator, line) that made a call: the features above.

    ``calls``: the ``voice_cdr`` contract plus ``operator``; ``cells``: the
    ``cells`` contract plus ``operator``; ``sms`` and ``data``: their
    contracts (possibly empty); ``gateway_tacs``: a table with a ``tac``
    column. ``mid_latitude`` scales longitude to kilometres.

    A context manager: entering it runs the two groupings of the calls that
    several features read (per line; per line, cell and handset) and keeps them
    as temporary tables of the calls' backend until the context ends; the
    table it gives is an expression over them, to be run inside the context.
    """
    # Each grouping reads the calls itself, and a grouping read by several branches is
    # computed beforehand: inside one query, the engine materialises a shared derived
    # table alongside the other branches' hash tables, and they compete for memory.
    made = originated(calls)
    given = parameters or FeatureParameters()
    with (
        engine.computed(_outgoing(made, home_province, given.short_call_s)) as outgoing,
        engine.computed(_places(made)) as places,
    ):
        yield _assemble(
            calls, cells, sms, data, gateway_tacs, outgoing, places, mid_latitude, given
        )


def _assemble(
    calls: ir.Table,
    cells: ir.Table,
    sms: ir.Table,
    data: ir.Table,
    gateway_tacs: ir.Table,
    outgoing: ir.Table,
    places: ir.Table,
    mid_latitude: float,
    parameters: FeatureParameters,
) -> ir.Table:
    where = _whereabouts(places, cells, gateway_tacs, mid_latitude)
    contacts = _contacts(calls, sms, outgoing)
    data_days = _data_days(data)
    cohorts = _cohort_days(originated(calls), outgoing, parameters)

    joined = (
        outgoing.inner_join(where, ["operator", "caller"])
        .left_join(contacts, outgoing.caller == contacts.line)
        .drop("line")
        .left_join(data_days, outgoing.caller == data_days.line)
        .drop("line")
        .left_join(
            cohorts, [outgoing.operator == cohorts.operator, outgoing.caller == cohorts.line]
        )
        .drop("line", "operator_right")
    )
    variance = (
        joined.mean_x2
        - joined.mean_x * joined.mean_x
        + joined.mean_y2
        - joined.mean_y * joined.mean_y
    )
    calls_in = joined.calls_in.fill_null(0)
    active_days = _bit_count(joined.day_mask)
    return joined.select(
        operator=joined.operator,
        line=joined.caller,
        calls_out=joined.calls_out,
        active_days=active_days,
        calls_per_day=joined.calls_out / active_days,
        calls_in=calls_in,
        out_in_ratio=joined.calls_out / (calls_in + 1),
        callees=joined.callees,
        novelty=joined.callees / joined.calls_out,
        other_operator_share=joined.other_operator / joined.calls_out,
        other_province_share=joined.other_province / joined.calls_out,
        mean_duration_s=joined.duration / joined.calls_out,
        short_share=joined.short / joined.calls_out,
        cells=joined.cells,
        # To the metre: the means' difference cancels to a few millimetres of rounding noise
        # that changes with the order the engine sums in, so a line at one cell would get
        # 0 in one run and 0.000008 in the next, and a model trained on it would differ.
        # Null, not 0, for a line none of whose calls was at a located cell: nothing is known
        # of where it was, and 0 would meet the "static" rule.
        # (``greatest`` would not do: it skips nulls in DuckDB, Spark and PostgreSQL alike.)
        radius_km=(variance < 0).ifelse(0.0, variance).sqrt().round(3),
        sms=joined.sms.fill_null(0),
        data_days=joined.data_days.fill_null(0),
        imei_lines=joined.imei_lines.fill_null(0),
        gateway_tac=joined.gateway_tac.fill_null(False),
        cohort_days=joined.cohort_days.fill_null(0),
    )


def originated(calls: ir.Table) -> ir.Table:
    """The legs a line of the operator made: originated, or of unknown direction.

    A terminated leg's caller is the other party, often another operator's number; its
    cell and IMEI are the receiving subscriber's. Counted as made, it would turn that
    party into a "line" of the operator, at the subscriber's cell and on its handset.
    """
    return calls.filter(calls.direction.isnull() | (calls.direction != TERMINATED))


@ibis.udf.agg.builtin(name="bit_or")  # type: ignore[untyped-decorator]
def _bit_or(value: dt.int64) -> dt.int64:
    """Bitwise OR of the group's values (DuckDB and Spark both have ``bit_or``)."""


@ibis.udf.scalar.builtin(name="bit_count")  # type: ignore[untyped-decorator]
def _bit_count_narrow(value: dt.int64) -> dt.int8:
    """Set bits in an integer (DuckDB and Spark both have ``bit_count``; DuckDB's is 8-bit)."""


def _bit_count(value: ir.IntegerValue) -> ir.IntegerValue:
    """Set bits in an integer, as a 64-bit integer: sums of 8-bit counts would overflow."""
    counted: ir.IntegerValue = _bit_count_narrow(value).cast("int64")
    return counted


def _bit(position: ir.IntegerValue) -> ir.IntegerValue:
    """A 64-bit integer with the one bit ``position`` set.

    The cast is written out: Ibis renders a bare 64-bit literal 1 as a 32-bit one.
    """
    one: ir.IntegerValue = ibis.literal(1).cast("int64")
    return one << position


def _outgoing(calls: ir.Table, home_province: str, short_call_s: int = SHORT_CALL_S) -> ir.Table:
    """Per line: calls, the sums behind the shares, distinct callees, the days as a bit mask.

    Day ``d`` (days since 1970) sets bit ``d % DAY_BITS``: exact for calls within any
    ``DAY_BITS`` consecutive days, so for a month. The calls per day slot are summed into
    ``day_calls_0`` … (see ``DAY_SLOTS``), which :func:`_cohort_days` reads.
    """
    day = calls.start_time.epoch_seconds() // 86_400
    day_bit = _bit(day % DAY_BITS)
    slot = day % DAY_SLOTS
    in_field = _bit((slot % _SLOTS_PER_WORD) * _SLOT_BITS)
    word = slot // _SLOTS_PER_WORD
    day_calls = {
        f"day_calls_{w}": in_field.sum(where=word == w).fill_null(0) for w in range(_SLOT_WORDS)
    }
    other_operator = calls.peer_operator.notnull() & (calls.peer_operator != calls.operator)
    other_province = calls.peer_province.notnull() & (calls.peer_province != home_province)
    return calls.group_by(["operator", "caller"]).agg(
        calls_out=calls.count(),
        day_mask=_bit_or(day_bit),
        duration=calls.duration_s.sum(),
        short=calls.count(where=calls.duration_s < short_call_s),
        other_operator=calls.count(where=other_operator),
        other_province=calls.count(where=other_province),
        callees=calls.callee.nunique(),
        **day_calls,
    )


def _places(calls: ir.Table) -> ir.Table:
    """Calls per line, cell and handset: where a line was, and in what."""
    keys = ["operator", "caller", "cell_id", "imei", "imei_tac"]
    return calls.group_by(keys).agg(n=calls.count())


def _whereabouts(
    places: ir.Table, cells: ir.Table, gateway_tacs: ir.Table, mid_latitude: float
) -> ir.Table:
    """Per line, from its places: where it was, and in what.

    Where: distinct cells, and the means behind the radius of gyration (weighted by
    calls). Positions are in km on a local plane whose origin is near the region, so the
    squares summed stay small and their differences keep metre precision. In what: the
    most lines any of its IMEIs carried, and whether one of them is a listed gateway model.
    One grouping of the places, with the positions, the lines per IMEI and the listed
    TACs joined to them (the sums are linear, so they need no grouping by cell first).
    """
    scale = _KM_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(mid_latitude))
    position = cells.select(
        cell_operator=cells.operator,
        cell_key=cells.cell_id,
        x_km=(cells.longitude - _ORIGIN_LONGITUDE) * scale,
        y_km=(cells.latitude - mid_latitude) * _KM_PER_DEGREE_LAT,
    )
    handsets = places.filter(places.imei.notnull())
    per_imei = handsets.group_by(known_imei=handsets.imei).agg(imei_lines=handsets.caller.nunique())
    listed = gateway_tacs.select(listed_tac=gateway_tacs.tac).distinct()
    located = (
        places.left_join(
            position,
            [places.operator == position.cell_operator, places.cell_id == position.cell_key],
        )
        .left_join(per_imei, places.imei == per_imei.known_imei)
        .left_join(listed, places.imei_tac == listed.listed_tac)
    )
    placed = located.x_km.notnull().ifelse(located.n, 0)
    sums = located.group_by(["operator", "caller"]).agg(
        cells=located.cell_id.nunique(),
        placed=placed.sum(),
        sum_x=(located.n * located.x_km).sum(),
        sum_y=(located.n * located.y_km).sum(),
        sum_x2=(located.n * located.x_km * located.x_km).sum(),
        sum_y2=(located.n * located.y_km * located.y_km).sum(),
        imei_lines=located.imei_lines.max(),
        gateway_tac=(located.imei.notnull() & located.listed_tac.notnull()).any(),
    )
    return sums.select(
        "operator",
        "caller",
        "cells",
        "imei_lines",
        "gateway_tac",
        mean_x=sums.sum_x / sums.placed,
        mean_y=sums.sum_y / sums.placed,
        mean_x2=sums.sum_x2 / sums.placed,
        mean_y2=sums.sum_y2 / sums.placed,
    )


def _data_days(data: ir.Table) -> ir.Table:
    """Per number: days with a data session, counted as bits like the calls' active days."""
    days = data.group_by(line=data.phone).agg(
        day_mask=_bit_or(_bit(data.day.epoch_days() % DAY_BITS))
    )
    return days.select("line", data_days=_bit_count(days.day_mask))


def _contacts(calls: ir.Table, sms: ir.Table, outgoing: ir.Table) -> ir.Table:
    """Per line of ``outgoing``: calls received, and text messages sent or received.

    One grouping, of the ends that are such lines: most callees are other operators'
    or other provinces' numbers, which would otherwise each take a group. Calls received
    are the larger of the line's terminated legs and the originated legs to it (see
    the module's note).
    """
    call, text = ibis.literal(True), ibis.literal(False)
    ends = ibis.union(
        calls.select(
            line=calls.callee,
            call=call,
            terminated=calls.direction.fill_null("") == TERMINATED,
        ),
        sms.select(line=sms.sender, call=text, terminated=ibis.literal(False)),
        sms.select(line=sms.receiver, call=text, terminated=ibis.literal(False)),
        distinct=False,
    )
    lines = outgoing.select(known=outgoing.caller)  # (a semi-join keeps each end once)
    mine = ends.semi_join(lines, ends.line == lines.known)
    counted = mine.group_by("line").agg(
        made_to=mine.count(where=mine.call & ~mine.terminated),
        received=mine.count(where=mine.call & mine.terminated),
        sms=mine.count(where=~mine.call),
    )
    return counted.select(
        "line",
        "sms",
        calls_in=(counted.received > counted.made_to).ifelse(counted.received, counted.made_to),
    )


def _cohort_days(
    calls: ir.Table, outgoing: ir.Table, parameters: FeatureParameters | None = None
) -> ir.Table:
    """Per line: days it switched on and off together with other lines at its cell.

    Only busy line-days (``cohort_min_calls`` calls or more) are compared: the first and
    last call of the day, at the day's first cell. ``outgoing`` is :func:`_outgoing`.
    """
    given = parameters or FeatureParameters()
    # Only the calls of lines that can have a busy day go into the line-day grouping,
    # the largest hash table of the scan otherwise: most lines' calls are spread over the
    # month. The day slots counted in ``outgoing`` tell which lines those are.
    candidates = outgoing.filter(_may_have_busy_day(outgoing, given.cohort_min_calls)).select(
        c_operator=outgoing.operator, c_line=outgoing.caller
    )
    active = calls.semi_join(
        candidates, [calls.operator == candidates.c_operator, calls.caller == candidates.c_line]
    )
    # The filter is a HAVING of the grouping, so the busy days are all that is kept for the
    # self-join (a slot may hold several days outside a month).
    busy = (
        active.group_by(["operator", "caller", active.start_time.date().name("day")])
        .having(active.count() >= given.cohort_min_calls)
        .agg(
            first=active.start_time.epoch_seconds().min(),
            last=active.start_time.epoch_seconds().max(),
            cell=active.cell_id.min(),
        )
    )
    other = busy.select(
        o_operator=busy.operator,
        o_line=busy.caller,
        o_day=busy.day,
        o_first=busy["first"],
        o_last=busy["last"],
        o_cell=busy.cell,
    )
    pairs = busy.inner_join(
        other,
        [
            busy.operator == other.o_operator,
            busy.day == other.o_day,
            busy.cell == other.o_cell,
            busy.caller != other.o_line,
            (busy["first"] - other.o_first).abs() <= given.cohort_window_s,
            (busy["last"] - other.o_last).abs() <= given.cohort_window_s,
        ],
    )
    peers = pairs.group_by([pairs.operator, pairs.caller, pairs.day]).agg(
        peers=pairs.o_line.nunique()
    )
    together = peers.filter(peers.peers >= given.cohort_min_peers)
    return together.group_by(["operator", together.caller.name("line")]).agg(
        cohort_days=together.day.nunique()
    )


def _may_have_busy_day(outgoing: ir.Table, min_calls: int = COHORT_MIN_CALLS) -> ir.BooleanValue:
    """Whether a line of ``outgoing`` can have a day of ``min_calls`` calls or more.

    True when one of its day slots holds ``min_calls`` calls or more, or when a
    field overflowed (the fields do not add up to the line's calls): a necessary condition
    for a busy day, and within a month an exact one. Bit arithmetic on the whole words, so
    the test costs a few operations per line, not one per slot.

    A field ``v`` is at least ``t`` when, from its lowest bit up, each bit ``b`` gives
    ``v_b & rest`` where ``t_b`` is 1 and ``v_b | rest`` where it is 0 (``rest`` starting
    true): the comparison of the two numbers from their highest bit down, unrolled. Bit
    ``b`` of every field is taken to the field's lowest position, so one integer holds the
    answer for all fields of a word. A threshold above a field's largest value is met only
    by an overflowed field, which the sum check sees.
    """
    lowest = sum(1 << (_SLOT_BITS * f) for f in range(_SLOTS_PER_WORD))
    fields = ibis.literal(lowest, "int64")
    threshold_fits = min_calls < 1 << _SLOT_BITS
    some_field = ibis.literal(False)
    total: ir.IntegerValue = ibis.literal(0, "int64")
    for w in range(_SLOT_WORDS):
        word = outgoing[f"day_calls_{w}"]
        at_least = fields
        for b in range(_SLOT_BITS):
            bit = (word >> b) & fields
            total = total + _bit_count(bit) * (1 << b)
            at_least = (bit & at_least) if min_calls >> b & 1 else (bit | at_least)
        if threshold_fits:
            some_field = some_field | (at_least != 0)
    return some_field | (total != outgoing.calls_out)
