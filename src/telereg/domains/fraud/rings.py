"""Rings: suspects linked by shared callees, handsets or outlets, grouped into communities."""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import networkx as nx
import pandas as pd
from scipy.stats import hypergeom

#: Two suspects calling this many of the same numbers are linked.
MIN_SHARED_CALLEES = 2
#: A number or handset shared by more suspects than this links none of them: its pairs grow
#: with the square of its sharers (a bank's hotline that thousands of suspects called, a
#: placeholder IMEI in an operator's records), and it says nothing about who works together.
MAX_SHARERS = 50


def shared_callees(calls: ir.Table, suspects: list[str]) -> ir.Table:
    """Pairs of suspect lines (a < b), how many numbers both called (``weight``), and how
    many each called (``a_callees``, ``b_callees``; see :func:`significant_callees`)."""
    mine = _callees_of(calls, suspects)
    other = mine.select(b=mine.caller, b_callee=mine.callee)
    pairs = mine.inner_join(other, [mine.callee == other.b_callee, mine.caller < other.b])
    counted = pairs.group_by([pairs.caller.name("a"), "b"]).agg(weight=ibis._.count())
    shared = counted.filter(counted.weight >= MIN_SHARED_CALLEES)
    per_line = mine.group_by("caller").agg(n=mine.count())
    a_side = per_line.select(a_line=per_line.caller, a_callees=per_line.n)
    b_side = per_line.select(b_line=per_line.caller, b_callees=per_line.n)
    return (
        shared.inner_join(a_side, shared.a == a_side.a_line)
        .inner_join(b_side, shared.b == b_side.b_line)
        .select("a", "b", "weight", "a_callees", "b_callees")
    )


def callee_universe(calls: ir.Table, suspects: list[str]) -> int:
    """How many different numbers the suspects called (the pool shared callees come from)."""
    return int(_callees_of(calls, suspects).callee.nunique().to_pyarrow().as_py())


def significant_callees(pairs: pd.DataFrame, universe: int, alpha: float = 0.01) -> pd.DataFrame:
    """The pairs of :func:`shared_callees` that share more numbers than chance would.

    Lines that call many numbers from one pool share some by chance: two unrelated
    gateways dialling the same leaked list meet hundreds of times. A pair is kept when the
    count it shares is unlikely if each line had drawn its callees at random from the
    ``universe`` (hypergeometric tail), at ``alpha`` over all the pairs tested (Bonferroni).
    """
    if pairs.empty or universe <= 0:
        return pairs
    tail = hypergeom.sf(pairs["weight"] - 1, universe, pairs["a_callees"], pairs["b_callees"])
    return pairs[tail < alpha / len(pairs)].reset_index(drop=True)


def _callees_of(calls: ir.Table, suspects: list[str]) -> ir.Table:
    return _not_too_shared(
        calls.filter(calls.caller.isin(suspects)).select("caller", "callee").distinct(), "callee"
    )


def shared_handsets(calls: ir.Table, suspects: list[str]) -> ir.Table:
    mine = calls.filter(calls.caller.isin(suspects) & calls.imei.notnull())
    mine = _not_too_shared(mine.select("caller", "imei").distinct(), "imei")
    other = mine.select(b=mine.caller, b_imei=mine.imei)
    pairs = mine.inner_join(other, [mine.imei == other.b_imei, mine.caller < other.b])
    return pairs.group_by([pairs.caller.name("a"), "b"]).agg(weight=ibis._.count())


def _not_too_shared(pairs: ir.Table, shared: str) -> ir.Table:
    """``pairs`` (caller, ``shared``) without the values more than MAX_SHARERS callers share."""
    counts = pairs.group_by(shared).agg(sharers=pairs.count())
    few = counts.filter(counts.sharers <= MAX_SHARERS).select(kept=counts[shared])
    return pairs.semi_join(few, pairs[shared] == few.kept)


@dataclass
class Rings:
    nodes: pd.DataFrame  # line, kind, operator, community, degree
    edges: pd.DataFrame  # a, b, link, weight
    communities: list[dict[str, object]] = field(default_factory=list)


def build(
    suspects: pd.DataFrame, callees: pd.DataFrame, handsets: pd.DataFrame, outlets: pd.DataFrame
) -> Rings:
    """The graph of suspects and its communities.

    ``suspects``: line, kind, operator; the link tables: a, b, weight;
    ``outlets``: line, operator, outlet_id (an outlet's code is its operator's own).

    Communities are found by modularity (Louvain, fixed seed), so the grouping
    does not change between runs on the same data.
    """
    graph = nx.Graph()
    for row in suspects.itertuples(index=False):
        graph.add_node(row.line, kind=row.kind, operator=row.operator)
    links = [("callees", callees), ("handset", handsets)]
    if not outlets.empty:
        by_outlet = outlets.merge(outlets, on=["operator", "outlet_id"])
        by_outlet = by_outlet[by_outlet["line_x"] < by_outlet["line_y"]]
        links.append(
            ("outlet", by_outlet.rename(columns={"line_x": "a", "line_y": "b"}).assign(weight=1))
        )
    for link, table in links:
        for a, b, weight in table[["a", "b", "weight"]].itertuples(index=False):
            if a in graph and b in graph:
                previous = graph.get_edge_data(a, b, {"weight": 0, "links": ()})
                graph.add_edge(
                    a, b, weight=previous["weight"] + int(weight), links=(*previous["links"], link)
                )
    groups = nx.community.louvain_communities(graph, weight="weight", seed=0) if graph else []
    community = {
        line: i
        for i, members in enumerate(sorted(groups, key=len, reverse=True))
        for line in members
    }
    nodes = pd.DataFrame(
        [
            {
                "line": n,
                "kind": data["kind"],
                "operator": data["operator"],
                "community": community.get(n, -1),
                "degree": graph.degree(n),
            }
            for n, data in graph.nodes(data=True)
        ],
        columns=["line", "kind", "operator", "community", "degree"],
    )
    edges = pd.DataFrame(
        [
            {"a": a, "b": b, "link": "+".join(sorted(set(d["links"]))), "weight": d["weight"]}
            for a, b, d in graph.edges(data=True)
        ],
        columns=["a", "b", "link", "weight"],
    )
    summary = [
        {
            "community": i,
            "size": len(members),
            "kinds": sorted({graph.nodes[m]["kind"] for m in members}),
            "operators": sorted({graph.nodes[m]["operator"] for m in members}),
        }
        for i, members in enumerate(sorted(groups, key=len, reverse=True))
        if len(members) > 1
    ]
    return Rings(nodes, edges, summary)
