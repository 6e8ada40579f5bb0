"""Re-identification of a pseudonym: a permission, a reason and an audit record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from telereg.api.deps import SessionDep, SettingsDep, require
from telereg.api.schemas import ReidentifyIn, ReidentifyOut
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.privacy import Vault, reidentify

router = APIRouter(tags=["privacy"])


@router.post("/privacy/reidentify", summary="Reveal the clear value behind a token (audited)")
def reidentify_token(
    body: ReidentifyIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.PRIVACY_REIDENTIFY)],
) -> ReidentifyOut:
    value = reidentify(
        session,
        principal=principal,
        vault=Vault.of(settings),
        token=body.token,
        reason=body.reason,
    )
    return ReidentifyOut(token=body.token, value=value)
