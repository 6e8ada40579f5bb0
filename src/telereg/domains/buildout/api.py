"""Build-out JSON API: every figure the build-out pages show."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from telereg.api.deps import RowId, SessionDep, SettingsDep, require
from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
from telereg.core.periods import MONTH_FIELD
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.domains.buildout import service
from telereg.reference.regions import Level

router = APIRouter(prefix="/buildout", tags=["buildout"])
Reader = Annotated[Principal, require(Permission.DASHBOARD_READ)]
Period = Annotated[str | None, Query(pattern=MONTH_FIELD)]


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
def region_map(
    level: Level,
    settings: SettingsDep,
    # Boundaries are public reference data: every signed-in role's maps draw on them (an
    # operator's fraud page too, which may not read the build-out dashboards).
    principal: Annotated[Principal, require(Permission.STATUS_READ)],
) -> dict[str, Any]:
    del principal
    from telereg.geography.service import region

    return region(settings).geojson(level)


@router.get("/figures", summary="Gigabit indicators and cities, targets, projects, BeiDou timing")
def figures(
    session: SessionDep, settings: SettingsDep, principal: Reader, period: Period = None
) -> dict[str, Any]:
    return service.figures(session, settings=settings, principal=principal, period=period)


@router.get("/export/{table}", summary="A build-out table as CSV or XLSX")
def export(
    table: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    period: Period = None,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",  # noqa: A002
) -> Response:
    from telereg.domains.buildout.export import TABLES, rows_of, to_csv, to_xlsx

    if table not in TABLES:
        raise NotFoundError(
            N_("no table {table} (tables: {tables})").format(
                table=repr(table), tables=", ".join(TABLES)
            )
        )
    needs_coverage = table in ("corridors", "gaps", "key_places")
    coverage_report = (
        service.coverage(session, settings=settings, principal=principal, period=period).as_dict()
        if needs_coverage
        else {}
    )
    figures_report = (
        service.figures(session, settings=settings, principal=principal, period=period)
        if table in ("gigabit_cities", "gigabit_counties", "targets")
        else {}
    )
    sites_report = (
        service.site_figures(session, settings=settings, principal=principal, period=period)
        if table.startswith("site_counts")
        else {}
    )
    rows = rows_of(table, coverage_report, figures_report, sites_report)
    shown = (coverage_report or figures_report or sites_report)["period"]
    name = f"buildout-{table}-{shown}"
    if format == "xlsx":
        return Response(
            to_xlsx(rows, table),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    note: str = Field(min_length=1, max_length=2000)
    handler: str = Field("", max_length=200)


@router.get("/obstacles", summary="Site-obstacle cases with their age; counts per department")
def obstacles(
    session: SessionDep, principal: Annotated[Principal, require(Permission.CASES_MANAGE)]
) -> dict[str, Any]:
    from telereg.domains.buildout.obstacles import obstacle_board

    return obstacle_board(session, principal=principal)


@router.post("/obstacles/{case_id}/move", summary="Refer, resolve or close a site-obstacle case")
def move_obstacle(
    case_id: RowId,
    body: MoveIn,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.CASES_MANAGE)],
) -> dict[str, Any]:
    from telereg.cases.service import move
    from telereg.domains.buildout.obstacles import WORKFLOW

    case = move(
        session,
        principal=principal,
        workflow=WORKFLOW,
        case_id=case_id,
        to=body.to,
        note=body.note,
        handler=body.handler,
    )
    return {"id": case.id, "status": case.status, "handler": case.handler}


@router.get(
    "/report",
    summary="The periodic analysis report for the province or a city (PDF or HTML)",
    response_class=Response,
)
def report(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    region: Annotated[str, Query(pattern=r"^[1-9][0-9]{5}$")],
    period: Annotated[str, Query(pattern=MONTH_FIELD)],
    format: Annotated[str, Query(pattern="^(pdf|html)$")] = "pdf",  # noqa: A002
    lang: Annotated[str, Query(pattern="^(zh_CN|en)$")] = "zh_CN",
) -> Response:
    from telereg.reports.buildout import buildout_report

    content = buildout_report(
        session,
        settings=settings,
        principal=principal,
        region_code=region,
        period=period,
        language=lang,
        output="pdf" if format == "pdf" else "html",
    )
    if format == "pdf":
        return Response(
            content,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="buildout-{region}-{period}.pdf"'
            },
        )
    return Response(content, media_type="text/html; charset=utf-8")
