"""Case workflows: open, move through declared states, close; every step audited.

A domain declares its workflow (which states follow which); this module keeps
the rules that every workflow shares: only declared transitions, a note for
each step, timestamps, and an audit entry written with the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from telereg.cases.models import Case, CaseStatus
from telereg.core import audit
from telereg.core.db import utcnow
from telereg.core.errors import ConflictError, InputError, NotFoundError
from telereg.core.i18n import N_
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.privacy import note_as_stored


@dataclass(frozen=True)
class Workflow:
    domain: str
    kind: str
    #: state → states it may move to
    transitions: dict[CaseStatus, tuple[CaseStatus, ...]]
    #: states in which the case needs a handler (e.g. the department it was referred to)
    needs_handler: tuple[CaseStatus, ...] = ()
    #: the page that lists the workflow's cases (named when one is asked for as another's)
    page: str = ""

    def __post_init__(self) -> None:
        _DECLARED[(self.domain, self.kind)] = self

    def allowed(self, status: str) -> tuple[CaseStatus, ...]:
        return self.transitions.get(CaseStatus(status), ())


#: Every workflow a domain has declared, by (domain, kind).
_DECLARED: dict[tuple[str, str], Workflow] = {}

#: A case asked for in another workflow than its own (one id sequence serves them all).
CASE_ELSEWHERE = N_("case {id} is a {type} case: see {page}")


def no_such_case(message: str, case: Case | None, *, principal: Principal) -> NotFoundError:
    """``message`` (no such case here), saying where the case is when it belongs to another
    workflow and the principal may manage cases (to others it does not exist)."""
    if case is None or not principal.can(Permission.CASES_MANAGE):
        return NotFoundError(message)
    declared = _DECLARED.get((case.domain, case.kind))
    page = declared.page if declared is not None and declared.page else f"/{case.domain}"
    elsewhere = CASE_ELSEWHERE.format(id=case.id, type=case.kind, page=page)
    return NotFoundError(f"{message}; {elsewhere}")


@dataclass(frozen=True)
class NewCase:
    """A case to open: its reference (unique within a workflow), title and subject."""

    reference: str
    title: str
    subject: dict[str, Any]
    opened_at: datetime | None = None


def open_case(
    session: Session,
    *,
    principal: Principal,
    workflow: Workflow,
    title: str,
    reference: str,
    subject: dict[str, Any],
    opened_at: datetime | None = None,
) -> Case:
    """A new case in state ``open``; one open case per reference and workflow."""
    principal.require(Permission.CASES_MANAGE)
    existing = session.scalar(
        select(Case).where(
            Case.domain == workflow.domain, Case.kind == workflow.kind, Case.reference == reference
        )
    )
    if existing is not None:
        raise ConflictError(
            N_("{kind} {reference} already has case {id}").format(
                kind=workflow.kind, reference=reference, id=existing.id
            )
        )
    (case,) = _add(session, principal, workflow, [NewCase(reference, title, subject, opened_at)])
    return case


def open_cases(
    session: Session, *, principal: Principal, workflow: Workflow, new: Sequence[NewCase]
) -> list[Case]:
    """Open a case for each of ``new`` whose reference has none yet, in one flush.

    For analyses that raise many findings at once: a finding seen again (a re-run) keeps
    its existing case, whatever state it is in.
    """
    principal.require(Permission.CASES_MANAGE)
    known = set(
        session.scalars(
            select(Case.reference).where(Case.domain == workflow.domain, Case.kind == workflow.kind)
        )
    )
    fresh: dict[str, NewCase] = {}
    for item in new:
        if item.reference not in known:
            fresh.setdefault(item.reference, item)
    return _add(session, principal, workflow, list(fresh.values()))


def _add(
    session: Session, principal: Principal, workflow: Workflow, new: list[NewCase]
) -> list[Case]:
    now = utcnow()
    opened = [
        Case(
            domain=workflow.domain,
            kind=workflow.kind,
            title=item.title[:300],
            reference=item.reference,
            subject=item.subject,
            opened_by=principal.name,
            opened_at=item.opened_at or now,
            updated_at=item.opened_at or now,
        )
        for item in new
    ]
    session.add_all(opened)
    session.flush()
    for case in opened:
        audit.record(
            session,
            actor=principal.name,
            action=f"cases.{workflow.kind}.open",
            objects=[f"case:{case.id}", f"{workflow.kind}:{case.reference}"],
        )
    return opened


def check_read_state(case: Case, expected: CaseStatus | str | None) -> None:
    """Refuse a step taken on a case read in ``expected`` that has since moved on (None:
    the caller did not say what it read)."""
    if expected is not None and case.status != CaseStatus(expected).value:
        raise ConflictError(
            N_("case {id} is {status}, not {expected}: it was moved meanwhile; reload it").format(
                id=case.id, status=case.status, expected=CaseStatus(expected).value
            )
        )


def move(
    session: Session,
    *,
    principal: Principal,
    workflow: Workflow,
    case_id: int,
    to: CaseStatus | str,
    note: str,
    handler: str = "",
    permission: Permission = Permission.CASES_MANAGE,
) -> Case:
    """Move a case to ``to`` if its workflow allows it, with a note (kept in the audit log,
    with numbers in it masked: :func:`~telereg.core.privacy.note_as_stored`).

    ``permission``: what the step needs (e.g. a partner agency reporting an outcome).
    """
    principal.require(permission)
    note = note_as_stored(note)
    case = session.get(Case, case_id)
    if case is None or case.domain != workflow.domain or case.kind != workflow.kind:
        raise no_such_case(
            N_("no {kind} case {id}").format(kind=workflow.kind, id=case_id),
            case,
            principal=principal,
        )
    try:
        target = CaseStatus(to)
    except ValueError as err:
        raise InputError(N_("unknown state {state}").format(state=repr(to))) from err
    if target not in workflow.allowed(case.status):
        allowed = ", ".join(s.value for s in workflow.allowed(case.status)) or "none"
        raise ConflictError(
            N_("case {id} is {status}; it can move to: {allowed}, not {target}").format(
                id=case_id, status=case.status, allowed=allowed, target=target.value
            )
        )
    if not note:
        raise InputError(N_("a note is required for every step of a case"))
    if target in workflow.needs_handler:
        if not handler.strip():
            raise InputError(
                N_("say who handles the case when it is {status}").format(status=target.value)
            )
        case.handler = handler.strip()[:200]
    previous = case.status
    # Compare and set: of two requests that both read the case in its earlier state (two
    # hand-overs of the same cases at once), only the first moves it.
    claimed = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == previous)
        .values(status=target.value)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            N_("case {id} was moved by someone else meanwhile; reload it").format(id=case_id)
        )
    case.status = target.value
    case.updated_at = utcnow()
    if target is CaseStatus.CLOSED:
        case.closed_at = case.updated_at
        # An outcome already recorded (a partner's disposal) stays; the note is in the audit.
        case.outcome = case.outcome or note
    audit.record(
        session,
        actor=principal.name,
        action=f"cases.{workflow.kind}.{target.value}",
        objects=[f"case:{case.id}"],
        reason=note,
        detail={"from": previous, "to": target.value, "handler": case.handler},
    )
    return case


def cases(
    session: Session, *, principal: Principal, workflow: Workflow, status: str | None = None
) -> list[Case]:
    principal.require(Permission.CASES_MANAGE)
    query = select(Case).where(Case.domain == workflow.domain, Case.kind == workflow.kind)
    if status:
        query = query.where(Case.status == status)
    return list(session.scalars(query.order_by(Case.opened_at)))


def counts(
    session: Session, *, principal: Principal, workflow: Workflow, by: str
) -> list[tuple[str, str, int]]:
    """(group, status, number of cases), grouped by ``handler`` or a ``subject`` key."""
    principal.require(Permission.CASES_MANAGE)
    group = Case.handler if by == "handler" else Case.subject[by].as_string()
    rows = session.execute(
        select(group, Case.status, func.count())
        .where(Case.domain == workflow.domain, Case.kind == workflow.kind)
        .group_by(group, Case.status)
    ).all()
    return sorted(("" if g is None else str(g), s, n) for g, s, n in rows)


#: A value re-identified for a case that does not name it.
NOT_ABOUT_VALUE = N_(
    "case {id} is not about this value: a case names the values it concerns (its line, the "
    "holder's ID number, the lines of an ID number)"
)


def mentions(case: Case, value: str) -> bool:
    """Whether the case's subject names ``value`` (a token): one of its values, or one in a
    list of them (an ID number's lines)."""
    for named in case.subject.values():
        if named == value or (isinstance(named, list) and value in named):
            return True
    return False


def managed_case(session: Session, *, principal: Principal, case_id: int) -> Case:
    """The case ``case_id``, of any workflow, for a principal who manages cases
    (NotFoundError if there is none)."""
    principal.require(Permission.CASES_MANAGE)
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(N_("no case {id}").format(id=case_id))
    return case


def case_about(session: Session, *, principal: Principal, case_id: int, value: str) -> Case:
    """The case ``case_id``, which a clear value is to be revealed for: a case the principal
    manages (NotFoundError if there is none) that names ``value`` (InputError if not)."""
    case = managed_case(session, principal=principal, case_id=case_id)
    if not mentions(case, value):
        raise InputError(NOT_ABOUT_VALUE.format(id=case_id))
    return case
