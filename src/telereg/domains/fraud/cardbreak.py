"""Card-breaking (断卡) risk: new cards that call like fraud, the outlets that sold them,
ID numbers holding too many cards, and cards whose registered holder is not the user.

The per-line facts come from the engine (:func:`line_identity`); the rules over
them are plain table logic on a few thousand rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from telereg.domains.fraud.parameters import CARD_THRESHOLDS

#: A card activated this many days before the period's end or later is new.
NEW_CARD_DAYS = 30
#: Cards one person may hold at one operator (the MIIT real-name rule).
CARDS_PER_OPERATOR = 5
#: A handset used by cards of this many ID numbers or more is a signal that a card's holder
#: is not its user (a family's shared phone shows it too: the lists show how many).
HANDSET_IDENTITIES = 2


#: What each card signal looks at: the figures a card's page marks when it has the signal.
SIGNAL_FEATURES = {
    "abnormal_calling": ("calls_per_day", "novelty", "other_province_share", "short_share"),
    "away_from_day_one": ("first_day_away",),
    "shared_handset": ("imei_identities",),
}


def line_identity(calls: ir.Table, cells: ir.Table, subscriptions: ir.Table) -> ir.Table:
    """Per line: whether its first day's calls were all outside its registration city,
    and the most ID numbers any of its handsets (IMEIs) served."""
    calls = calls.mutate(day=calls.start_time.date())
    first = calls.group_by(["operator", "caller"]).agg(first_day=calls.day.min())
    place = cells.select(c_operator=cells.operator, c_cell=cells.cell_id, city=cells.city_code)
    subs = subscriptions.select(s_phone=subscriptions.phone, home_city=subscriptions.home_city)
    day_one = (
        calls.inner_join(first, [calls.operator == first.operator, calls.caller == first.caller])
        .filter(lambda t: t.day == t.first_day)
        .left_join(place, [ibis._.operator == place.c_operator, ibis._.cell_id == place.c_cell])
        .left_join(subs, ibis._.caller == subs.s_phone)
    )
    away = day_one.group_by(["operator", "caller"]).agg(
        first_day_away=(day_one.city.notnull() & (day_one.city != day_one.home_city)).all()
        & day_one.home_city.notnull().any()
    )
    owners = subscriptions.select(o_phone=subscriptions.phone, id_number=subscriptions.id_number)
    handsets = calls.filter(calls.imei.notnull()).select("operator", "caller", "imei").distinct()
    holders = handsets.inner_join(owners, handsets.caller == owners.o_phone)
    per_imei = holders.group_by("imei").agg(identities=holders.id_number.nunique())
    shared = (
        handsets.inner_join(per_imei, handsets.imei == per_imei.imei)
        .group_by(["operator", "caller"])
        .agg(imei_identities=ibis._.identities.max())
    )
    joined = away.left_join(
        shared, [away.operator == shared.operator, away.caller == shared.caller]
    )
    return joined.select(
        operator=joined.operator,
        line=joined.caller,
        first_day_away=joined.first_day_away,
        imei_identities=joined.imei_identities.fill_null(0),
    )


def new_card_risk(
    features: pd.DataFrame,
    identity: pd.DataFrame,
    subscriptions: pd.DataFrame,
    *,
    period_end: datetime,
    thresholds: dict[str, float],
) -> pd.DataFrame:
    """New cards with abnormal calling and an identity signal, with the signals named.

    Abnormal calling: at least ``card_calls_per_day`` calls a day to mostly new
    numbers (``card_novelty``), with many in other provinces
    (``card_other_province_share``) or many short ones (``card_short_share``).
    Identity signals (the registered holder is likely not the user): used away from
    the registration city from the first day, or on a handset that cards of other ID
    numbers use. Either kind alone is common among honest new cards (a salesperson's
    first week, a family's shared phone); a card is flagged when it shows both.
    """
    new = _new_cards(subscriptions, period_end)
    merged = new.rename(columns={"phone": "line"}).merge(
        features, on=["operator", "line"], how="inner"
    )
    merged = merged.merge(identity, on=["operator", "line"], how="left")
    limit = {**CARD_THRESHOLDS, **thresholds}
    calling = (
        (merged["calls_per_day"] >= limit["card_calls_per_day"])
        & (merged["novelty"] >= limit["card_novelty"])
        & (
            (merged["other_province_share"] >= limit["card_other_province_share"])
            | (merged["short_share"] >= limit["card_short_share"])
        )
    )
    away = merged["first_day_away"].fillna(False).astype(bool)
    shared = merged["imei_identities"].fillna(0) >= HANDSET_IDENTITIES
    signals = pd.DataFrame(
        {"abnormal_calling": calling, "away_from_day_one": away, "shared_handset": shared}
    )
    merged["signals"] = [list(signals.columns[row]) for row in signals.to_numpy()]
    merged["risk"] = signals.sum(axis=1)
    flagged = merged[calling & (away | shared)]
    columns = [
        "operator",
        "line",
        "id_number",
        "outlet_id",
        "activated_at",
        "home_city",
        "calls_per_day",
        "novelty",
        "other_province_share",
        "short_share",
        "first_day_away",
        "imei_identities",
        "signals",
        "risk",
    ]
    return flagged[columns].sort_values(["risk", "calls_per_day"], ascending=False)


def identity_signals(
    identity: pd.DataFrame, subscriptions: pd.DataFrame, *, period_end: datetime
) -> pd.DataFrame:
    """Cards whose registered holder is likely not their user (实名不实), however they call.

    A new card used only outside its registration city on its first day of calls (bought
    with someone's ID and carried away), or any card on a handset that cards of
    ``HANDSET_IDENTITIES`` or more ID numbers use (one phone passing cards of several
    people). Each row names its signals; cards with both come first, then new cards, then
    those whose handset carries most ID numbers. The list is for review: a family's shared
    phone shows the second signal too. :func:`new_card_risk` flags the new cards that also call
    abnormally.
    """
    subs = (
        subscriptions[["phone", "operator", "id_number", "home_city", "activated_at"]]
        .rename(columns={"phone": "line"})
        .drop_duplicates(["operator", "line"], keep="last")
    )
    merged = identity.merge(subs, on=["operator", "line"], how="inner")
    since = period_end - timedelta(days=NEW_CARD_DAYS)
    new = pd.to_datetime(merged["activated_at"]) >= since
    away = merged["first_day_away"].fillna(False).astype(bool) & new
    shared = merged["imei_identities"].fillna(0) >= HANDSET_IDENTITIES
    hit = away | shared
    flagged = merged[hit].copy()
    flagged["signals"] = [
        [name for name, on in (("away_from_day_one", a), ("shared_handset", h)) if on]
        for a, h in zip(away[hit], shared[hit], strict=True)
    ]
    flagged["imei_identities"] = flagged["imei_identities"].fillna(0).astype(int)
    columns = [
        "operator",
        "line",
        "id_number",
        "home_city",
        "activated_at",
        "first_day_away",
        "imei_identities",
        "signals",
    ]
    flagged["_both"] = flagged["signals"].map(len)
    # Of the cards with one signal, new ones first: an old card on a shared handset is most
    # often a family's phone.
    flagged["_new"] = new[hit]
    ordered = flagged.sort_values(
        ["_both", "_new", "imei_identities", "line"],
        ascending=[False, False, False, True],
        kind="stable",
    )
    return ordered[columns]


def flagged_sales(
    cards: pd.DataFrame,
    sim_boxes: pd.DataFrame,
    subscriptions: pd.DataFrame,
    *,
    period_end: datetime,
) -> pd.DataFrame:
    """The flagged new cards and the outlets that sold them: line, operator, outlet_id, kind.

    ``cards``: :func:`new_card_risk`'s cards (kind ``card``); ``sim_boxes``: lines
    suspected of working in a SIM box (line, operator), of which the new cards count too
    (kind ``sim_box``): gateway cards bought in bulk are an outlet's risk as much as
    cards sold to a fraud ring. A line in both counts once, as a SIM box.
    """
    new = _new_cards(subscriptions, period_end)
    boxed = new.rename(columns={"phone": "line"}).merge(
        sim_boxes[["line", "operator"]].drop_duplicates(), on=["line", "operator"]
    )
    sold = pd.concat(
        [
            boxed[["line", "operator", "outlet_id"]].assign(kind="sim_box"),
            cards[["line", "operator", "outlet_id"]].assign(kind="card"),
        ],
        ignore_index=True,
    )
    return sold.drop_duplicates(["operator", "line"]).reset_index(drop=True)


def outlets(
    flagged: pd.DataFrame, subscriptions: pd.DataFrame, *, period_end: datetime
) -> pd.DataFrame:
    """Sales outlets ranked by the flagged new cards they sold, with their share of new cards.

    ``flagged``: :func:`flagged_sales`; ``sim_box_cards`` says how many of an outlet's
    flagged cards work in SIM boxes.
    """
    new = _new_cards(subscriptions, period_end)
    keys = ["operator", "outlet_id"]
    sold = new.groupby(keys).size().rename("new_cards")
    bad = flagged.groupby(keys).size().rename("flagged_cards")
    boxed = flagged[flagged["kind"] == "sim_box"].groupby(keys).size().rename("sim_box_cards")
    table = pd.concat([sold, bad, boxed], axis=1).fillna(0).astype(int).reset_index()
    table = table[table["flagged_cards"] > 0]
    table["flagged_share"] = (table["flagged_cards"] / table["new_cards"].clip(lower=1)).round(3)
    return table.sort_values(["flagged_cards", "flagged_share"], ascending=False)


def _new_cards(subscriptions: pd.DataFrame, period_end: datetime) -> pd.DataFrame:
    since = period_end - timedelta(days=NEW_CARD_DAYS)
    return subscriptions[pd.to_datetime(subscriptions["activated_at"]) >= since]


def over_limit(subscriptions: pd.DataFrame, *, limit: int = CARDS_PER_OPERATOR) -> pd.DataFrame:
    """ID numbers with more active cards at one operator than allowed; totals across operators."""
    live = subscriptions[subscriptions["status"] == "active"]
    per_operator = live.groupby(["id_number", "operator"]).size().rename("cards").reset_index()
    totals = per_operator.groupby("id_number")["cards"].sum().rename("all_operators")
    over = per_operator[per_operator["cards"] > limit].merge(totals, on="id_number")
    return over.sort_values("cards", ascending=False).reset_index(drop=True)


def with_their_cards(over: pd.DataFrame, subscriptions: pd.DataFrame) -> pd.DataFrame:
    """``over`` (:func:`over_limit`) with ``lines``: each ID number's active cards at that
    operator, oldest sale first, so that whoever orders the excess cancelled can name them."""
    if not len(over):
        return over.assign(lines=pd.Series([], dtype=object))
    live = subscriptions[subscriptions["status"] == "active"]
    ordered = live.sort_values(["activated_at", "phone"], kind="stable")
    lines = ordered.groupby(["id_number", "operator"])["phone"].agg(list).rename("lines")
    return over.merge(lines.reset_index(), on=["id_number", "operator"], how="left")


def worth_a_case(holders: pd.DataFrame, *, period_end: datetime) -> pd.DataFrame:
    """The cards of :func:`identity_signals` that become cases: those sold within
    ``NEW_CARD_DAYS`` of the period's end. An older card on a handset that carries other
    people's cards is most often a family's phone; it stays on the list for review."""
    since = period_end - timedelta(days=NEW_CARD_DAYS)
    return holders[pd.to_datetime(holders["activated_at"]) >= since]
