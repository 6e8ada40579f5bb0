"""Precision and recall of a stored scan against the scenario's ground truth.

The truth holds clear numbers (it is never ingested); they are pseudonymised
with the installation's key to compare with the scan's tokens.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telereg.core.privacy import Pseudonymiser
from telereg.core.settings import Settings
from telereg.domains.fraud.service import load_result
from telereg.reference.lists import gateway_tacs


@dataclass(frozen=True)
class Score:
    found: int
    planted: int
    hits: int

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.planted if self.planted else 0.0


def _score(found: set[str], planted: set[str]) -> Score:
    return Score(len(found), len(planted), len(found & planted))


def evaluate(settings: Settings, truth: dict[str, Any], period: str) -> dict[str, Score]:
    """Per pattern: what the scan of ``period`` found against what was planted."""
    token = Pseudonymiser(settings.secret("pseudonym_key")).token
    fraud = truth["fraud"]
    sim_lines = {token(n) for g in fraud["sim_boxes"] if period in g["periods"] for n in g["lines"]}
    # (a truth written before rings named their months: every ring, as then)
    rings = [r for r in fraud["rings"] if period in r.get("periods", [period])]
    ring_lines = {token(n) for r in rings for n in r["lines"]}
    suspects = load_result(settings, period, "suspects")
    cards = load_result(settings, period, "cards")
    outlets = load_result(settings, period, "outlets")
    over = load_result(settings, period, "over_limit")
    domains = load_result(settings, period, "domains")
    # Lines that made no call this month cannot be found from calls; they are not counted.
    scores = {
        "sim_box (rules or model)": _score(set(suspects["line"]), sim_lines),
        "sim_box (rules)": _score(set(suspects[suspects["rule_suspect"]]["line"]), sim_lines),
        "card-breaking cards": _score(set(cards["line"]), ring_lines),
        "card-breaking outlets": _score(
            # the cards of rings, not those working in SIM boxes
            set(outlets[outlets["flagged_cards"] - outlets["sim_box_cards"] >= 2]["outlet_id"]),
            {o for r in rings for o in r["outlets"]},
        ),
        "ID numbers over the limit": _score(
            set(over["id_number"]),
            # (a truth written before they named their months: every one, as then)
            {
                token(h["id_number"])
                for h in fraud["over_limit_ids"]
                if period in h.get("periods", [period])
            },
        ),
    }
    # Cards whose holder is not their user: the rings' (bought on others' IDs) and the
    # borrowed identities, which call like anyone (a truth written before they were
    # planted has none: the pattern is then left out). Family handsets are false positives.
    borrowed = {
        token(b["line"]) for b in fraud.get("borrowed_identities", []) if period in b["periods"]
    }
    if borrowed:
        holders = set(load_result(settings, period, "identity")["line"])
        scores["holder is not the user (identity signals)"] = _score(holders, ring_lines | borrowed)
        scores["borrowed identities, normal calling (recall only)"] = _score(
            holders & borrowed, borrowed
        )
    # Outlets that sold a gateway its cards within the month (gateways that went live).
    box_outlets = {
        o for g in fraud["sim_boxes"] if g.get("cards_bought_in") == period for o in g["outlets"]
    }
    if box_outlets:
        scores["SIM-box outlets"] = _score(
            set(outlets[outlets["sim_box_cards"] >= 2]["outlet_id"]), box_outlets
        )
    if "model_suspect" in suspects and suspects["model_suspect"].any():
        by_model = set(suspects[suspects["model_suspect"]]["line"])
        scores["sim_box (model)"] = _score(by_model, sim_lines)
        # The gateways that began this month: none of their cards is in the history the
        # model learned from, so this is its recall on gateways it has never seen. Lines of
        # the older gateways are left out of what it found.
        new = [g for g in fraud["sim_boxes"] if g["periods"][0] == period]
        if new:
            new_lines = {token(n) for g in new for n in g["lines"]}
            scores["sim_box (model, new gateways)"] = _score(
                by_model - (sim_lines - new_lines), new_lines
            )
    if len(domains):
        # Only the lookalikes that resolvers saw in this month can be found in it.
        planted = set(fraud.get("lookalike_domains", [])) & set(domains["domain"])
        scores["lookalike domains (high)"] = _score(
            set(domains[domains["level"] == "high"]["domain"]), planted
        )
    return scores


def recall_by_gateway(settings: Settings, truth: dict[str, Any], period: str) -> dict[str, Score]:
    """SIM-box recall (rules or model) per kind of gateway: how it behaves (static, moving,
    throttled to look like people) and whether its model's TAC is on the gateway list.

    Recall only: a suspect that is no planted line belongs to no kind of gateway, so each
    score's ``found`` is the planted lines of that kind that were found.
    """
    token = Pseudonymiser(settings.secret("pseudonym_key")).token
    listed = {t.tac for t in gateway_tacs(settings.fraud_gateway_tacs_file)}
    found = set(load_result(settings, period, "suspects")["line"])
    groups: dict[str, set[str]] = {}
    for gateway in truth["fraud"]["sim_boxes"]:
        if period not in gateway["periods"]:
            continue
        lines = {token(n) for n in gateway["lines"]}
        model = "listed model" if gateway["tac"] in listed else "unlisted model"
        for group in (f"{gateway['mode']} gateways", f"{model} gateways"):
            groups.setdefault(group, set()).update(lines)
    return {group: _score(found & lines, lines) for group, lines in sorted(groups.items())}


@dataclass(frozen=True)
class Reliability:
    """How the model's probabilities compare with what was planted, in one band of them."""

    low: float
    high: float
    lines: int
    mean_probability: float
    fraud_share: float


#: The bands of probability the reliability table is cut into.
BANDS = (0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0)


def calibration(
    settings: Settings, truth: dict[str, Any], period: str, scored: pd.DataFrame
) -> tuple[float, list[Reliability]] | None:
    """The Brier score of the model's probabilities over every scored line, and a
    reliability table, against the planted fraud lines (SIM-box cards and ring cards: what
    the police confirm, and so what the model learns). ``None`` without a model.
    """
    probability = scored["probability"].to_numpy(dtype=float)
    if np.isnan(probability).all():
        return None
    actual = scored["line"].isin(_planted_groups(settings, truth, period)).to_numpy(dtype=float)
    brier = float(np.mean((probability - actual) ** 2))
    bands = []
    for low, high in itertools.pairwise(BANDS):
        inside = (probability >= low) & ((probability < high) | (high == 1.0))
        if inside.any():
            bands.append(
                Reliability(
                    low,
                    high,
                    int(inside.sum()),
                    float(probability[inside].mean()),
                    float(actual[inside].mean()),
                )
            )
    return brier, bands


@dataclass(frozen=True)
class RingQuality:
    """How the rings' communities match the planted groups (each gateway, each ring)."""

    communities: int
    #: per community of two or more lines, the share of its lines from its largest planted
    #: group, weighted by its size
    purity: float
    #: per planted group with two or more lines in the graph, the share of them in the
    #: group's largest community, weighted by its size
    completeness: float
    #: communities that join lines of two or more planted groups
    mixed: int


def _planted_groups(settings: Settings, truth: dict[str, Any], period: str) -> dict[str, str]:
    """The planted fraud lines of ``period`` (tokens) → their group: a gateway or a ring."""
    token = Pseudonymiser(settings.secret("pseudonym_key")).token
    fraud = truth["fraud"]
    group_of: dict[str, str] = {}
    for i, gateway in enumerate(fraud["sim_boxes"]):
        if period in gateway["periods"]:
            group_of.update({token(n): f"gateway {i}" for n in gateway["lines"]})
    for i, ring in enumerate(fraud["rings"]):
        # (a truth written before rings named their months: every ring, as then)
        if period in ring.get("periods", [period]):
            group_of.update({token(n): f"ring {i}" for n in ring["lines"]})
    return group_of


def ring_quality(settings: Settings, truth: dict[str, Any], period: str) -> RingQuality:
    group_of = _planted_groups(settings, truth, period)
    nodes = load_result(settings, period, "ring_nodes")
    nodes = nodes.assign(group=[group_of.get(line, f"none {line}") for line in nodes["line"]])
    sizes = nodes.groupby("community")["line"].transform("size")
    linked = nodes[(sizes > 1) & (nodes["community"] >= 0)]
    counts = linked.groupby(["community", "group"]).size()
    by_community = counts.groupby(level="community")
    planted = linked[~linked["group"].str.startswith("none")]
    in_graph = planted.groupby("group").size()
    largest_share = planted.groupby(["group", "community"]).size().groupby(level="group").max()
    groups = in_graph[in_graph > 1].index
    mixed = planted.groupby("community")["group"].nunique() > 1
    return RingQuality(
        communities=int(by_community.ngroups),
        purity=float(by_community.max().sum() / len(linked)) if len(linked) else 0.0,
        completeness=(
            float(largest_share[groups].sum() / in_graph[groups].sum()) if len(groups) else 0.0
        ),
        mixed=int(mixed.sum()),
    )
