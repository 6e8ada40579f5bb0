"""Administration pages: users, the audit log and the approvers' queue of requests to
re-identify."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telereg.api.deps import RowId, SessionDep, SettingsDep, client_of
from telereg.core import accounts, approvals, audit
from telereg.core.db import session_scope
from telereg.core.errors import TeleregError
from telereg.core.i18n import gettext as _
from telereg.core.i18n import localise
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.web.deps import Csrf, FormError, form_step, require_page
from telereg.web.downloads import csv_download
from telereg.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

AUDIT_PAGE_SIZE = 50
#: A day as the audit page's date fields send it (empty: no bound).
_DAY = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"


def _users_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    error: str | None = None,
    created: tuple[str, str | None] | None = None,
    sent: dict[str, str] | None = None,
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
            # (a refused form comes back filled in as it was sent)
            "sent": sent or {},
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
        sent = {"username": username, "display_name": display_name, "role": role}
        sent |= {"operator": operator, "agency": agency}
        return _users_page(request, session, principal, error=refusal, sent=sent, status_code=422)
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
    first: Annotated[str, Query(alias="from", pattern=_DAY)] = "",
    last: Annotated[str, Query(alias="to", pattern=_DAY)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    since, until = audit.day_bounds(first, last)
    rows, total = audit.entries(
        session,
        actor=actor or None,
        action=action or None,
        obj=obj or None,
        since=since,
        until=until,
        limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))
    chosen = {"actor": actor or "", "action": action or "", "object": obj or ""}
    chosen |= {"from": first, "to": last}
    return render(
        request,
        "admin/audit.html",
        {
            "entries": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "chosen": chosen,
            "title": _("Audit log"),
        },
    )


@router.get("/audit.csv")
def audit_csv(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.AUDIT_READ)],
    actor: str | None = None,
    action: str | None = None,
    obj: Annotated[str | None, Query(alias="object", max_length=200)] = None,
    first: Annotated[str, Query(alias="from", pattern=_DAY)] = "",
    last: Annotated[str, Query(alias="to", pattern=_DAY)] = "",
) -> Response:
    """Every entry the page's filters select, oldest first; the export is itself audited."""
    since, until = audit.day_bounds(first, last)
    export = audit.export(
        session,
        principal=principal,
        client=client_of(request),
        actor=actor or None,
        action=action or None,
        obj=obj or None,
        since=since,
        until=until,
    )
    session.commit()  # recorded before any entry leaves
    export_id = export.id
    header = [
        "#",
        _("When (UTC)"),
        _("Who"),
        _("What"),
        _("Objects"),
        _("Why"),
        _("Details"),
        _("Client"),
    ]

    def rows() -> Iterator[list[str]]:
        # Its own session: the request's closes when the handler returns, before the file ends.
        with session_scope(settings) as reading:
            for entry in audit.exported(reading, export_id):
                yield audit.export_row(entry)

    return csv_download(header, rows(), f"audit-{export_id}")


@router.get("/approvals", response_class=HTMLResponse)
def approvals_queue(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.PRIVACY_APPROVE)],
    error: FormError,
) -> Response:
    """The requests to re-identify a case's values that await a decision (four eyes), and
    the latest decided."""
    pending, decided = approvals.approvers_queue(session, principal=principal)
    return render(
        request,
        "admin/approvals.html",
        {
            "pending": pending,
            "decided": decided,
            "needed": settings.reidentify_needs_approval,
            "hours": settings.reidentify_approval_hours,
            "in_force": approvals.in_force,
            "error": error,
            "title": _("Approvals to re-identify"),
        },
    )


@router.post("/approvals/{request_id}", dependencies=[Csrf])
def decide_approval(
    request: Request,
    request_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.PRIVACY_APPROVE)],
    decision: Annotated[str, Form(pattern="^(approved|refused|withdrawn)$")],
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Approve or refuse a pending request, or withdraw an approval, with a note."""

    def step() -> None:
        if decision == "withdrawn":
            approvals.withdraw(session, principal=principal, request_id=request_id, note=note)
        else:
            approvals.decide(
                session,
                settings=settings,
                principal=principal,
                request_id=request_id,
                approve=decision == "approved",
                note=note,
            )

    return form_step(request, session, step, back="/admin/approvals", done="/admin/approvals")
