"""Build-out pages: coverage maps and tables (figures come from the JSON API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.web.deps import require_page
from telereg.web.templating import render

router = APIRouter(prefix="/buildout", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request, principal: Annotated[Principal, require_page(Permission.DASHBOARD_READ)]
) -> Response:
    del principal
    return render(request, "buildout/dashboard.html")
