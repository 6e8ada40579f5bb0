"""Re-identification of a pseudonym: a permission, a reason and an audit record."""

from __future__ import annotations

from fastapi import APIRouter

from telereg.api.deps import Authenticated, SessionDep, SettingsDep
from telereg.api.schemas import ReidentifyIn, ReidentifyOut
from telereg.core.privacy import reidentify

router = APIRouter(tags=["privacy"])


@router.post(
    "/privacy/reidentify",
    summary="Reveal the clear value behind a token (audited, a refusal too)",
    description="Needs the `privacy.reidentify` permission (403), a reason that says why "
    "(422) and room in the user's daily limit (429). Every attempt is audited.",
)
def reidentify_token(
    body: ReidentifyIn,
    session: SessionDep,
    settings: SettingsDep,
    # (the permission is checked by reidentify, not by a dependency, so that a refusal is
    # audited with the token it was for)
    principal: Authenticated,
) -> ReidentifyOut:
    value = reidentify(
        session,
        settings=settings,
        principal=principal,
        token=body.token,
        reason=body.reason,
    )
    return ReidentifyOut(token=body.token, value=value)
