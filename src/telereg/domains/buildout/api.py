"""Build-out JSON API: every figure the build-out pages show."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from telereg.api.deps import SessionDep, SettingsDep, require
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.domains.buildout import service
from telereg.reference.regions import Level

router = APIRouter(prefix="/buildout", tags=["buildout"])
Reader = Annotated[Principal, require(Permission.DASHBOARD_READ)]
Period = Annotated[str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


@router.get("/coverage", summary="Corridor and key-place coverage per operator and by any")
def coverage(
    session: SessionDep, settings: SettingsDep, principal: Reader, period: Period = None
) -> dict[str, Any]:
    return service.coverage(
        session, settings=settings, principal=principal, period=period
    ).as_dict()


@router.get("/sites", summary="Sites in service per city, operator, technology; 5G per 10k people")
def sites(
    session: SessionDep, settings: SettingsDep, principal: Reader, period: Period = None
) -> dict[str, Any]:
    return service.site_figures(session, settings=settings, principal=principal, period=period)


@router.get("/map/{level}", summary="GeoJSON of the region's cities or counties, for maps")
def region_map(level: Level, settings: SettingsDep, principal: Reader) -> dict[str, Any]:
    del principal
    from telereg.geography.service import region

    return region(settings).geojson(level)


@router.get("/figures", summary="Gigabit indicators and cities, targets, projects, BeiDou timing")
def figures(
    session: SessionDep, settings: SettingsDep, principal: Reader, period: Period = None
) -> dict[str, Any]:
    return service.figures(session, settings=settings, principal=principal, period=period)
