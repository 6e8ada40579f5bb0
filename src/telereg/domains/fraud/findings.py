"""What a month's scan found, as the pages, the API and the CLI read it.

The suspect list (filtered and paged, an operator's user seeing its own lines), one
suspect line with its calls, cells, callees against the month before and linked lines,
the dashboard's counts, trend and rings, ID numbers over the card limit and cards whose
holder is likely not the user; and a suspect's clear number, for who may see it.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from sqlalchemy.orm import Session

from telereg.cases import service as cases
from telereg.core import engine, i18n, privacy
from telereg.core.errors import InputError, NotFoundError
from telereg.core.i18n import N_
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import cardbreak, casework, lookalike, scoring, service
from telereg.domains.fraud.features import FEATURES, originated
from telereg.ingest import lake


def visible_operator(principal: Principal) -> str | None:
    """None when the principal reads every operator's lines, else the one it may read."""
    if principal.can(Permission.DATA_READ_ALL):
        return None
    principal.require(Permission.DATA_READ_OWN)
    return principal.operator_code or "-"


#: Handsets a hand-over names for each line, most used first.
HANDSETS_SHOWN = 3


def line_whereabouts(
    session: Session, settings: Settings, lines: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """What the police need to find a line's device: per line (token → month), its handsets
    (IMEI tokens and their TACs, most calls first) and the cell it called from most, with
    the cell's position and city. Lines without call records in their month are left out.
    """
    found: dict[str, dict[str, Any]] = {}
    backend = engine.connect(settings)
    latest = max(lines.values(), default="")
    cell_files = service.cell_files(session, settings, latest) if latest else []
    cells = (
        service.lake_table(backend, cell_files, "cells")
        .select("operator", "cell_id", "longitude", "latitude", "city_code")
        .to_pandas()
        .drop_duplicates(["operator", "cell_id"], keep="last")
        if cell_files
        else pd.DataFrame(columns=["operator", "cell_id", "longitude", "latitude", "city_code"])
    )
    for period in sorted(set(lines.values())):
        files = service.lake_files(session, settings, "voice_cdr", period)
        wanted = [line for line, month in lines.items() if month == period]
        if not files or not wanted:
            continue
        calls = originated(service.lake_table(backend, files, "voice_cdr"))
        mine = calls.filter(calls.caller.isin(wanted))
        # One pass over the month: the few lines' calls per cell and handset, summed two ways.
        keys = ["caller", "operator", "cell_id", "imei", "imei_tac"]
        counted = mine.group_by(keys).agg(n=mine.count()).to_pandas()
        used = counted.groupby(["caller", "operator", "cell_id"], as_index=False, dropna=False)[
            "n"
        ].sum()
        handsets = (
            counted[counted["imei"].notna()]
            .groupby(["caller", "imei", "imei_tac"], as_index=False, dropna=False)["n"]
            .sum()
        )
        top = used.sort_values(["n", "cell_id"], ascending=[False, True]).drop_duplicates("caller")
        top = top.merge(cells, on=["operator", "cell_id"], how="left")
        for row in top.to_dict("records"):
            mine_handsets = handsets[handsets["caller"] == row["caller"]].sort_values(
                ["n", "imei"], ascending=[False, True]
            )[:HANDSETS_SHOWN]
            found[str(row["caller"])] = {
                "imeis": [str(i) for i in mine_handsets["imei"]],
                "device_tacs": sorted({str(t) for t in mine_handsets["imei_tac"].dropna()}),
                "main_cell": str(row["cell_id"]),
                "longitude": _plain(row.get("longitude")),
                "latitude": _plain(row.get("latitude")),
                "city_code": _plain(row.get("city_code")) or "",
            }
    return found


#: A card's own figures, shown on its page beside the line features.
CARD_FEATURES = ("first_day_away", "imei_identities")


def suspect_rows(settings: Settings, *, principal: Principal, period: str) -> pd.DataFrame:
    """SIM-box suspects and risky new cards of a scanned month, as the principal may see them."""
    only = visible_operator(principal)
    suspects = service.load_result(settings, period, "suspects").assign(kind="sim_box")
    cards = service.load_result(settings, period, "cards").assign(kind="card")
    cards = cards.rename(columns={"risk": "rule_score", "signals": "rules"})
    rows = service.stacked([suspects, cards])
    if only is not None:
        rows = rows[rows["operator"] == only]
    return rows


def _paged_lines(settings: Settings, *, principal: Principal, period: str) -> pd.DataFrame:
    """The lines of ``period`` that have a page, as the principal may see them: suspects,
    risky new cards, and cards whose holder is likely not the user (an identity case's
    line; its signals stand as its rules, their count as its score)."""
    rows = suspect_rows(settings, principal=principal, period=period)
    holders = _later_result(settings, period, "identity")
    if not len(holders):
        return rows
    only = visible_operator(principal)
    if only is not None:
        holders = holders[holders["operator"] == only]
    holders = holders[~holders["line"].isin(rows["line"])]
    holders = holders.assign(
        kind="identity", rule_score=[len(s) for s in holders["signals"]], rules=holders["signals"]
    )
    return service.stacked([rows, holders])


def suspect_row(settings: Settings, *, principal: Principal, period: str, line: str) -> pd.Series:
    """The suspect ``line`` of ``period`` as the principal may see it; NotFoundError if none."""
    rows = _paged_lines(settings, principal=principal, period=period)
    found = rows[rows["line"] == line]
    if found.empty:
        raise NotFoundError(
            N_("line {line}… is not a suspect of {period}").format(line=line[:8], period=period)
        )
    return found.iloc[0]


def reveal_line(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    period: str,
    line: str,
    reason: str,
    case_id: int | None = None,
) -> str:
    """The clear number of a suspect line the principal may see, audited with the reason
    (and ``case_id``, a case about the line, which the case's history then shows); a refusal
    (the permission, a line that is no suspect of theirs, a case about another …) is audited
    too."""
    context = {"for": "fraud suspect page", "period": period}
    named = [f"token:{line}"] + ([f"case:{case_id}"] if case_id is not None else [])
    with privacy.refusal_audited(
        session, principal=principal, objects=named, reason=reason, context=context
    ):
        principal.require(Permission.PRIVACY_REIDENTIFY)  # (before the lake is read for it)
        rows = _paged_lines(settings, principal=principal, period=period)
        if not (rows["line"] == line).any():
            raise NotFoundError(
                N_("line {line}… is not a suspect of {period}").format(line=line[:8], period=period)
            )
        if case_id is not None:
            cases.case_about(session, principal=principal, case_id=case_id, value=line)
    return privacy.reidentify(
        session,
        settings=settings,
        principal=principal,
        token=line,
        reason=reason,
        context=context,
        case_id=case_id,
    )


#: Calls a suspect's page draws one by one (a month of a busy gateway port is a few thousand).
TIMELINE_CALLS = 5000


def _every_day(by_day: pd.DataFrame, period: str) -> pd.DataFrame:
    """Calls per day for every day of the month, a quiet day as 0: a chart that left it out
    would put the days on either side of it next to each other."""
    days = pd.date_range(f"{period}-01", periods=pd.Period(period).days_in_month, freq="D")
    every = pd.DataFrame({"day": days.strftime("%Y-%m-%d")})
    filled = every.merge(by_day, on="day", how="left")
    filled[["calls", "short"]] = filled[["calls", "short"]].fillna(0).astype(int)
    return filled


def _every_hour(by_hour: pd.DataFrame) -> pd.DataFrame:
    """Calls per hour of the day for all 24 hours, a quiet hour as 0."""
    every = pd.DataFrame({"hour": range(24)})
    filled = every.merge(by_hour.astype({"hour": int}), on="hour", how="left")
    filled["calls"] = filled["calls"].fillna(0).astype(int)
    return filled


def line_detail(
    session: Session, *, settings: Settings, principal: Principal, period: str, line: str
) -> dict[str, Any]:
    """One suspect line: features, why, calls per day and hour, cells on a map, linked lines."""
    row = suspect_row(settings, principal=principal, period=period, line=line)
    backend = engine.connect(settings)
    calls = originated(
        service.lake_table(
            backend, service.lake_files(session, settings, "voice_cdr", period), "voice_cdr"
        )
    )
    cells = service.lake_table(backend, service.cell_files(session, settings, period), "cells")
    of_line = calls.filter((calls.caller == line) & (calls.operator == row["operator"]))
    where = cells.filter(cells.operator == row["operator"]).select(
        "cell_id", "longitude", "latitude", "city_code"
    )
    # The month's files are read once: a line's calls are few, and five figures read them.
    # (Kept by the engine, not as an Arrow table in Python: DuckDB scanning Python objects
    # needs the GIL, and concurrent requests doing so deadlocked in a registration.)
    with engine.computed(of_line.select("start_time", "duration_s", "cell_id", "callee")) as mine:
        by_day = (
            mine.group_by(day=mine.start_time.date().cast("string"))
            .agg(calls=mine.count(), short=(mine.duration_s < 30).sum())
            .order_by("day")
            .to_pandas()
        )
        by_hour = (
            mine.group_by(hour=mine.start_time.hour())
            .agg(calls=mine.count())
            .order_by("hour")
            .to_pandas()
        )
        by_day, by_hour = _every_day(by_day, period), _every_hour(by_hour)
        # Each call, when and how long (to the first TIMELINE_CALLS): a gateway's calls come
        # in regular bursts of short calls, a person's scattered.
        timeline = (
            mine.select(at=mine.start_time.cast("string"), seconds=mine.duration_s)
            .order_by("at")
            .limit(TIMELINE_CALLS)
            .to_pandas()
        )
        used = mine.group_by("cell_id").agg(calls=mine.count())
        places = (
            used.inner_join(where, "cell_id").order_by(ibis.desc("calls")).limit(200).to_pandas()
        )
        history = _callee_history(session, settings, backend, mine, row["operator"], line, period)
    nodes, edges = _ring_graph(settings, period, visible_operator(principal))
    linked = edges[(edges["a"] == line) | (edges["b"] == line)]
    neighbours = set(linked["a"]) | set(linked["b"]) | {line}
    shown = {"card": (*FEATURES, *CARD_FEATURES), "identity": CARD_FEATURES}
    features = {
        k: _plain(row[k]) for k in shown.get(row["kind"], FEATURES) if k in row and pd.notna(row[k])
    }
    rules = _texts(row["rules"])
    if row["kind"] in ("card", "identity"):
        # the figures each of the card's signals looks at
        flagged = sorted({f for r in rules for f in cardbreak.SIGNAL_FEATURES.get(r, ())})
    else:
        # the features the rules met look at ("static" looks at radius_km …)
        flagged = sorted({rule.feature for rule in scoring.RULES if rule.name in rules})
    return {
        "period": period,
        "line": line,
        "kind": row["kind"],
        "operator": row["operator"],
        "score": float(row["rule_score"]),
        "rules": rules,
        "flagged": flagged,
        "probability": _plain(row.get("probability")),
        "explanation": _texts(row.get("explanation")),
        "features": features,
        "by_day": by_day.to_dict("records"),
        "by_hour": by_hour.to_dict("records"),
        "timeline": {
            "calls": [
                [at, seconds]
                for at, seconds in zip(
                    timeline["at"].tolist(), timeline["seconds"].tolist(), strict=True
                )
            ],
            "shown": len(timeline),
            "total": int(by_day["calls"].sum()),
        },
        "cells": places.to_dict("records"),
        "history": history,
        "graph": {
            "nodes": nodes[nodes["line"].isin(neighbours)].to_dict("records"),
            "edges": linked.to_dict("records"),
        },
        # (for who manages cases; empty for others)
        "cases": [
            {
                "id": c.id,
                "status": c.status,
                "type": c.subject.get("type", ""),
                "period": c.subject.get("period", ""),
            }
            for c in casework.line_cases(session, principal=principal, line=line)
        ],
    }


def _callee_history(
    session: Session,
    settings: Settings,
    backend: Any,
    mine: ir.Table,
    operator: str,
    line: str,
    period: str,
) -> dict[str, Any]:
    """The line's callees of ``period`` against the month before: how many it had called
    then too. A SIM box or a fraud card calls new numbers month after month; a person calls
    many of the same ones. ``available`` is false when the lake holds no calls of the
    month before from the line's operator (nothing to compare with: "no calls then" would
    be a guess)."""
    before = service.previous_period(period)
    found = lake.current_files(
        session, settings, "voice_cdr", operators=[operator], periods=[before]
    )
    files = [str(f) for f in found]
    if not files:
        return {"previous_period": before, "available": False}
    earlier_calls = originated(service.lake_table(backend, files, "voice_cdr"))
    of_line = earlier_calls.filter(
        (earlier_calls.caller == line) & (earlier_calls.operator == operator)
    )
    now = mine.select("callee").filter(lambda t: t.callee.notnull()).distinct()
    callees = int(now.count().to_pyarrow().as_py())
    # The month's files are read once, as for ``mine``: the line's calls then are few.
    with engine.computed(of_line.select(known=of_line.callee)) as earlier:
        called_before = earlier.filter(earlier.known.notnull())
        matched = now.semi_join(called_before, now.callee == called_before.known)
        again = int(matched.count().to_pyarrow().as_py())
        calls_before = int(earlier.count().to_pyarrow().as_py())
    return {
        "previous_period": before,
        "available": True,
        "calls_before": calls_before,
        "callees": callees,
        "called_before": again,
        "new_share": (callees - again) / callees if callees else None,
    }


def _texts(value: Any) -> list[str]:
    """A stored list column as strings (missing for rows of the other kind: empty)."""
    if value is None or isinstance(value, float):
        return []
    return [str(v) for v in value]


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _ring_graph(
    settings: Settings, period: str, only: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ring graph's nodes and edges; for one operator, its lines and the links among them."""
    nodes = service.load_result(settings, period, "ring_nodes")
    edges = service.load_result(settings, period, "ring_edges")
    if only is not None:
        nodes = nodes[nodes["operator"] == only]
        edges = edges[edges["a"].isin(nodes["line"]) & edges["b"].isin(nodes["line"])]
    return nodes, edges


def _own_counts(settings: Settings, period: str, only: str) -> dict[str, int]:
    """A month's counts as one operator sees them: its suspects, cards and ID numbers."""
    counts = dict(service.load_summary(settings, period).get("counts", {}))
    for kind, name in (("sim_box", "suspects"), ("card", "cards")):
        found = service.load_result(settings, period, name)
        counts[kind] = int((found["operator"] == only).sum()) if len(found) else 0
    over = service.load_result(settings, period, "over_limit")
    counts["over_limit"] = (
        int(over.loc[over["operator"] == only, "id_number"].nunique()) if len(over) else 0
    )
    holders = _later_result(settings, period, "identity")
    counts["identity"] = int((holders["operator"] == only).sum())
    return counts


def _own_rings(nodes: pd.DataFrame) -> list[dict[str, Any]]:
    """Ring summaries from one operator's ring nodes (links to other operators left out)."""
    rings = []
    for community, members in nodes.groupby("community"):
        if len(members) > 1:
            rings.append(
                {
                    "community": int(community),
                    "size": len(members),
                    "kinds": sorted(members["kind"].unique()),
                    "operators": sorted(members["operator"].unique()),
                }
            )
    return sorted(rings, key=lambda r: -r["size"])


def brand_names() -> dict[str, str]:
    """The protected brands' names in the reader's language, by code."""
    chinese = i18n.current_language.get() == "zh_CN"
    return {p.name: p.name_zh if chinese else p.name_en for p in lookalike.load_protected()}


def dashboard(
    session: Session, *, settings: Settings, principal: Principal, period: str
) -> dict[str, Any]:
    """Counts by kind, city and operator, the trend over scanned months, top outlets, rings.

    An operator's user sees its own lines only: counts, trend, outlets and rings are
    those of its lines (the domains are not an operator's data and are shown to all).
    """
    only = visible_operator(principal)
    rows = suspect_rows(settings, principal=principal, period=period)
    shown_domains = service.load_result(settings, period, "domains").head(50)
    brands = brand_names()
    decisions = casework.domain_decisions(session, [str(d) for d in shown_domains["domain"]])

    def counts_of(month: str) -> dict[str, int]:
        if only is None:
            return dict(service.load_summary(settings, month).get("counts", {}))
        return _own_counts(settings, month, only)

    by_month = {month: counts_of(month) for month in sorted(service.scanned_periods(settings))}
    trend = [{"period": month, **counts} for month, counts in by_month.items()]
    outlets = service.load_result(settings, period, "outlets")
    nodes, edges = _ring_graph(settings, period, only)
    if only is not None:
        outlets = outlets[outlets["operator"] == only]
    summary = service.load_summary(settings, period)

    def tally(column: str) -> list[dict[str, Any]]:
        if rows.empty:
            return []
        counted = rows.groupby([column, "kind"]).size().rename("n").reset_index()
        return [{k: _plain(v) for k, v in r.items()} for r in counted.to_dict("records")]

    return {
        "period": period,
        "periods": service.scanned_periods(settings),
        "model": summary.get("model", ""),
        "lines": summary.get("lines", 0)
        if only is None
        else summary.get("lines_by_operator", {}).get(only, 0),
        "counts": by_month[period] if period in by_month else counts_of(period),
        "by_operator": tally("operator"),
        "by_city": tally("home_city"),
        "trend": trend,
        "outlets": outlets.head(20).to_dict("records"),
        "domains": [
            {
                "domain": d["domain"],
                "score": float(d["score"]),
                "level": d["level"],
                "brand": d["brand"],
                # the organisation's name in the reader's language (中国工商银行 for icbc)
                "brand_name": brands.get(str(d["brand"] or ""), d["brand"]),
                "query_count": int(d["query_count"]),
                "reasons": [str(r["code"]) for r in d["reasons"]],
                "decision": decisions.get(d["domain"], {"status": "", "outcome": ""}),
            }
            for d in shown_domains.to_dict("records")
        ],
        "rings": summary.get("rings", []) if only is None else _own_rings(nodes),
        "graph": {
            "nodes": nodes.to_dict("records"),
            "edges": edges.to_dict("records"),
        },
    }


#: Kinds of suspect lines: SIM-box lines and risky new cards (card-breaking).
SUSPECT_KINDS = ("sim_box", "card")


def suspect_list(
    settings: Settings,
    *,
    principal: Principal,
    period: str,
    kind: str | None = None,
    operator: str | None = None,
    city: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of a month's suspects, highest score first, narrowed by kind, operator, city.

    ``total`` counts every suspect that matches, not just the page; ``limit=None`` gives
    all of them from ``offset`` on.
    """
    if kind is not None and kind not in SUSPECT_KINDS:
        raise InputError(
            N_("kind {kind} is not one of: {kinds}").format(
                kind=repr(kind), kinds=", ".join(SUSPECT_KINDS)
            )
        )
    rows = suspect_rows(settings, principal=principal, period=period)
    if kind is not None:
        rows = rows[rows["kind"] == kind]
    if operator is not None:
        rows = rows[rows["operator"] == operator]
    if city is not None:
        rows = rows[rows["home_city"].fillna("") == city]
    rows = rows.sort_values(
        ["rule_score", "calls_per_day", "line"], ascending=[False, False, True], kind="stable"
    )
    page = _paged(rows, limit, offset)
    return {
        "period": period,
        "total": len(rows),
        "offset": offset,
        "limit": limit,
        "suspects": [
            {
                "line": r["line"],
                "kind": r["kind"],
                "operator": r["operator"],
                "home_city": _plain(r.get("home_city")) or "",
                "score": float(r["rule_score"]),
                "rules": _texts(r["rules"]),
                "calls_per_day": round(float(r["calls_per_day"]), 1),
            }
            for r in page.to_dict("records")
        ],
    }


def _operator_rows(
    settings: Settings, principal: Principal, period: str, name: str, operator: str | None
) -> pd.DataFrame:
    """A stored result of the scan as the principal may see it, narrowed to ``operator``."""
    only = visible_operator(principal)
    rows = _later_result(settings, period, name)
    for wanted in (only, operator):
        if wanted is not None:
            rows = rows[rows["operator"] == wanted]
    return rows


def _later_result(settings: Settings, period: str, name: str) -> pd.DataFrame:
    """A result that scans by earlier versions did not write: empty for those (a month not
    scanned at all is still not found)."""
    if not (service.results_dir(settings, period) / f"{name}.parquet").exists():
        service.load_summary(settings, period)
        return pd.DataFrame(columns=["operator"])
    return service.load_result(settings, period, name)


def _paged(rows: pd.DataFrame, limit: int | None, offset: int) -> pd.DataFrame:
    """Rows from ``offset`` on, at most ``limit`` of them (all of them for ``None``)."""
    return rows.iloc[offset:] if limit is None else rows.iloc[offset : offset + limit]


def ids_over_limit(
    settings: Settings,
    *,
    principal: Principal,
    period: str,
    operator: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """ID numbers holding more active cards at one operator than the rules allow, most first.

    One row per ID number and operator over the limit, with the ID's active cards at all
    operators beside it. ID numbers are tokens. An operator's user sees its own rows.
    """
    rows = _operator_rows(settings, principal, period, "over_limit", operator)
    if len(rows):
        rows = rows.sort_values(
            ["cards", "all_operators", "id_number"], ascending=[False, False, True], kind="stable"
        )
    page = _paged(rows, limit, offset)
    return {
        "period": period,
        "limit_per_operator": int(settings.fraud_cards_per_operator),
        "total": len(rows),
        "offset": offset,
        "ids": [
            {
                "id_number": str(r["id_number"]),
                "operator": str(r["operator"]),
                "cards": int(r["cards"]),
                "all_operators": int(r["all_operators"]),
            }
            for r in page.to_dict("records")
        ],
    }


def identity_list(
    settings: Settings,
    *,
    principal: Principal,
    period: str,
    operator: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Cards whose registered holder is likely not their user (``cardbreak.identity_signals``),
    in its order: both signals, then new cards, then most ID numbers on the handset. Lines
    and ID numbers are tokens; an operator's user sees its own cards. A scan from before
    this list gives an empty one."""
    rows = _operator_rows(settings, principal, period, "identity", operator)
    page = _paged(rows, limit, offset)
    return {
        "period": period,
        "total": len(rows),
        "offset": offset,
        "cards": [
            {
                "line": str(r["line"]),
                "operator": str(r["operator"]),
                "id_number": str(r["id_number"]),
                "home_city": _plain(r.get("home_city")) or "",
                "activated_at": str(r["activated_at"])[:10],
                "imei_identities": int(r["imei_identities"]),
                "signals": _texts(r["signals"]),
            }
            for r in page.to_dict("records")
        ],
    }
