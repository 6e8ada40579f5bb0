"""Administration pages: users and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telereg.api.deps import SessionDep
from telereg.core import accounts, audit
from telereg.core.errors import TeleregError
from telereg.core.i18n import gettext as _
from telereg.core.i18n import localise
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.web.deps import Csrf, require_page
from telereg.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

AUDIT_PAGE_SIZE = 50


def _users_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    error: str | None = None,
    created: tuple[str, str | None] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/users.html",
        {
            "users": accounts.list_users(session, principal=principal),
            "operators": accounts.list_operators(session),
            "agencies": accounts.list_agencies(session),
            "roles": [r.value for r in Role],
            "error": error,
            "created": created,
            "can_manage": principal.can(Permission.USERS_MANAGE),
        },
        status_code=status_code,
    )


@router.get("/users", response_class=HTMLResponse)
def users(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.USERS_READ)],
) -> Response:
    return _users_page(request, session, principal)


@router.post("/users", response_class=HTMLResponse, dependencies=[Csrf])
def add_user(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.USERS_MANAGE)],
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    operator: Annotated[str, Form(max_length=32)] = "",
    agency: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        with session.begin_nested():
            _, password = accounts.create_user(
                session,
                principal=principal,
                username=username.strip(),
                role=role,
                operator=operator or None,
                agency=agency or None,
                display_name=display_name,
            )
    except TeleregError as err:
        refusal = localise(err.message)
        return _users_page(request, session, principal, error=refusal, status_code=422)
    return _users_page(request, session, principal, created=(username, password), status_code=201)


@router.post("/users/{username}/disable", dependencies=[Csrf])
def disable_user(
    username: str,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.USERS_MANAGE)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    accounts.disable_user(session, principal=principal, username=username, reason=reason)
    return RedirectResponse("/admin/users", status_code=303)


@router.get(
    "/audit", response_class=HTMLResponse, dependencies=[require_page(Permission.AUDIT_READ)]
)
def audit_log(
    request: Request,
    session: SessionDep,
    actor: str | None = None,
    action: str | None = None,
    obj: Annotated[str | None, Query(alias="object", max_length=200)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    rows, total = audit.entries(
        session,
        actor=actor or None,
        action=action or None,
        obj=obj or None,
        limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))
    return render(
        request,
        "admin/audit.html",
        {
            "entries": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "actor": actor or "",
            "action": action or "",
            "object": obj or "",
            "title": _("Audit log"),
        },
    )
