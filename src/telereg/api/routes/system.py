"""Health, status and the caller's own identity."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter

from telereg import __version__
from telereg.api.deps import Authenticated, Public, SessionDep, SettingsDep, require
from telereg.api.schemas import MeOut
from telereg.core.permissions import ROLE_PERMISSIONS, Permission
from telereg.core.principal import Principal
from telereg.system.status import system_status

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    dependencies=[Public],
    summary="Liveness check",
    openapi_extra={"security": []},  # (asks for no token)
)
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/status", summary="System status: datasets, submissions, cases, users")
async def status(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.STATUS_READ)],
) -> dict[str, Any]:
    return asdict(system_status(session, settings=settings, principal=principal))


@router.get("/me", summary="Who am I, and what may I do")
async def me(principal: Authenticated) -> MeOut:
    return MeOut(
        username=principal.name,
        role=principal.role,
        operator=principal.operator_code,
        agency=principal.agency_code,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[principal.role]),
    )
