"""The anti-fraud scan of a month, its stored results, and what pages read of them.

``scan`` reads the month's lake data, computes line features in the engine,
scores them (rules, and the learned model when feedback exists), finds
card-breaking risk, scores observed domains and links suspects into rings.
The results go to ``<data_dir>/analysis/fraud/<period>/`` (replaced whole, so
readers never see half of a scan) and every new suspect becomes a case
(``casework``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core import audit, engine, jobs
from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
from telereg.core.jobs import JobKind
from telereg.core.models import Job
from telereg.core.periods import is_month
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import cardbreak, casework, lookalike, notes, rings, scoring
from telereg.domains.fraud.contracts import CONTRACTS
from telereg.domains.fraud.features import line_features, originated
from telereg.domains.fraud.parameters import FeatureParameters, check_settings
from telereg.ingest import lake
from telereg.ingest.models import Submission
from telereg.reference.lists import gateway_tacs
from telereg.reference.regions import load_regions


@dataclass
class ScanSummary:
    period: str
    lines: int
    sim_box_suspects: int
    model: str
    new_card_risks: int
    outlets: int
    over_limit_ids: int
    identity_signals: int
    risky_domains: int
    rings: int
    cases_opened: int
    seconds: float

    def lines_for_demo(self) -> list[str]:
        scan = (
            f"fraud scan {self.period}: {self.lines:,} lines, {self.sim_box_suspects} SIM-box "
            f"suspects ({self.model}), {self.new_card_risks} risky new cards, "
            f"{self.outlets} outlets that sold 2 or more flagged new cards, "
            f"{self.over_limit_ids} ID numbers over the card limit, "
            f"{self.identity_signals} cards whose holder is likely not the user"
        )
        found = (
            f"{self.risky_domains} high-risk domains, {self.rings} rings, "
            f"{self.cases_opened} cases opened"
        )
        return [scan, found]


NO_SCAN_YET = N_(
    "no fraud scan yet: start one on the anti-fraud page, or run "
    "`telereg fraud scan --period YYYY-MM`"
)
_NO_SCAN = N_(
    "no fraud scan for {period}: start one on the anti-fraud page (a month with call "
    "records), or run `telereg fraud scan --period {period}`"
)


def results_dir(settings: Settings, period: str) -> Path:
    casework.check_period(period)
    return settings.data_dir / "analysis" / "fraud" / period


def lake_files(session: Session, settings: Settings, dataset: str, period: str | None) -> list[str]:
    found = lake.current_files(session, settings, dataset, periods=[period] if period else None)
    return [str(f) for f in found]


def cell_files(session: Session, settings: Settings, period: str) -> list[str]:
    """Each operator's cell list as it stood in ``period`` (see ``lake.files_as_of``)."""
    return [str(f) for f in lake.files_as_of(session, settings, "cells", period)]


def lake_table(backend: Any, files: list[str], dataset: str) -> ir.Table:
    """The lake files of a dataset, or an empty table of its shape when there are none."""
    if files:
        return engine.read_parquet_files(backend, files)
    contract = next(c for c in CONTRACTS if c.name == dataset)
    schema = contract.lake_schema()
    return ibis.memtable(
        pd.DataFrame({k: pd.Series(dtype="object") for k in schema}), schema=schema
    )


def previous_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def next_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def _period_end(period: str) -> datetime:
    year, month = map(int, period.split("-"))
    return datetime(year + month // 12, month % 12 + 1, 1)  # noqa: DTZ001 - local calendar time


def _features(backend: Any, session: Session, settings: Settings, period: str) -> pd.DataFrame:
    regions = load_regions(settings.region_code)
    lat = regions.province.geometry.centroid.y
    tacs = ibis.memtable({"tac": [t.tac for t in gateway_tacs(settings.fraud_gateway_tacs_file)]})
    with line_features(
        lake_table(backend, lake_files(session, settings, "voice_cdr", period), "voice_cdr"),
        lake_table(backend, cell_files(session, settings, period), "cells"),
        lake_table(backend, lake_files(session, settings, "sms", period), "sms"),
        lake_table(
            backend, lake_files(session, settings, "data_sessions", period), "data_sessions"
        ),
        tacs,
        home_province=settings.region_code,
        mid_latitude=lat,
        parameters=FeatureParameters.of(settings.fraud_features),
    ) as features:
        # A fixed order: the engine returns groups in any order.
        return engine.to_frame(features.order_by(["operator", "line"]))


def _feedback(session: Session, settings: Settings, before: str) -> list[str]:
    """Files of the police feedback filed for months before ``before``."""
    return [
        str(settings.lake_dir / s.lake_path)
        for s in session.scalars(
            select(Submission).where(
                Submission.dataset == "police_feedback",
                Submission.current,
                Submission.period < before,
            )
        )
        if s.lake_path
    ]


def _confirmed_domains(
    backend: Any, session: Session, settings: Settings, period: str
) -> dict[str, str]:
    """Domains the police confirmed up to ``period`` (its own month's feedback included)
    → their case reference and date, as the domain list shows them."""
    files = _feedback(session, settings, next_period(period))
    if not files:
        return {}
    feedback = engine.read_parquet_files(backend, files)
    named = feedback.filter(feedback.domain.notnull()).select(
        "domain", "case_reference", "confirmed_on"
    )
    said: dict[str, str] = {}
    for row in named.order_by("confirmed_on").to_pyarrow().to_pylist():
        reference = row["case_reference"] or "—"
        said[str(row["domain"]).strip().lower()] = f"{reference}, {row['confirmed_on']}"
    return said


def training_labels(calls: ir.Table, feedback: ir.Table) -> tuple[set[str], set[str]]:
    """The lines to learn from as fraud, and those not to learn from at all.

    Fraud: the numbers the police confirmed, and the lines that used a handset (IMEI)
    they confirmed. Left out: the other lines that shared a handset with those, such as
    the other ports of a confirmed gateway. The police confirm what their cases reached,
    not every card in the box; taught as clean, those ports would teach the model that
    gateway lines are clean.
    """
    numbers = feedback.filter(feedback.phone.notnull()).select(line=feedback.phone).distinct()
    devices = feedback.filter(feedback.imei.notnull()).select(device=feedback.imei).distinct()
    handsets = calls.filter(calls.imei.notnull()).select("caller", "imei").distinct()
    on_devices = handsets.semi_join(devices, handsets.imei == devices.device)
    confirmed = set(numbers.to_pandas()["line"]) | set(on_devices.to_pandas()["caller"])
    if not confirmed:
        return set(), set()
    known = ibis.memtable({"known": sorted(confirmed)}, schema={"known": "string"})
    theirs = handsets.semi_join(known, handsets.caller == known.known).select(shared="imei")
    near = handsets.semi_join(theirs, handsets.imei == theirs.shared).select("caller").distinct()
    return confirmed, set(near.to_pandas()["caller"]) - confirmed


def _score_lines(
    backend: Any, session: Session, settings: Settings, period: str
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Every line scored by the rules (and the model when feedback trained one); the suspects."""
    features = _features(backend, session, settings, period)
    scored = scoring.rule_scores(features, settings.fraud_rules)
    scored["rule_suspect"] = scoring.rule_suspects(scored, settings.fraud_rule_score_threshold)
    scored["probability"] = float("nan")
    scored["model_suspect"] = False
    note = notes.RULES_ONLY
    feedback = _feedback(session, settings, period)
    history_period = previous_period(period)
    history = lake_files(session, settings, "voice_cdr", history_period)
    model = None
    if feedback and history:
        confirmed, unlabelled = training_labels(
            originated(lake_table(backend, history, "voice_cdr")),
            engine.read_parquet_files(backend, feedback),
        )
        if confirmed:
            model = scoring.train(
                _features(backend, session, settings, history_period),
                confirmed,
                unlabelled=unlabelled,
            )
    if model is not None:
        scored["probability"] = model.probability(scored)
        note = notes.RULES_AND_MODEL.format(
            positives=model.positives, period=history_period, unlabelled=model.unlabelled
        )
        # The model proposes; a device signal (shared IMEI, gateway TAC, cohort) confirms, as for
        # the rules: the history it learned from may hold no heavy callers of other kinds.
        scored["model_suspect"] = (
            scored["probability"] >= settings.fraud_model_threshold
        ) & scored["device_signal"]
    scored["suspect"] = scored["rule_suspect"] | scored["model_suspect"]
    suspects = scoring.with_rule_names(scored[scored["suspect"]])
    explained = model.explain(suspects) if model is not None and len(suspects) else None
    suspects["explanation"] = (
        [[f"{name}:{weight}" for name, weight in e] for e in explained]
        if explained is not None
        else [[] for _ in range(len(suspects))]
    )
    return scored, suspects.sort_values(["rule_score", "calls_out"], ascending=False), note


def scannable_periods(session: Session) -> list[str]:
    """The months with call records to scan, latest first."""
    return lake.current_periods(session, "voice_cdr")


def check_scan(session: Session, settings: Settings, period: str) -> None:
    """Raise what would stop a scan of ``period`` before it starts: unknown rules or feature
    parameters, thresholds below zero, a month not of the form YYYY-MM, no calls."""
    casework.check_period(period)
    check_settings(settings)
    if not lake_files(session, settings, "voice_cdr", period):
        raise NotFoundError(
            N_("no call records for {period}; ingest voice_cdr first").format(period=period)
        )


#: The steps of a scan, in order, as ``scan`` reports them to its ``progress``.
SCAN_STAGES = ("lines", "cards", "domains", "rings", "store", "cases")


def scan(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    period: str,
    progress: Callable[[str], None] = lambda _stage: None,
) -> ScanSummary:
    """Scan ``period``: score lines, cards and domains, link rings, store, open cases.

    ``progress`` is told each of :data:`SCAN_STAGES` as it begins.
    """
    principal.require(Permission.ANALYSIS_RUN)
    started = datetime.now(UTC)
    check_scan(session, settings, period)
    thresholds = settings.fraud_rules
    backend = engine.connect(settings)
    progress("lines")
    scored, suspects, model_note = _score_lines(backend, session, settings, period)
    progress("cards")

    subs = lake_table(
        backend, lake_files(session, settings, "subscriptions", period), "subscriptions"
    )
    calls = originated(
        lake_table(backend, lake_files(session, settings, "voice_cdr", period), "voice_cdr")
    )
    cells = lake_table(backend, cell_files(session, settings, period), "cells")
    subs_frame = subs.to_pandas()
    identity = cardbreak.line_identity(calls, cells, subs).to_pandas()
    period_end = _period_end(period)
    cards = cardbreak.new_card_risk(
        scored, identity, subs_frame, period_end=period_end, thresholds=thresholds
    )
    cards = cards[~cards["line"].isin(suspects["line"])]
    # (a gateway's ports share a handset among many ID numbers too: they are SIM boxes)
    holders = cardbreak.identity_signals(identity, subs_frame, period_end=period_end)
    holders = holders[~holders["line"].isin(suspects["line"])]
    home = subs_frame[["phone", "home_city"]].drop_duplicates("phone")
    suspects = suspects.merge(home.rename(columns={"phone": "line"}), on="line", how="left")
    suspects["home_city"] = suspects["home_city"].fillna("")
    sold = cardbreak.flagged_sales(cards, suspects, subs_frame, period_end=period_end)
    outlet_table = cardbreak.outlets(sold, subs_frame, period_end=period_end)
    card_limit = int(settings.fraud_cards_per_operator)
    over = cardbreak.over_limit(subs_frame, limit=card_limit)

    progress("domains")
    domains_files = lake_files(session, settings, "observed_domains", period)
    domains = pd.DataFrame()
    if domains_files:
        observed = engine.read_parquet_files(backend, domains_files).to_pyarrow()
        domains = lookalike.score_domains(
            observed.select(["domain", "first_seen", "query_count", "source", "operator"]),
            as_of=period_end.date() - timedelta(days=1),
            confirmed=_confirmed_domains(backend, session, settings, period),
        ).to_pandas()

    progress("rings")
    members = stacked(
        [
            suspects[["line", "operator"]].assign(kind="sim_box"),
            cards[["line", "operator"]].assign(kind="card"),
        ]
    )
    lines = members["line"].tolist()
    graph = rings.build(
        members,
        rings.significant_callees(
            rings.shared_callees(calls, lines).to_pandas(), rings.callee_universe(calls, lines)
        )
        if lines
        else _no_links(),
        rings.shared_handsets(calls, lines).to_pandas() if lines else _no_links(),
        sold[["line", "operator", "outlet_id"]],
    )
    progress("store")
    _store(
        settings,
        period,
        {
            "suspects": suspects,
            "cards": cards,
            "outlets": outlet_table,
            "over_limit": over,
            "identity": holders,
            "domains": domains,
            "ring_nodes": graph.nodes,
            "ring_edges": graph.edges,
        },
        {
            "period": period,
            "model": model_note,
            "rings": graph.communities,
            "lines": len(scored),
            "lines_by_operator": {
                str(k): int(v) for k, v in scored.groupby("operator").size().items()
            },
            "counts": {
                "sim_box": len(suspects),
                "card": len(cards),
                "domain": int(domains.loc[domains["level"] == "high", "domain"].nunique())
                if len(domains)
                else 0,
                "over_limit": int(over["id_number"].nunique()) if len(over) else 0,
                "identity": len(holders),
            },
            "scanned_at": started.isoformat(timespec="seconds"),
        },
    )
    progress("cases")
    opened = casework.open_scan_cases(
        session,
        principal=principal,
        period=period,
        suspects=suspects,
        cards=cards,
        domains=domains,
        # (a risky new card's case names its holder and handset already)
        holders=cardbreak.worth_a_case(
            holders[~holders["line"].isin(cards["line"])], period_end=period_end
        ),
        over_limit=cardbreak.with_their_cards(over, subs_frame),
        card_limit=card_limit,
    )
    summary = ScanSummary(
        period=period,
        lines=len(scored),
        sim_box_suspects=len(suspects),
        model=model_note,
        new_card_risks=len(cards),
        outlets=int((outlet_table["flagged_cards"] >= 2).sum()) if len(outlet_table) else 0,
        over_limit_ids=int(over["id_number"].nunique()) if len(over) else 0,
        identity_signals=len(holders),
        risky_domains=int(domains.loc[domains["level"] == "high", "domain"].nunique())
        if len(domains)
        else 0,
        rings=len(graph.communities),
        cases_opened=opened,
        seconds=round((datetime.now(UTC) - started).total_seconds(), 1),
    )
    audit.record(
        session,
        actor=principal.name,
        action="fraud.scan",
        objects=[f"period:{period}"],
        detail={k: v for k, v in summary.__dict__.items() if k != "seconds"},
    )
    return summary


def _scan_job(
    session: Session,
    settings: Settings,
    principal: Principal,
    params: dict[str, Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    summary = scan(
        session, settings=settings, principal=principal, period=params["period"], progress=progress
    )
    return summary.__dict__


def _check_scan_job(session: Session, settings: Settings, params: dict[str, Any]) -> None:
    check_scan(session, settings, params["period"])


#: A month's scan run as a job (``core.jobs``): ``{"period": "YYYY-MM"}``.
SCAN_JOB = JobKind(
    name="fraud.scan", permission=Permission.ANALYSIS_RUN, run=_scan_job, check=_check_scan_job
)


def start_scan(session: Session, settings: Settings, *, principal: Principal, period: str) -> Job:
    """Queue a scan of ``period`` as a job, or return the one already queued or running."""
    return jobs.submit(
        session, settings, principal=principal, job_kind=SCAN_JOB, params={"period": period}
    )


def _no_links() -> pd.DataFrame:
    return pd.DataFrame({"a": [], "b": [], "weight": []})


#: Versions of a month's result that no link names and that are older than this were
#: left by a scan that stopped before it finished (one that is still writing is younger).
_LEFTOVER_AGE_S = 24 * 3600


def _store(
    settings: Settings, period: str, tables: dict[str, pd.DataFrame], meta: dict[str, Any]
) -> None:
    """Keep a scan's result as a new version of the month's, and switch to it at once.

    ``analysis/fraud/<period>`` is a symbolic link to the current version, a hidden
    directory beside it; the link is replaced in one step (a rename), so a reader finds
    the earlier result or the new one, and a scan stopped at any point leaves the earlier
    one as it was.
    """
    target = results_dir(settings, period)
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    _sweep_versions(root, period, keep=target)
    version = root / f".{period}.{uuid.uuid4().hex}"
    version.mkdir()
    for name, frame in tables.items():
        frame.reset_index(drop=True).to_parquet(version / f"{name}.parquet", index=False)
    (version / "summary.json").write_text(json.dumps(meta, ensure_ascii=False, default=str))
    previous = target.resolve() if target.is_symlink() else None
    if target.is_dir() and not target.is_symlink():
        # A result stored before versions: moved aside (the one moment without a result).
        previous = root / f".{period}.old.{uuid.uuid4().hex}"
        target.rename(previous)
    link = root / f".{period}.link.{uuid.uuid4().hex}"
    link.symlink_to(version.name, target_is_directory=True)
    link.replace(target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _sweep_versions(root: Path, period: str, *, keep: Path) -> None:
    current = keep.readlink().name if keep.is_symlink() else None
    cutoff = datetime.now(UTC).timestamp() - _LEFTOVER_AGE_S
    for entry in root.glob(f".{period}.*"):
        if entry.name == current or entry.lstat().st_mtime > cutoff:
            continue
        if entry.is_symlink():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def load_result(settings: Settings, period: str, name: str) -> pd.DataFrame:
    path = results_dir(settings, period) / f"{name}.parquet"
    if not path.exists():
        raise NotFoundError(_NO_SCAN.format(period=period))
    return pd.read_parquet(path)


def load_summary(settings: Settings, period: str) -> dict[str, Any]:
    path = results_dir(settings, period) / "summary.json"
    if not path.exists():
        raise NotFoundError(_NO_SCAN.format(period=period))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def latest_period(settings: Settings, period: str | None) -> str:
    """``period``, or when none is given the latest scanned month."""
    if period:
        return period
    periods = scanned_periods(settings)
    if not periods:
        raise NotFoundError(NO_SCAN_YET)
    return periods[0]


def scanned_periods(settings: Settings) -> list[str]:
    root = settings.data_dir / "analysis" / "fraud"
    if not root.exists():
        return []
    return sorted(
        (p.name for p in root.iterdir() if is_month(p.name) and (p / "summary.json").exists()),
        reverse=True,
    )


def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames one under the other. Empty ones are left out when others have rows: pandas
    would otherwise let their all-missing columns decide the result's types."""
    filled = [frame for frame in frames if len(frame)]
    return pd.concat(filled or frames, ignore_index=True)


def run_analyses(settings: Settings, *, principal: Principal) -> list[str]:
    """What the demo runs after loading: a scan of every month with call records, oldest
    first, as an administration that scanned each month when its data came in would have
    (the dashboard's trend then has its months). Reports the latest month, and the earlier
    ones in a line."""
    from telereg.core.db import session_scope

    with session_scope(settings) as session:
        periods = sorted(
            set(
                session.scalars(
                    select(Submission.period).where(
                        Submission.dataset == "voice_cdr", Submission.current
                    )
                )
            )
        )
    if not periods:
        return ["no call records: fraud scan skipped"]
    summaries = []
    for period in periods:
        with session_scope(settings) as session:
            summaries.append(scan(session, settings=settings, principal=principal, period=period))
    *earlier, latest = summaries
    lines = latest.lines_for_demo()
    if earlier:
        months = ", ".join(
            f"{s.period} ({s.sim_box_suspects} SIM-box suspects, {s.cases_opened} cases opened)"
            for s in earlier
        )
        lines.append(f"earlier months scanned: {months}")
    return lines
