"""Per-line calling features for SIM-box and card-breaking work, as Ibis expressions.

Everything here takes and returns Ibis tables, so the same code runs on
DuckDB over local Parquet and on Spark. A *line* is an operator's number
(its token: numbers are pseudonymised at ingest). The features:

* activity: outgoing calls, active days, calls per active day, calls received,
  and outgoing per received (``out_in_ratio``);
* who is called: distinct callees, and ``novelty`` = distinct callees per
  outgoing call (1.0 when every call goes to a new number), the shares of
  calls to other operators and other provinces;
* how long: mean duration, the share of calls under ``SHORT_CALL_S``;
* where: distinct cells and the radius of gyration of the serving cells (km);
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

import ibis
import ibis.expr.types as ir

#: Calls shorter than this are "short": a victim hanging up, or a robocall.
SHORT_CALL_S = 30
#: Lines whose first and last call of a day are this close switch on and off together.
COHORT_WINDOW_S = 300
#: A line-day needs this many calls to be compared with others for cohorts.
COHORT_MIN_CALLS = 5
#: Other lines switching with it for the day to count as a cohort day.
COHORT_MIN_PEERS = 2
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


def line_features(
    calls: ir.Table,
    cells: ir.Table,
    sms: ir.Table,
    data: ir.Table,
    gateway_tacs: ir.Table,
    *,
    home_province: str,
    mid_latitude: float,
) -> ir.Table:
    """One row per (operator, line) that made a call: the features above.

    ``calls``: the ``voice_cdr`` contract plus ``operator``; ``cells``: the
    ``cells`` contract plus ``operator``; ``sms`` and ``data``: their
    contracts (possibly empty); ``gateway_tacs``: a table with a ``tac``
    column. ``mid_latitude`` scales longitude to kilometres.
    """
    # One pass groups the calls by line and day; activity, durations, shares, positions
    # and the cohort comparison all come from that, rolled up per line. Only the callees
    # and cells need the calls themselves again (distinct counts do not roll up).
    daily = _daily(calls, cells, home_province, mid_latitude)
    rolled = daily.group_by(["operator", "caller"]).agg(
        calls_out=daily.n.sum(),
        active_days=daily.count(),
        other_operator_share=daily.other_operator.sum() / daily.n.sum(),
        other_province_share=daily.other_province.sum() / daily.n.sum(),
        mean_duration_s=daily.duration.sum() / daily.n.sum(),
        short_share=daily.short.sum() / daily.n.sum(),
        placed=daily.placed.sum(),
        sum_x=daily.sum_x.sum(),
        sum_y=daily.sum_y.sum(),
        sum_x2=daily.sum_x2.sum(),
        sum_y2=daily.sum_y2.sum(),
    )
    reach = calls.group_by(["operator", "caller"]).agg(
        callees=calls.callee.nunique(), cells=calls.cell_id.nunique()
    )
    outgoing = (
        rolled.inner_join(reach, ["operator", "caller"])
        .mutate(
            mean_x=ibis._.sum_x / ibis._.placed,
            mean_y=ibis._.sum_y / ibis._.placed,
            mean_x2=ibis._.sum_x2 / ibis._.placed,
            mean_y2=ibis._.sum_y2 / ibis._.placed,
        )
        .drop("placed", "sum_x", "sum_y", "sum_x2", "sum_y2")
    )
    incoming = calls.group_by(line=calls.callee).agg(calls_in=calls.count())
    texts = _sms_counts(sms)
    data_days = data.group_by(line=data.phone).agg(data_days=data.day.nunique())
    devices = _imei_lines(calls, gateway_tacs)
    cohorts = _cohort_days(daily)

    joined = (
        outgoing.left_join(incoming, outgoing.caller == incoming.line)
        .drop("line")
        .left_join(texts, outgoing.caller == texts.line)
        .drop("line")
        .left_join(data_days, outgoing.caller == data_days.line)
        .drop("line")
        .left_join(
            devices, [outgoing.operator == devices.operator, outgoing.caller == devices.line]
        )
        .drop("line", "operator_right")
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
    return joined.select(
        operator=joined.operator,
        line=joined.caller,
        calls_out=joined.calls_out,
        active_days=joined.active_days,
        calls_per_day=joined.calls_out / joined.active_days,
        calls_in=calls_in,
        out_in_ratio=joined.calls_out / (calls_in + 1),
        callees=joined.callees,
        novelty=joined.callees / joined.calls_out,
        other_operator_share=joined.other_operator_share,
        other_province_share=joined.other_province_share,
        mean_duration_s=joined.mean_duration_s,
        short_share=joined.short_share,
        cells=joined.cells,
        radius_km=ibis.greatest(variance, 0).sqrt().fill_null(0),
        sms=joined.sms.fill_null(0),
        data_days=joined.data_days.fill_null(0),
        imei_lines=joined.imei_lines.fill_null(0),
        gateway_tac=joined.gateway_tac.fill_null(False),
        cohort_days=joined.cohort_days.fill_null(0),
    )


def _with_position(calls: ir.Table, cells: ir.Table, mid_latitude: float) -> ir.Table:
    """Calls with their serving cell's position in km on a local plane (null if unknown).

    The plane's origin is near the region, so the squares summed for the radius of
    gyration stay small and their differences keep metre precision.
    """
    scale = _KM_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(mid_latitude))
    where = cells.select(
        cell_operator=cells.operator,
        cell_key=cells.cell_id,
        x_km=(cells.longitude - _ORIGIN_LONGITUDE) * scale,
        y_km=(cells.latitude - mid_latitude) * _KM_PER_DEGREE_LAT,
    )
    joined = calls.left_join(
        where, [calls.operator == where.cell_operator, calls.cell_id == where.cell_key]
    )
    return joined.drop("cell_operator", "cell_key")


def _sms_counts(sms: ir.Table) -> ir.Table:
    ends = sms.select(line=sms.sender).union(sms.select(line=sms.receiver), distinct=False)
    return ends.group_by("line").agg(sms=ends.count())


def _imei_lines(calls: ir.Table, gateway_tacs: ir.Table) -> ir.Table:
    """Per line: the most lines any of its IMEIs carried, and whether one is a gateway model."""
    pairs = (
        calls.filter(calls.imei.notnull())
        .select("operator", line=calls.caller, imei=calls.imei, tac=calls.imei_tac)
        .distinct()
    )
    per_imei = pairs.group_by("imei").agg(imei_lines=pairs.line.nunique())
    listed = gateway_tacs.select(listed_tac=gateway_tacs.tac).distinct()
    marked = (
        pairs.left_join(per_imei, pairs.imei == per_imei.imei)
        .drop("imei_right")
        .left_join(listed, pairs.tac == listed.listed_tac)
    )
    return marked.group_by(["operator", "line"]).agg(
        imei_lines=marked.imei_lines.max(),
        gateway_tac=marked.listed_tac.notnull().any(),
    )


def _daily(calls: ir.Table, cells: ir.Table, home_province: str, mid_latitude: float) -> ir.Table:
    """Per line and day: calls, their sums (durations, shares, positions), first and last."""
    located = _with_position(
        calls.select(
            "operator",
            "caller",
            "duration_s",
            "cell_id",
            day=calls.start_time.date(),
            t=calls.start_time.epoch_seconds(),
            other_operator=(
                calls.peer_operator.notnull() & (calls.peer_operator != calls.operator)
            ).cast("int64"),
            other_province=(
                calls.peer_province.notnull() & (calls.peer_province != home_province)
            ).cast("int64"),
        ),
        cells,
        mid_latitude,
    )
    x_km, y_km = located.x_km, located.y_km
    return located.group_by(["operator", "caller", "day"]).agg(
        n=located.count(),
        duration=located.duration_s.sum(),
        short=(located.duration_s < SHORT_CALL_S).cast("int64").sum(),
        other_operator=located.other_operator.sum(),
        other_province=located.other_province.sum(),
        placed=x_km.count(),
        sum_x=x_km.sum(),
        sum_y=y_km.sum(),
        sum_x2=(x_km * x_km).sum(),
        sum_y2=(y_km * y_km).sum(),
        first=located.t.min(),
        last=located.t.max(),
        cell=located.cell_id.min(),
    )


def _cohort_days(days: ir.Table) -> ir.Table:
    """Per line: days it switched on and off together with other lines at its cell."""
    busy = days.filter(days.n >= COHORT_MIN_CALLS)
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
            (busy["first"] - other.o_first).abs() <= COHORT_WINDOW_S,
            (busy["last"] - other.o_last).abs() <= COHORT_WINDOW_S,
        ],
    )
    peers = pairs.group_by([pairs.operator, pairs.caller, pairs.day]).agg(
        peers=pairs.o_line.nunique()
    )
    together = peers.filter(peers.peers >= COHORT_MIN_PEERS)
    return together.group_by(["operator", together.caller.name("line")]).agg(
        cohort_days=together.day.nunique()
    )
