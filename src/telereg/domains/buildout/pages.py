"""Build-out pages: coverage maps and tables (figures come from the JSON API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from telereg.api.deps import RowId, SessionDep
from telereg.core.i18n import gettext
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.geography.contracts import CORRIDOR_KINDS
from telereg.web.deps import Csrf, FormError, form_step, require_page
from telereg.web.templating import render
from telereg.web.terms import PROJECT_STATUSES, operator_names

router = APIRouter(prefix="/buildout", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.DASHBOARD_READ)],
) -> Response:
    words = {value: gettext(label) for value, label in (PROJECT_STATUSES | CORRIDOR_KINDS).items()}
    return render(
        request,
        "buildout/dashboard.html",
        {
            "words": words,
            "operators": operator_names(session),
            # (a viewer reads the dashboard but not the obstacle cases: no link it cannot open)
            "can_manage_cases": principal.can(Permission.CASES_MANAGE),
        },
    )


@router.get("/obstacles", response_class=HTMLResponse)
def obstacles_page(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    error: FormError,
) -> Response:
    from telereg.domains.buildout.obstacles import obstacle_board

    board = obstacle_board(session, principal=principal)
    return render(
        request,
        "buildout/obstacles.html",
        {"board": board, "error": error, "operator_names": operator_names(session)},
    )


@router.post("/obstacles/{case_id}", dependencies=[Csrf])
def move_obstacle(
    request: Request,
    case_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    to: Annotated[str, Form(max_length=16)],
    note: Annotated[str, Form(max_length=2000)] = "",
    handler: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from telereg.cases.service import move
    from telereg.domains.buildout.obstacles import WORKFLOW

    return form_step(
        request,
        session,
        lambda: move(
            session,
            principal=principal,
            workflow=WORKFLOW,
            case_id=case_id,
            to=to,
            note=note,
            handler=handler,
        ),
        back="/buildout/obstacles",
        done=f"/buildout/obstacles#case-{case_id}",
    )
