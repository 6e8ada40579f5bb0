"""Approvals of re-identification: the four-eyes rule.

With ``settings.reidentify_needs_approval``, a user reveals the clear values of a case only
while holding an approval for it: they ask, with a reason, and another user who may approve
(``privacy.approve``, never the requester) grants or refuses the request with a note. A
granted approval lasts ``settings.reidentify_approval_hours``, unless withdrawn first. The
reveal itself checks it (:func:`telereg.core.privacy.require_approval`). Every request,
decision and withdrawal is audited naming the case (``case:<id>``) and the request
(``approval:<id>``), a refused decision too.

The caller checks that the case exists and that the user may manage it: cases are a layer
above the core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from telereg.core import audit, privacy
from telereg.core.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from telereg.core.i18n import N_
from telereg.core.models import ApprovalStatus, ReidentifyApproval
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings

#: The audit actions of a request, its decisions, its withdrawal, and a decision refused.
REQUESTED = "privacy.approval_requested"
GRANTED = "privacy.approval_granted"
REFUSED = "privacy.approval_refused"
WITHDRAWN = "privacy.approval_withdrawn"
DECISION_REFUSED = "privacy.approval_decision_refused"
REQUEST_REFUSED = "privacy.approval_request_refused"
WITHDRAWAL_REFUSED = "privacy.approval_withdrawal_refused"

NOT_NEEDED = N_(
    "re-identification here needs no approval (TELEREG_REIDENTIFY_NEEDS_APPROVAL is off): "
    "nothing to ask for"
)
ALREADY_ASKED = N_(
    "you already asked to re-identify the values of case {id}: request {request} awaits an "
    "approver's decision"
)
ALREADY_APPROVED = N_(
    "you already hold an approval to re-identify the values of case {id}, until {at} UTC"
)
NO_SUCH_REQUEST = N_("no approval request {id}")
OWN_REQUEST = N_(
    "request {id} is your own: another user who may approve re-identification decides on it"
)
NOTE_NEEDED = N_("write a note for the requester: why you approve or refuse the request")
WITHDRAWAL_NOTE_NEEDED = N_("write a note: why the request or approval is withdrawn")
ALREADY_DECIDED = N_("request {id} was decided already ({status}, by {by}): reload the page")
NOT_WITHDRAWABLE = N_(
    "request {id} is {status}: only a pending request or an approval can be withdrawn"
)
NOT_YOURS = N_("request {id} is another user's: only its requester or an approver can withdraw it")


def objects_of(asked: ReidentifyApproval) -> list[str]:
    """What the audit entries about a request name: its case, then the request itself."""
    return [f"case:{asked.case_id}", f"approval:{asked.id}"]


def in_force(asked: ReidentifyApproval, now: datetime | None = None) -> bool:
    """Whether ``asked`` lets its requester reveal its case's values now."""
    return (
        asked.status == ApprovalStatus.APPROVED.value
        and asked.expires_at is not None
        and asked.expires_at > (now or datetime.now(UTC))
    )


def standing(session: Session, *, actor: str, case_id: int) -> ReidentifyApproval | None:
    """What a page shows of ``actor``'s approval for case ``case_id``: the approval in force,
    if any, else their latest request (pending, refused, withdrawn or expired), else None."""
    held = privacy.approval_in_force(session, actor=actor, case_id=case_id)
    return held or privacy.latest_request(session, actor=actor, case_id=case_id)


def request_approval(
    session: Session, *, settings: Settings, principal: Principal, case_id: int, reason: str
) -> ReidentifyApproval:
    """Ask another user's approval to reveal the values of case ``case_id`` (which the
    caller has checked), for ``reason`` (kept with numbers masked; it must say why, as a
    reveal's reason must: :func:`privacy.reidentification_reason`). Refused when the
    installation asks for no approvals, and while the principal has a pending request or an
    approval in force for the case (ConflictError). A refusal is audited
    (``privacy.approval_request_refused``)."""
    named = [f"case:{case_id}"]
    with privacy.refusal_audited(
        session, principal=principal, objects=named, reason=reason, action=REQUEST_REFUSED
    ):
        return _requested(
            session, settings=settings, principal=principal, case_id=case_id, reason=reason
        )


def _requested(
    session: Session, *, settings: Settings, principal: Principal, case_id: int, reason: str
) -> ReidentifyApproval:
    principal.require(Permission.PRIVACY_REIDENTIFY)
    if not settings.reidentify_needs_approval:
        raise InputError(NOT_NEEDED)
    kept = privacy.reidentification_reason(reason)
    held = privacy.approval_in_force(session, actor=principal.name, case_id=case_id)
    if held is not None and held.expires_at is not None:
        raise ConflictError(
            ALREADY_APPROVED.format(id=case_id, at=held.expires_at.strftime("%Y-%m-%d %H:%M"))
        )
    latest = privacy.latest_request(session, actor=principal.name, case_id=case_id)
    if latest is not None and latest.status == ApprovalStatus.PENDING.value:
        raise ConflictError(ALREADY_ASKED.format(id=case_id, request=latest.id))
    asked = ReidentifyApproval(
        case_id=case_id,
        requested_by=principal.name,
        reason=kept,
        requested_at=datetime.now(UTC),
        status=ApprovalStatus.PENDING.value,
    )
    session.add(asked)
    session.flush()
    audit.record(
        session, actor=principal.name, action=REQUESTED, objects=objects_of(asked), reason=kept
    )
    return asked


def decide(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    request_id: int,
    approve: bool,
    note: str,
) -> ReidentifyApproval:
    """Approve (for ``settings.reidentify_approval_hours`` from now) or refuse another user's
    pending request, with a note (kept with numbers masked). Refused, and the refusal
    audited: without ``privacy.approve`` or for one's own request (PermissionDeniedError),
    with no note (InputError), for a request already decided, meanwhile too
    (ConflictError)."""
    decision = ApprovalStatus.APPROVED if approve else ApprovalStatus.REFUSED
    named = [f"approval:{request_id}"]
    with privacy.refusal_audited(
        session,
        principal=principal,
        objects=named,
        reason=note,
        context={"decision": decision.value},
        action=DECISION_REFUSED,
    ):
        principal.require(Permission.PRIVACY_APPROVE)
        asked = session.get(ReidentifyApproval, request_id)
        if asked is None:
            raise NotFoundError(NO_SUCH_REQUEST.format(id=request_id))
        named[:] = objects_of(asked)
        if asked.requested_by == principal.name:
            raise PermissionDeniedError(OWN_REQUEST.format(id=request_id))
        kept = privacy.note_as_stored(note)
        if not kept:
            raise InputError(NOTE_NEEDED)
        now = datetime.now(UTC)
        expires = now + timedelta(hours=settings.reidentify_approval_hours) if approve else None
        # A compare-and-set: of two decisions at once, the second finds it decided.
        done = session.execute(
            update(ReidentifyApproval)
            .where(
                ReidentifyApproval.id == request_id,
                ReidentifyApproval.status == ApprovalStatus.PENDING.value,
            )
            .values(
                status=decision.value,
                decided_by=principal.name,
                decided_at=now,
                note=kept,
                expires_at=expires,
            )
            .execution_options(synchronize_session=False)
        )
        session.refresh(asked)
        if getattr(done, "rowcount", 0) != 1:
            raise ConflictError(
                ALREADY_DECIDED.format(id=request_id, status=asked.status, by=asked.decided_by)
            )
    detail = {"requested_by": asked.requested_by}
    if expires is not None:
        detail["expires_at"] = expires.isoformat(timespec="seconds")
    audit.record(
        session,
        actor=principal.name,
        action=GRANTED if approve else REFUSED,
        objects=objects_of(asked),
        reason=kept,
        detail=detail,
    )
    return asked


def withdraw(
    session: Session, *, principal: Principal, request_id: int, note: str
) -> ReidentifyApproval:
    """Withdraw a pending request or an approval: its requester (who no longer needs it) or
    an approver (who finds it should not hold), with a note. From then on it lets no one
    reveal anything. A refusal is audited (``privacy.approval_withdrawal_refused``)."""
    named = [f"approval:{request_id}"]
    with privacy.refusal_audited(
        session, principal=principal, objects=named, reason=note, action=WITHDRAWAL_REFUSED
    ):
        return _withdrawn(
            session, principal=principal, request_id=request_id, note=note, named=named
        )


def _withdrawn(
    session: Session, *, principal: Principal, request_id: int, note: str, named: list[str]
) -> ReidentifyApproval:
    if not principal.can(Permission.PRIVACY_APPROVE):
        principal.require(Permission.PRIVACY_REIDENTIFY)
    asked = session.get(ReidentifyApproval, request_id)
    if asked is None:
        raise NotFoundError(NO_SUCH_REQUEST.format(id=request_id))
    named[:] = objects_of(asked)
    if asked.requested_by != principal.name and not principal.can(Permission.PRIVACY_APPROVE):
        raise PermissionDeniedError(NOT_YOURS.format(id=request_id))
    kept = privacy.note_as_stored(note)
    if not kept:
        raise InputError(WITHDRAWAL_NOTE_NEEDED)
    open_states = (ApprovalStatus.PENDING.value, ApprovalStatus.APPROVED.value)
    done = session.execute(
        update(ReidentifyApproval)
        .where(ReidentifyApproval.id == request_id, ReidentifyApproval.status.in_(open_states))
        .values(
            status=ApprovalStatus.WITHDRAWN.value,
            withdrawn_by=principal.name,
            withdrawn_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(asked)
    if getattr(done, "rowcount", 0) != 1:
        raise ConflictError(NOT_WITHDRAWABLE.format(id=request_id, status=asked.status))
    audit.record(
        session,
        actor=principal.name,
        action=WITHDRAWN,
        objects=objects_of(asked),
        reason=kept,
        detail={"requested_by": asked.requested_by},
    )
    return asked


def visible_requests(
    session: Session, *, principal: Principal, limit: int = 200
) -> list[ReidentifyApproval]:
    """Newest first: the principal's own requests and, for an approver, every pending one."""
    approver = principal.can(Permission.PRIVACY_APPROVE)
    if not approver:
        principal.require(Permission.PRIVACY_REIDENTIFY)
    shown = ReidentifyApproval.requested_by == principal.name
    if approver:
        shown = or_(shown, ReidentifyApproval.status == ApprovalStatus.PENDING.value)
    found = select(ReidentifyApproval).where(shown)
    return list(session.scalars(found.order_by(ReidentifyApproval.id.desc()).limit(limit)))


def approvers_queue(
    session: Session, *, principal: Principal, decided: int = 50
) -> tuple[list[ReidentifyApproval], list[ReidentifyApproval]]:
    """For an approver: every pending request, oldest first, and the ``decided`` latest
    decisions (or withdrawals), newest first."""
    principal.require(Permission.PRIVACY_APPROVE)
    pending = select(ReidentifyApproval).where(
        ReidentifyApproval.status == ApprovalStatus.PENDING.value
    )
    done = select(ReidentifyApproval).where(
        ReidentifyApproval.status != ApprovalStatus.PENDING.value
    )
    return (
        list(session.scalars(pending.order_by(ReidentifyApproval.id))),
        list(session.scalars(done.order_by(ReidentifyApproval.id.desc()).limit(decided))),
    )
