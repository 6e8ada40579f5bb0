"""The anti-fraud cases: what a scan opens, the queue, each step, the history.

A scan's suspects, risky cards, cards whose holder is likely not the user, ID numbers over
the card limit and lookalike domains become cases (:func:`open_scan_cases`, once per
finding, again after an action that did not stop it). Analysts review them, hand them to an
agency (``handover``), decide them themselves where the administration acts alone (a
domain blocked, an operator ordered to cancel cards: :func:`decide_case`) or close them; an
agency records its disposal; each step is a note in the audit log, which a case's history
reads back (:func:`case_history`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.cases import service as cases
from telereg.cases.models import Case, CaseStatus
from telereg.core import accounts, approvals, audit, privacy
from telereg.core.errors import ConflictError, InputError, NotFoundError
from telereg.core.i18n import N_
from telereg.core.models import AuditEntry
from telereg.core.periods import month_problem
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.core.privacy import note_as_stored
from telereg.domains.fraud import notes
from telereg.domains.fraud.cardbreak import CARDS_PER_OPERATOR

WORKFLOW = cases.Workflow(
    domain="fraud",
    kind="fraud_suspect",
    transitions={
        CaseStatus.OPEN: (CaseStatus.IN_REVIEW, CaseStatus.CLOSED),
        CaseStatus.IN_REVIEW: (CaseStatus.REFERRED, CaseStatus.CLOSED),
        # Back into review: the hand-over withdrawn (see :func:`withdraw_handover`).
        CaseStatus.REFERRED: (CaseStatus.RESOLVED, CaseStatus.IN_REVIEW),
        CaseStatus.RESOLVED: (CaseStatus.CLOSED,),
    },
    needs_handler=(CaseStatus.REFERRED,),
    page="/fraud/cases",
)


#: What the police may record as done with a case.
DISPOSALS = ("line_suspended", "device_seized", "domain_blocked", "cards_cancelled", "no_action")


#: The disposals that fit a case of each type: a line is suspended or its device seized,
#: a domain blocked.
LINE_DISPOSALS = ("line_suspended", "device_seized", "no_action")


#: An ID number over the card limit ends with its excess cards cancelled (the operator
#: cancels them, on the administration's order or the police's).
ID_LIMIT_DISPOSALS = ("cards_cancelled", "no_action")


DISPOSALS_BY_TYPE = {
    "sim_box": LINE_DISPOSALS,
    "card": LINE_DISPOSALS,
    "identity": LINE_DISPOSALS,
    "id_limit": ID_LIMIT_DISPOSALS,
    "domain": ("domain_blocked", "no_action"),
}


def disposals_for(case_type: str) -> tuple[str, ...]:
    return DISPOSALS_BY_TYPE.get(case_type, DISPOSALS)


#: Case references are at most this long (the column's width); longer domains are hashed.
_REFERENCE_CHARS = 100


def domain_decisions(session: Session, domains: list[str]) -> dict[str, dict[str, Any]]:
    """What analysts and agencies decided on each domain so far: its case (``case``, its
    id), the case's state and the disposal once one is recorded (``domain_blocked``,
    ``no_action`` …)."""
    references = {domain_reference(d): d for d in domains}
    if not references:
        return {}
    # (the latest case of a domain found again after a block counts)
    latest = _latest_cases(session, set(references))
    return {
        references[base]: {"case": case.id, "status": case.status, "outcome": case.outcome or ""}
        for base, case in latest.items()
    }


def _latest_cases(session: Session, bases: set[str]) -> dict[str, Case]:
    """The latest fraud case of each of ``bases``: a finding's reference, which a repeat's
    case extends with ``@YYYY-MM`` (see :func:`with_repeats`)."""
    latest: dict[str, Case] = {}
    query = select(Case).where(Case.domain == WORKFLOW.domain, Case.kind == WORKFLOW.kind)
    for case in session.scalars(query.order_by(Case.id)):
        base = case.reference.split("@")[0]
        if base in bases:
            latest[base] = case  # (in id order: the last one wins)
    return latest


def blocked_domains(session: Session, *, principal: Principal) -> list[dict[str, Any]]:
    """The block list: domains whose case ended with ``domain_blocked``, newest first.

    Not personal data, and what resolvers are to block: every signed-in role may read it.
    """
    principal.require(Permission.STATUS_READ)
    found = session.scalars(
        select(Case)
        .where(
            Case.domain == WORKFLOW.domain,
            Case.kind == WORKFLOW.kind,
            Case.outcome == "domain_blocked",
        )
        .order_by(Case.updated_at.desc(), Case.id.desc())
    )
    return [
        {
            "domain": c.subject.get("domain", ""),
            "case": c.id,
            "since": c.updated_at.isoformat(timespec="seconds"),
        }
        for c in found
        if c.subject.get("type") == "domain"
    ]


def domain_reference(domain: str) -> str:
    """A domain case's reference: the domain, or for a very long one a digest of it."""
    reference = f"domain:{domain}"
    if len(reference) <= _REFERENCE_CHARS:
        return reference
    digest = hashlib.sha256(domain.encode()).hexdigest()
    return f"domain:{domain[:40]}…{digest[:32]}"


def open_scan_cases(
    session: Session,
    *,
    principal: Principal,
    period: str,
    suspects: pd.DataFrame,
    cards: pd.DataFrame,
    domains: pd.DataFrame,
    holders: pd.DataFrame | None = None,
    over_limit: pd.DataFrame | None = None,
    card_limit: int = CARDS_PER_OPERATOR,
) -> int:
    """Open a case for each finding of a scan of ``period`` that has none being worked.

    ``holders`` are cards whose holder is likely not the user
    (``cardbreak.identity_signals``), less those already a suspect or a risky card;
    ``over_limit`` the ID numbers over ``card_limit`` active cards at an operator
    (``cardbreak.over_limit``, with the ``lines`` of each).
    """
    items = [
        cases.NewCase(
            f"sim_box:{row.line}",
            notes.SIM_BOX_CASE.format(operator=row.operator, score=f"{row.rule_score:g}"),
            {
                "type": "sim_box",
                "line": row.line,
                "operator": row.operator,
                "period": period,
                "score": float(row.rule_score),
                "rules": list(row.rules),
                **_model_opinion(row),
                "evidence": _evidence(row, SIM_BOX_EVIDENCE),
            },
        )
        for row in suspects.itertuples(index=False)
    ]
    items += [
        cases.NewCase(
            f"card:{row.line}",
            notes.CARD_CASE.format(operator=row.operator, outlet=row.outlet_id),
            {
                "type": "card",
                "line": row.line,
                "operator": row.operator,
                "period": period,
                "outlet_id": row.outlet_id,
                "signals": list(row.signals),
                # the holder's ID number (a token) and when the card was sold
                "id_number": getattr(row, "id_number", None),
                "activated_at": _when(getattr(row, "activated_at", None)),
                "evidence": _evidence(row, CARD_EVIDENCE),
            },
        )
        for row in cards.itertuples(index=False)
    ]
    items += _identity_cases(holders, period) + _id_limit_cases(over_limit, period, card_limit)
    if len(domains):
        items += [
            cases.NewCase(
                domain_reference(row.domain),
                notes.DOMAIN_CASE.format(domain=row.domain),
                {
                    "type": "domain",
                    "domain": row.domain,
                    "period": period,
                    "score": float(row.score),
                    "brand": row.brand,
                    # why, as the police will read it in a hand-over
                    "signals": [str(r["code"]) for r in row.reasons],
                    "reasons": [f"{r['code']}: {r['detail']}" for r in row.reasons],
                },
            )
            # (medium ones too: every domain the dashboard lists can be decided)
            for row in domains[domains["level"].isin(CASE_LEVELS)].itertuples(index=False)
        ]
    items = with_repeats(session, items, period)
    seen_again(session, items, period)
    return len(cases.open_cases(session, principal=principal, workflow=WORKFLOW, new=items))


def _identity_cases(holders: pd.DataFrame | None, period: str) -> list[cases.NewCase]:
    """Cases of cards whose registered holder is likely not the user (实名不实)."""
    if holders is None or not len(holders):
        return []
    return [
        cases.NewCase(
            f"identity:{row.line}",
            notes.IDENTITY_CASE.format(
                operator=row.operator, day=str(_when(row.activated_at) or "")[:10]
            ),
            {
                "type": "identity",
                "line": row.line,
                "operator": row.operator,
                "period": period,
                "signals": list(row.signals),
                "id_number": getattr(row, "id_number", None),
                "activated_at": _when(getattr(row, "activated_at", None)),
                # where it was registered, for whoever checks "used away from it"
                "home_city": getattr(row, "home_city", None),
                "evidence": _evidence(row, IDENTITY_EVIDENCE),
            },
        )
        for row in holders.itertuples(index=False)
    ]


def _id_limit_cases(over: pd.DataFrame | None, period: str, limit: int) -> list[cases.NewCase]:
    """Cases of ID numbers holding more active cards at an operator than allowed (一证多卡).

    One case per ID number and operator: it is that operator that must cancel the excess
    cards. The case lists the cards (line tokens, oldest sale first) so that whoever acts
    knows which ones; the cards at other operators count in ``all_operators``.
    """
    if over is None or not len(over):
        return []
    return [
        cases.NewCase(
            f"id_limit:{row.operator}:{row.id_number}",
            notes.ID_LIMIT_CASE.format(operator=row.operator, cards=int(row.cards), limit=limit),
            {
                "type": "id_limit",
                "id_number": row.id_number,
                "operator": row.operator,
                "period": period,
                "signals": ["over_card_limit"],
                "cards": int(row.cards),
                "lines": list(getattr(row, "lines", None) or []),
                "evidence": {
                    "cards": int(row.cards),
                    "all_operators": int(row.all_operators),
                    "limit": limit,
                },
            },
        )
        for row in over.itertuples(index=False)
    ]


#: The features a SIM-box case keeps as its evidence (the police read them in a hand-over).
SIM_BOX_EVIDENCE = (
    "calls_per_day",
    "callees",
    "out_in_ratio",
    "other_province_share",
    "radius_km",
    "sms",
    "data_days",
    "imei_lines",
    "cohort_days",
)
#: What a holder-is-not-the-user case keeps as its evidence: whether its first day was spent
#: outside its registration city, and the identities on its handset.
IDENTITY_EVIDENCE = ("first_day_away", "imei_identities")
#: Evidence that is a yes or a no (kept as 1 or 0, like the other figures).
FLAG_EVIDENCE = frozenset({"first_day_away"})
#: The features a card-breaking case keeps as its evidence.
CARD_EVIDENCE = (
    "calls_per_day",
    "novelty",
    "other_province_share",
    "short_share",
    "imei_identities",
)


def _evidence(row: Any, names: tuple[str, ...]) -> dict[str, float]:
    """The row's values of ``names`` it has, rounded for reading."""
    found = {}
    for name in names:
        value = getattr(row, name, None)
        if value is not None and not pd.isna(value):
            found[name] = round(float(value), 3)
    return found


def _model_opinion(row: Any) -> dict[str, Any]:
    """The learned model's probability and reasons, when a model scored the line."""
    probability = getattr(row, "probability", None)
    if probability is None or pd.isna(probability):
        return {}
    return {
        "probability": round(float(probability), 3),
        "model_reasons": list(getattr(row, "explanation", None) or []),
    }


def _when(moment: Any) -> str | None:
    return None if moment is None or pd.isna(moment) else pd.Timestamp(moment).isoformat()


#: References looked up per query (SQLite allows 32,766 bound values in one statement).
_LOOKUP_BATCH = 5000


def seen_again(session: Session, items: list[cases.NewCase], period: str) -> None:
    """Note on each case still being worked that its finding was seen in ``period`` too.

    A gateway that keeps running keeps its case; the case then lists the months it was
    found in (``seen_in``) and shows the latest of them (its evidence, score and month),
    and the queue's month filter finds it in each of them.
    """
    by_reference = {item.reference: item for item in items}
    references = list(by_reference)
    worked: list[Case] = []
    for start in range(0, len(references), _LOOKUP_BATCH):
        worked += session.scalars(
            select(Case).where(
                Case.domain == WORKFLOW.domain,
                Case.kind == WORKFLOW.kind,
                Case.reference.in_(references[start : start + _LOOKUP_BATCH]),
                Case.status != CaseStatus.CLOSED.value,
            )
        )
    for case in worked:
        subject = case.subject
        before = set(subject.get("seen_in") or [subject.get("period", "")]) - {""}
        months = before | {period}
        if str(subject.get("period", "")) >= period and len(months) == 1:
            continue  # the scan of the case's own month, run again
        found = by_reference[case.reference].subject
        if period >= max(before, default=""):
            # The latest month tells the case: its figures, score, model opinion and
            # month are what the case page and a hand-over show (the months before stay
            # in ``seen_in``, the case's own notes in its history).
            latest = {k: v for k, v in found.items() if k != "repeat_of"}
            case.subject = {
                **subject,
                **latest,
                "seen_in": sorted(months),
                "latest_score": found.get("score", subject.get("score")),
            }
        else:
            # (an earlier month scanned again: it only adds itself)
            case.subject = {**subject, "seen_in": sorted(months)}


#: Disposals after which a finding seen again in a later month is a new case: the action
#: (a line suspended, a device seized, a domain blocked) did not stop it.
ACTED = ("line_suspended", "device_seized", "domain_blocked")


def with_repeats(session: Session, items: list[cases.NewCase], period: str) -> list[cases.NewCase]:
    """``items`` with a reference of its own for each finding seen again after an action.

    A finding keeps its case while that case is open (see :func:`seen_again`), and after
    it was dismissed, as long as it looks no worse (the analyst's decision stands). When
    its latest case was closed after a disposal in ``ACTED``, or dismissed and the finding
    now scores higher, for an earlier month, it becomes a new case for ``period`` that
    names the earlier one (``repeat_of``); a re-run of the same month finds that case again,
    and a re-run of a month the earlier case was found in (``seen_in``) opens none.
    """
    latest = _latest_cases(session, {item.reference for item in items})
    result = []
    for item in items:
        last = latest.get(item.reference)
        if (
            last is None
            or last.status != CaseStatus.CLOSED.value
            or not (last.outcome in ACTED or _weight(item.subject) > _weight(last.subject))
            # (a month the case was found in, scanned again: its calls came before the action)
            or max(facet_values(last.subject, "period"), default="") >= period
        ):
            result.append(item)
            continue
        again = dataclasses.replace(
            item,
            reference=f"{item.reference[: _REFERENCE_CHARS - 8]}@{period}",
            subject={**item.subject, "repeat_of": last.id},
        )
        result.append(again)
    return result


def move_case(
    session: Session,
    *,
    principal: Principal,
    case_id: int,
    to: str,
    note: str,
    expected: CaseStatus | None = None,
) -> Case:
    """An analyst's step: into review, or closed. A case is referred only by a hand-over
    (which writes the signed package) and resolved only by a recorded disposal. A domain
    case of some types may also be decided here (``to`` one of :data:`DECISIONS`: see
    :func:`decide_case`). ``expected``: the state the caller read the case in; a case in
    another state now is not moved (409).
    """
    if expected is not None:
        # (the step below moves it from the state read here, or not at all: compare and set)
        cases.check_read_state(get_case(session, principal=principal, case_id=case_id), expected)
    if to in DECISIONS:
        return decide_case(session, principal=principal, case_id=case_id, decision=to, note=note)
    if to == CaseStatus.REFERRED.value:
        raise InputError(
            N_(
                "a case is referred by handing it over to an agency: telereg fraud export, "
                "POST /api/v1/fraud/handovers, or the hand-over form on the case queue"
            )
        )
    if to == CaseStatus.RESOLVED.value:
        raise InputError(
            N_(
                "a case is resolved by recording the agency's disposal: telereg fraud "
                "dispose, POST /api/v1/fraud/cases/{id}/disposal, or the liaison's page"
            ).format(id=case_id)
        )
    if to == CaseStatus.IN_REVIEW.value:
        case = get_case(session, principal=principal, case_id=case_id)
        if case.status == CaseStatus.REFERRED.value:
            return withdraw_handover(session, principal=principal, case_id=case_id, note=note)
    return cases.move(
        session, principal=principal, workflow=WORKFLOW, case_id=case_id, to=to, note=note
    )


def next_steps(case: Case, *, principal: Principal) -> list[str]:
    """The states ``principal`` may move ``case`` to: a case is resolved by whoever reports
    an agency's outcome, and every other step is taken by who manages cases."""
    return [
        step.value
        for step in WORKFLOW.allowed(case.status)
        if principal.can(
            Permission.CASES_REPORT_OUTCOME
            if step is CaseStatus.RESOLVED
            else Permission.CASES_MANAGE
        )
    ]


#: The audit action of a hand-over withdrawn: it names the case and the agency.
WITHDRAWN_ACTION = "fraud.handover.withdrawn"


def withdraw_handover(session: Session, *, principal: Principal, case_id: int, note: str) -> Case:
    """Take a referred case back from its agency, before the agency has recorded a
    disposal: handed to the wrong agency, or found not to be fraud after all.

    The case goes back into review and is no longer the agency's: its liaison no longer
    sees it, and it may be handed over again, to the same agency or another. The agency
    keeps its package (it cannot be unsent) and is told on its page, with the note, that
    the case was withdrawn (:func:`withdrawals`). A note is required (kept with numbers in
    it masked, as every step's).
    """
    principal.require(Permission.CASES_MANAGE)
    note = note_as_stored(note)
    case = get_case(session, principal=principal, case_id=case_id)
    if case.status != CaseStatus.REFERRED.value or case.agency is None:
        raise ConflictError(
            N_("case {id} is {status}; only a referred case can be withdrawn").format(
                id=case.id, status=case.status
            )
        )
    agency = case.agency.code
    cases.move(
        session,
        principal=principal,
        workflow=WORKFLOW,
        case_id=case.id,
        to=CaseStatus.IN_REVIEW,
        note=note,
    )
    case.agency = None
    case.handler = ""
    audit.record(
        session,
        actor=principal.name,
        action=WITHDRAWN_ACTION,
        objects=[f"case:{case.id}", f"agency:{agency}"],
        reason=note,
    )
    return case


def withdrawals(session: Session, *, principal: Principal, limit: int = 50) -> list[dict[str, Any]]:
    """Hand-overs withdrawn, newest first: an agency's liaison sees those of its agency
    (the case, when, by whom, the note); who manages cases sees all of them."""
    if principal.can(Permission.CASES_MANAGE):
        named = None
    elif principal.role is Role.LIAISON and principal.agency_code:
        named = f"agency:{principal.agency_code}"
    else:
        return []
    found, _ = audit.entries(session, action=WITHDRAWN_ACTION, obj=named, limit=limit)
    return [
        {
            "at": entry.at.isoformat(timespec="seconds"),
            "actor": entry.actor,
            "note": entry.reason,
            "case": next(int(o[5:]) for o in entry.objects if o.startswith("case:")),
            "agency": next(o[7:] for o in entry.objects if o.startswith("agency:")),
        }
        for entry in found
        if entry.action == WITHDRAWN_ACTION
    ]


#: Cases one step may move at once (a page of the queue is 50).
MOVE_AT_ONCE = 1000


def move_cases(
    session: Session,
    *,
    principal: Principal,
    case_ids: list[int],
    to: str,
    note: str,
    expected: CaseStatus | None = None,
) -> list[Case]:
    """The same step for several cases, with one note: each is checked as by
    :func:`move_case` (``expected``: the state each was read in), and the first that may not
    move stops them all (the caller's transaction is then rolled back, so none has moved)."""
    chosen = list(dict.fromkeys(case_ids))
    if not chosen:
        raise InputError(N_("tick at least one case to move"))
    if len(chosen) > MOVE_AT_ONCE:
        raise InputError(N_("at most {n} cases move in one step").format(n=MOVE_AT_ONCE))
    return [
        move_case(
            session, principal=principal, case_id=case_id, to=to, note=note, expected=expected
        )
        for case_id in chosen
    ]


#: What the administration may decide itself, without a hand-over, by a case's type: a
#: domain it orders registrars and resolvers to block, an ID number's excess cards it
#: orders the operator to cancel (or neither).
DECISIONS_BY_TYPE = {
    "domain": ("domain_blocked", "no_action"),
    "id_limit": ID_LIMIT_DISPOSALS,
}
DECISIONS = tuple(dict.fromkeys(d for ds in DECISIONS_BY_TYPE.values() for d in ds))


def decisions_for(case_type: str) -> tuple[str, ...]:
    """What the administration may decide on a case of ``case_type`` (none: it hands over)."""
    return DECISIONS_BY_TYPE.get(case_type, ())


#: The lookalike levels a scan opens cases for.
CASE_LEVELS = ("high", "medium")


def decide_case(
    session: Session, *, principal: Principal, case_id: int, decision: str, note: str
) -> Case:
    """The administration's own decision on a case; it is closed with it as its outcome.

    A domain is blocked (it goes on the block list that resolvers read) and an ID number's
    excess cards cancelled by the administration's order, with no police. A case handed to
    an agency is decided by that agency's disposal.
    """
    case = get_case(session, principal=principal, case_id=case_id)
    kind = str(case.subject.get("type", ""))
    if decision not in decisions_for(kind):
        raise InputError(
            N_("{decision} is not decided on a {type} case (case {id})").format(
                decision=decision, id=case_id, type=kind
            )
        )
    if case.status not in (CaseStatus.OPEN.value, CaseStatus.IN_REVIEW.value):
        raise ConflictError(
            N_("case {id} is {status}; only open cases and cases in review are decided").format(
                id=case_id, status=case.status
            )
        )
    moved = cases.move(
        session,
        principal=principal,
        workflow=WORKFLOW,
        case_id=case_id,
        to=CaseStatus.CLOSED.value,
        note=f"{decision}: {note}" if note.strip() else "",
    )
    moved.outcome = decision
    return moved


#: What a fraud case is about (its subject's ``type``), in the order queues group them.
CASE_KINDS = ("sim_box", "card", "identity", "id_limit", "domain")


#: How a queue may be ordered: as opened, or most pressing first within each kind.
CASE_ORDERS = ("opened", "priority")


def check_period(period: str) -> None:
    """Refuse what is not a month written ``YYYY-MM`` (scans and cases are kept by month)."""
    if (problem := month_problem(period)) is not None:
        raise InputError(problem)


def case_queue(
    session: Session,
    *,
    principal: Principal,
    status: str | None = None,
    kind: str | None = None,
    operator: str | None = None,
    period: str | None = None,
    order: str = "opened",
) -> list[Case]:
    """The cases a principal may see: all for analysts, only its agency's for a liaison.

    ``kind`` keeps one of :data:`CASE_KINDS`, ``operator`` one operator's lines (by code)
    and ``period`` one month's findings (``YYYY-MM``); ``order`` is one of
    :data:`CASE_ORDERS` (``priority``: see :func:`case_priority`). An unknown state or
    operator is an error, not an empty queue.
    """
    states = [s.value for s in CaseStatus]
    if status is not None and status not in states:
        raise InputError(
            N_("unknown case state {status}; the states are {states}").format(
                status=repr(status), states=", ".join(states)
            )
        )
    if operator is not None:
        accounts.get_operator(session, operator)
    found = _visible_cases(session, principal=principal, status=status)
    return narrowed_queue(found, kind=kind, operator=operator, period=period, order=order)


def narrowed_queue(
    found: list[Case],
    *,
    kind: str | None = None,
    operator: str | None = None,
    period: str | None = None,
    order: str = "opened",
) -> list[Case]:
    """``found`` (a queue) kept to what the filters select and put in an order (see
    :func:`case_queue`)."""
    if kind is not None and kind not in CASE_KINDS:
        raise InputError(
            N_("unknown case kind {kind}; the kinds are {kinds}").format(
                kind=kind, kinds=", ".join(CASE_KINDS)
            )
        )
    if period is not None:
        check_period(period)
    if order not in CASE_ORDERS:
        raise InputError(
            N_("unknown order {order}; cases are ordered by {orders}").format(
                order=order, orders=", ".join(CASE_ORDERS)
            )
        )
    kept = [c for c in found if in_queue(c, kind=kind, operator=operator, period=period)]
    return sorted(kept, key=case_priority) if order == "priority" else kept


def in_queue(
    case: Case, *, kind: str | None = None, operator: str | None = None, period: str | None = None
) -> bool:
    """Whether ``case`` is of the kind, operator and month asked for (None: any)."""
    chosen = {"kind": kind, "operator": operator, "period": period}
    return all(
        value is None or value in facet_values(case.subject, facet)
        for facet, value in chosen.items()
    )


def facet_values(subject: dict[str, Any], facet: str) -> list[str]:
    """What a case is under one of the queue's filters (``kind``, ``operator``, ``period``):
    its kind, its operator, and every month its finding was found in (its own, and those it
    was seen again in). The queue's counts and its filters both read this."""
    if facet == "period":
        months = {str(subject.get("period") or ""), *(subject.get("seen_in") or ())}
        return sorted(m for m in months if m)
    value = subject.get("type" if facet == "kind" else facet)
    return [str(value)] if value else []


def _weight(subject: dict[str, Any]) -> float:
    """How strong a finding is: its score; for an ID number its active cards; for a card
    the number of its signals."""
    weight = subject.get("score")
    if weight is None:
        weight = subject.get("cards")
    if weight is None:
        weight = len(subject.get("signals") or ())
    return float(weight)


def case_priority(case: Case) -> tuple[int, float, int]:
    """A sort key putting the most pressing case first, kind by kind.

    SIM-box and domain cases carry their score, an ID number its active cards; a card
    counts its signals. The measures differ between kinds, so kinds are not mixed: they
    come in the order of :data:`CASE_KINDS`, and within a kind the highest first, the
    oldest first among equals.
    """
    subject = case.subject
    kind = str(subject.get("type", ""))
    rank = CASE_KINDS.index(kind) if kind in CASE_KINDS else len(CASE_KINDS)
    return rank, -_weight(subject), case.id


def _visible_cases(session: Session, *, principal: Principal, status: str | None) -> list[Case]:
    if principal.can(Permission.CASES_MANAGE):
        return cases.cases(session, principal=principal, workflow=WORKFLOW, status=status)
    principal.require(Permission.CASES_READ_ASSIGNED)
    if principal.role is not Role.LIAISON or not principal.agency_code:
        return []
    query = (
        select(Case)
        .join(Case.agency)
        .where(Case.domain == WORKFLOW.domain, Case.kind == WORKFLOW.kind)
        .where(Case.agency.has(code=principal.agency_code))
    )
    if status:
        query = query.where(Case.status == status)
    return list(session.scalars(query.order_by(Case.opened_at)))


def get_case(session: Session, *, principal: Principal, case_id: int) -> Case:
    """One case, if the principal may see it (else it does not exist for them)."""
    case = session.get(Case, case_id)
    if case is None or case.domain != WORKFLOW.domain or case.kind != WORKFLOW.kind:
        raise cases.no_such_case(
            N_("no fraud case {id}").format(id=case_id), case, principal=principal
        )
    if principal.can(Permission.CASES_MANAGE):
        return case
    principal.require(Permission.CASES_READ_ASSIGNED)
    if case.agency is None or case.agency.code != principal.agency_code:
        raise NotFoundError(N_("no fraud case {id}").format(id=case_id))
    return case


#: The audit action of a hand-over: the step of a case's history that starts the agency's part.
HANDOVER_ACTION = "fraud.handover"


#: The steps of a case's history besides its moves (``cases.…``).
_HANDOVER_STEPS = (HANDOVER_ACTION, WITHDRAWN_ACTION)
#: The step of a case's history that is a clear value revealed for it (the audit's action is
#: ``privacy.reidentify``): who, with which reason, how many values at once.
REIDENTIFIED_STEP = "reidentified"
#: The steps of a case's history that are a request to re-identify its values and what
#: became of it (four eyes, ``settings.reidentify_needs_approval``), by audit action.
APPROVAL_STEPS = {
    approvals.REQUESTED: "approval_requested",
    approvals.GRANTED: "approval_granted",
    approvals.REFUSED: "approval_refused",
    approvals.WITHDRAWN: "approval_withdrawn",
}


def _administration_step(steps: list[dict[str, Any]], entry: AuditEntry) -> None:
    """Add the step of ``entry`` to ``steps``: a request to re-identify the case's values or
    what became of it, or clear values revealed for the case (the values of one hand-over,
    or of one reason, as one step)."""
    step = APPROVAL_STEPS.get(entry.action, REIDENTIFIED_STEP)
    last = steps[-1] if steps else None
    if (
        step == REIDENTIFIED_STEP
        and last is not None
        and last["step"] == REIDENTIFIED_STEP
        and (last["actor"], last["note"]) == (entry.actor, entry.reason)
    ):
        last["values"] += 1
        return
    found: dict[str, Any] = {
        "at": entry.at.isoformat(timespec="seconds"),
        "actor": entry.actor,
        "step": step,
        "note": entry.reason,
        "agency": "",
        "withdrawn_from": "",
        "values": 1 if step == REIDENTIFIED_STEP else 0,
    }
    if step != REIDENTIFIED_STEP:
        found["requester"] = str(entry.detail.get("requested_by") or entry.actor)
    steps.append(found)


def case_history(session: Session, *, principal: Principal, case_id: int) -> list[dict[str, Any]]:
    """What happened to a case, oldest first: its opening, each step with who took it and
    the note they gave (the hand-over names the agency), and the agency's disposal, from
    the audit log.

    An analyst sees all of it; an agency's liaison, only the time the case was its
    agency's: from each hand-over to it to its withdrawal (what the administration noted
    while it reviewed the case, and what passed with another agency, are theirs).
    """
    case = get_case(session, principal=principal, case_id=case_id)
    manager = principal.can(Permission.CASES_MANAGE)
    steps: list[dict[str, Any]] = []
    for entry in audit.about(session, f"case:{case.id}", since=case.opened_at):
        if entry.action in APPROVAL_STEPS or entry.action == privacy.REIDENTIFIED:
            # The administration's (an agency's liaison does not see them): who asked to
            # see the case's values, who decided, and the values revealed for it.
            if manager:
                _administration_step(steps, entry)
            continue
        if not (entry.action.startswith("cases.") or entry.action in _HANDOVER_STEPS):
            continue  # (a package fetched or checked is the audit log's, not a step)
        agency = next((o.partition(":")[2] for o in entry.objects if o.startswith("agency:")), "")
        if entry.action == HANDOVER_ACTION:
            # The hand-over moved the case to referred just before: that step names the agency.
            referred = [s for s in steps if s["step"] == CaseStatus.REFERRED.value]
            if referred and not referred[-1]["agency"]:
                referred[-1]["agency"] = agency
                continue
        if entry.action == WITHDRAWN_ACTION and steps:
            # The withdrawal moved the case back into review just before: that step says so.
            steps[-1]["withdrawn_from"] = agency
            continue
        steps.append(
            {
                "at": entry.at.isoformat(timespec="seconds"),
                "actor": entry.actor,
                # cases.<kind>.<state> → the state (open, in_review …); fraud.handover → handover
                "step": entry.action.rsplit(".", 1)[-1],
                "note": entry.reason,
                "agency": agency,
                "withdrawn_from": "",
                "values": 0,
            }
        )
    if manager:
        return steps
    # Only while the case was its agency's: from each hand-over to it up to its withdrawal
    # from it. What passed while the administration reviewed it, or while another agency
    # held it, is theirs.
    mine, holding = [], False
    for step in steps:
        holding = holding or step["agency"] == principal.agency_code
        if holding:
            mine.append(step)
        if step["withdrawn_from"] == principal.agency_code or (
            step["agency"] and step["agency"] != principal.agency_code
        ):
            holding = False
    return mine


def line_cases(session: Session, *, principal: Principal, line: str) -> list[Case]:
    """The cases about a line (as a SIM box or a card), newest first, for who manages cases."""
    if not principal.can(Permission.CASES_MANAGE):
        return []
    query = (
        select(Case)
        .where(Case.domain == WORKFLOW.domain, Case.kind == WORKFLOW.kind)
        .where(Case.subject["line"].as_string() == line)
    )
    return list(session.scalars(query.order_by(Case.id.desc())))
