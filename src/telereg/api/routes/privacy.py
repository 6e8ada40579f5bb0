"""Re-identification of a pseudonym: a permission, a reason and an audit record; and the
requests for another user's approval that an installation may require first."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter

from telereg.api.deps import Authenticated, RowId, SessionDep, SettingsDep, require
from telereg.api.schemas import (
    ApprovalDecisionIn,
    ApprovalOut,
    ApprovalRequestIn,
    ApprovalWithdrawalIn,
    ReidentifyIn,
    ReidentifyOut,
)
from telereg.cases.service import case_about, managed_case
from telereg.core import approvals
from telereg.core.errors import InputError
from telereg.core.i18n import N_
from telereg.core.models import ReidentifyApproval
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.privacy import TOKEN_HEX_CHARS, refusal_audited, reidentify
from telereg.domains.fraud import casework as fraud_cases

router = APIRouter(tags=["privacy"])

NOTHING_TO_REVEAL = N_(
    "case {id} names no values to re-identify: approvals are asked for anti-fraud cases"
)

LAKE_TOKEN = re.compile(f"[0-9a-f]{{{TOKEN_HEX_CHARS}}}")
NOT_A_LAKE_TOKEN = N_(
    "token: not a lake token ({length} hexadecimal characters, as suspects and cases show "
    "them); the row tokens of a download (r…) link to nothing outside it and cannot be "
    "re-identified"
)


@router.post(
    "/privacy/reidentify",
    summary="Reveal the clear value behind a token (audited, a refusal too)",
    description="Needs the `privacy.reidentify` permission (403), a reason that says why "
    "(422) and room in the user's daily limit (429). With `case_id`, the case must name the "
    "token (422; 404 for no such case) and the look is in the case's history; an "
    "installation may require one (422 without), and another user's approval for the case "
    "(403, `approval-required`, without one in force: see `/privacy/approvals`). Every "
    "attempt is audited.",
)
def reidentify_token(
    body: ReidentifyIn,
    session: SessionDep,
    settings: SettingsDep,
    # (the permission is checked by reidentify, not by a dependency, so that a refusal is
    # audited with the token it was for)
    principal: Authenticated,
) -> ReidentifyOut:
    if not LAKE_TOKEN.fullmatch(body.token):
        raise InputError(NOT_A_LAKE_TOKEN.format(length=TOKEN_HEX_CHARS))
    if body.case_id is not None:
        named = [f"token:{body.token}", f"case:{body.case_id}"]
        with refusal_audited(session, principal=principal, objects=named, reason=body.reason):
            principal.require(Permission.PRIVACY_REIDENTIFY)  # (before the case is read)
            case_about(session, principal=principal, case_id=body.case_id, value=body.token)
    value = reidentify(
        session,
        settings=settings,
        principal=principal,
        token=body.token,
        reason=body.reason,
        case_id=body.case_id,
    )
    return ReidentifyOut(token=body.token, value=value)


def _shown(asked: ReidentifyApproval) -> ApprovalOut:
    return ApprovalOut.model_validate(asked).model_copy(
        update={"in_force": approvals.in_force(asked)}
    )


@router.post(
    "/privacy/approvals",
    status_code=201,
    summary="Ask another user's approval to re-identify the values of a case (four eyes)",
    description="For installations with `TELEREG_REIDENTIFY_NEEDS_APPROVAL` (422 otherwise). "
    "Needs the `privacy.reidentify` permission (403), a case (404 if none) and a reason that "
    "says why (422); refused while the user has a pending request or an approval in force "
    "for the case (409). Audited as `privacy.approval_requested`.",
)
def request_approval(
    body: ApprovalRequestIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.PRIVACY_REIDENTIFY)],
) -> ApprovalOut:
    case = managed_case(session, principal=principal, case_id=body.case_id)
    if (case.domain, case.kind) != (fraud_cases.WORKFLOW.domain, fraud_cases.WORKFLOW.kind):
        # (the values re-identified are the lines, holders and devices of anti-fraud cases)
        raise InputError(NOTHING_TO_REVEAL.format(id=case.id))
    asked = approvals.request_approval(
        session, settings=settings, principal=principal, case_id=body.case_id, reason=body.reason
    )
    return _shown(asked)


@router.get(
    "/privacy/approvals",
    summary="Requests to re-identify: the user's own, and every pending one for an approver",
    description="Newest first. Needs `privacy.reidentify` or `privacy.approve` (403).",
)
def list_approvals(session: SessionDep, principal: Authenticated) -> list[ApprovalOut]:
    return [_shown(a) for a in approvals.visible_requests(session, principal=principal)]


@router.post(
    "/privacy/approvals/{request_id}/decision",
    summary="Approve or refuse another user's request to re-identify a case's values",
    description="Needs `privacy.approve` (403); never one's own request (403); a note (422); "
    "a request still pending (409 once decided, 404 for none). An approval lasts "
    "`TELEREG_REIDENTIFY_APPROVAL_HOURS`. Audited, a refused decision too.",
)
def decide_approval(
    request_id: RowId,
    body: ApprovalDecisionIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: Authenticated,
) -> ApprovalOut:
    # (the permission is checked by the service, which audits a refused decision)
    asked = approvals.decide(
        session,
        settings=settings,
        principal=principal,
        request_id=request_id,
        approve=body.decision == "approved",
        note=body.note,
    )
    return _shown(asked)


@router.post(
    "/privacy/approvals/{request_id}/withdrawal",
    summary="Withdraw a pending request or an approval (its requester, or an approver)",
    description="Needs a note (422); 409 when it is refused or withdrawn already. Audited.",
)
def withdraw_approval(
    request_id: RowId,
    body: ApprovalWithdrawalIn,
    session: SessionDep,
    principal: Authenticated,
) -> ApprovalOut:
    asked = approvals.withdraw(session, principal=principal, request_id=request_id, note=body.note)
    return _shown(asked)
