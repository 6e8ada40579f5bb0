"""Re-identification of a pseudonym: a permission, a reason and an audit record."""

from __future__ import annotations

import re

from fastapi import APIRouter

from telereg.api.deps import Authenticated, SessionDep, SettingsDep
from telereg.api.schemas import ReidentifyIn, ReidentifyOut
from telereg.cases.service import case_about
from telereg.core.errors import InputError
from telereg.core.i18n import N_
from telereg.core.permissions import Permission
from telereg.core.privacy import TOKEN_HEX_CHARS, refusal_audited, reidentify

router = APIRouter(tags=["privacy"])

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
    "installation may require one (422 without). Every attempt is audited.",
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
