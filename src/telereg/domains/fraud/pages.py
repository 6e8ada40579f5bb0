"""Anti-fraud pages: the dashboard, a suspect line, the case queue and the liaison's view.

Figures come from the JSON API (``/api/v1/fraud``); the case pages post forms.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from telereg.api.deps import RowId, SessionDep, SettingsDep
from telereg.api.uploads import read_small_file
from telereg.cases.models import CaseStatus
from telereg.core import accounts, approvals, audit, i18n
from telereg.core.errors import PermissionDeniedError, TeleregError
from telereg.core.i18n import localise
from telereg.core.periods import MONTH_FIELD, OPTIONAL_MONTH_FIELD
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import casework, findings, handover, service
from telereg.reference.directory import POLICE
from telereg.reference.regions import load_regions
from telereg.web.deps import (
    Csrf,
    FormError,
    SignedIn,
    form_step,
    refused,
    require_page,
    verify_csrf,
)
from telereg.web.downloads import csv_download
from telereg.web.templating import render
from telereg.web.terms import (
    APPROVAL_STEPS,
    agency_names,
    case_title,
    names_of,
    operator_names,
    translated_case_words,
    translated_signals,
)

router = APIRouter(prefix="/fraud", include_in_schema=False)
CASES_PER_PAGE = 50
#: A case kind or order a page may be asked for (or none).
_KIND = f"^({'|'.join(casework.CASE_KINDS)})?$"
_ORDER = f"^({'|'.join(casework.CASE_ORDERS)})?$"
#: An operator's code as the queue's filter sends it (or none).
_OPERATOR = rf"^({accounts.CODE})?$"


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    error: FormError,
    period: str = "",
) -> Response:
    findings.visible_operator(principal)  # who may not read lines gets the permission page
    can_scan = principal.can(Permission.ANALYSIS_RUN)
    periods = service.scanned_periods(settings)
    shown = period if period in periods else (periods[0] if periods and not period else "")
    note = service.load_summary(settings, shown).get("model", "") if shown else ""
    return render(
        request,
        "fraud/dashboard.html",
        {
            "period": period,
            "periods": periods,
            "model_note": localise(note),
            "signals": translated_signals(),
            "operator_names": operator_names(session),
            "case_words": translated_case_words(),
            "can_scan": can_scan,
            "can_manage_cases": principal.can(Permission.CASES_MANAGE),
            "scannable": service.scannable_periods(session) if can_scan else [],
            "error": error,
        },
    )


@router.get("/suspects.csv")
def suspects_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
    operator: Annotated[str, Query(max_length=32)] = "",
    city: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """The dashboard's suspect list as filtered, every page of it, in the reader's language."""
    shown = service.latest_period(settings, period or None)
    listed = findings.suspect_list(
        settings,
        principal=principal,
        period=shown,
        kind=kind or None,
        operator=operator or None,
        city=city or None,
        limit=None,
    )
    filters = {"period": shown, "kind": kind, "operator": operator, "city": city}
    audit.record_download(session, actor=principal.name, what="suspects.csv", filters=filters)
    _ = i18n.gettext
    cities, separator = _city_names(settings), _list_separator()
    signals = translated_signals()
    operators = operator_names(session)
    kinds = {"sim_box": _("SIM box"), "card": _("card-breaking")}
    header = [_("Line (token)"), _("Kind"), _("Operator"), _("City"), _("Score")]
    header += [_("Calls a day"), _("Why")]

    def rows() -> Iterator[list[object]]:
        for s in listed["suspects"]:
            why = separator.join(signals.get(code, code) for code in s["rules"])
            place = cities.get(s["home_city"], s["home_city"])
            operator = operators.get(s["operator"], s["operator"])
            row = [s["line"], kinds[s["kind"]], operator, place, s["score"]]
            yield [*row, s["calls_per_day"], why]

    return csv_download(header, rows(), f"suspects-{shown}")


def _city_names(settings: Settings) -> dict[str, str]:
    """The region's cities, code → name in the reader's language (for downloads)."""
    chinese = i18n.in_chinese()
    return {
        r.code: r.name if chinese else r.name_en for r in load_regions(settings.region_code).cities
    }


def _list_separator() -> str:
    return "、" if i18n.in_chinese() else ", "


@router.get("/over-limit.csv")
def over_limit_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
) -> Response:
    """The dashboard's ID numbers over the card limit, all of them (an operator's user: its
    own), in the reader's language."""
    shown = service.latest_period(settings, period or None)
    listed = findings.ids_over_limit(settings, principal=principal, period=shown, limit=None)
    audit.record_download(
        session, actor=principal.name, what="over-limit.csv", filters={"period": shown}
    )
    _ = i18n.gettext
    operators = operator_names(session)
    header = [_("ID number (token)"), _("Operator"), _("Active cards at the operator")]
    header += [_("At all operators")]
    rows = (
        [
            r["id_number"],
            operators.get(r["operator"], r["operator"]),
            r["cards"],
            r["all_operators"],
        ]
        for r in listed["ids"]
    )
    return csv_download(header, rows, f"ids-over-limit-{shown}")


@router.get("/identity.csv")
def identity_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
) -> Response:
    """The dashboard's cards whose holder is likely not the user, all of them (an operator's
    user: its own), in the reader's language."""
    shown = service.latest_period(settings, period or None)
    listed = findings.identity_list(settings, principal=principal, period=shown, limit=None)
    audit.record_download(
        session, actor=principal.name, what="identity.csv", filters={"period": shown}
    )
    _ = i18n.gettext
    cities, separator = _city_names(settings), _list_separator()
    operators = operator_names(session)
    signals = translated_signals()
    header = [_("Line (token)"), _("Operator"), _("ID number (token)"), _("Registered in")]
    header += [_("Activated"), _("ID numbers on its handset"), _("Why")]
    rows = (
        [
            c["line"],
            operators.get(c["operator"], c["operator"]),
            c["id_number"],
            cities.get(c["home_city"], c["home_city"]),
            c["activated_at"],
            c["imei_identities"],
            separator.join(signals.get(code, code) for code in c["signals"]),
        ]
        for c in listed["cards"]
    )
    return csv_download(header, rows, f"identity-{shown}")


def case_weight(subject: dict[str, Any]) -> str:
    """What a case weighs as pages show it: a SIM-box or domain case's score, an ID
    number's active cards, a card case's number of signals (what
    ``casework.case_priority`` orders by); empty when it has none of them."""
    score = subject.get("score")
    if isinstance(score, int | float):
        return f"{score:g}"
    cards = subject.get("cards")
    if isinstance(cards, int):
        return i18n.gettext("{n} cards").format(n=cards)
    signals = subject.get("signals")
    return i18n.gettext("{n} signals").format(n=len(signals)) if signals else ""


def evidence_figure(name: str, value: float) -> str:
    """A case's figure as a suspect's page shows it: a flag as yes or no, a share as a
    percentage, other figures with thousands separators and at most two decimals."""
    if name in casework.FLAG_EVIDENCE:
        return i18n.gettext("yes") if value else i18n.gettext("no")
    if name.endswith("_share") or name == "novelty":
        return f"{value:.1%}"
    return f"{int(value):,}" if float(value).is_integer() else f"{round(value, 2):,}"


@router.post("/scans", dependencies=[Csrf])
def start_scan(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.ANALYSIS_RUN)],
    period: Annotated[str, Form(pattern=MONTH_FIELD)],
) -> Response:
    """Start a month's scan as a job and follow it on the job's page."""
    try:
        job = service.start_scan(session, settings, principal=principal, period=period)
    except TeleregError as err:
        return refused(request, err, back="/fraud")
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/lines/{line}", response_class=HTMLResponse)
def line_page(
    line: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    error: FormError,
    period: str = "",
) -> Response:
    findings.visible_operator(principal)
    # An address naming no suspect (or one the reader may not see) is a missing page, not
    # an empty one.
    shown = service.latest_period(settings, period or None)
    findings.suspect_row(settings, principal=principal, period=shown, line=line)
    # (without a month, the latest scan's: the page, its figures and its reveal form alike)
    return _line(request, session, settings, principal, line=line, period=shown, error=error)


@router.get("/lines/{line}/reveal")
def reveal_address(
    line: str,
    principal: Annotated[Principal, require_page(Permission.STATUS_READ)],
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
) -> Response:
    """Reloading the page that showed a clear number (or switching its language) goes back
    to the suspect's page: the number is shown once, for the request that asked for it."""
    del principal
    back = f"/fraud/lines/{quote(line)}" + (f"?period={period}" if period else "")
    return RedirectResponse(back, status_code=303)


@router.post("/lines/{line}/reveal", response_class=HTMLResponse, dependencies=[Csrf])
def reveal_line(
    line: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    # (the permission is checked by the reveal, so that a refusal is audited with the line)
    principal: SignedIn,
    period: Annotated[str, Form(pattern=MONTH_FIELD)],
    reason: Annotated[str, Form(max_length=500)] = "",
    case_id: Annotated[str, Form(pattern=r"^\d{0,9}$")] = "",
) -> Response:
    """The suspect's clear number, for a user allowed to see it, with a reason (and the case
    it is for, if one is chosen), audited; a refused attempt is audited too (and kept,
    though the step is rolled back)."""
    try:
        with session.begin_nested():
            clear = findings.reveal_line(
                session,
                settings=settings,
                principal=principal,
                period=period,
                line=line,
                reason=reason,
                case_id=int(case_id) if case_id else None,
            )
    except PermissionDeniedError:
        raise  # a role without the permission: 403, as a page it may not use
    except TeleregError as err:
        return refused(request, err, back=f"/fraud/lines/{quote(line)}?period={period}")
    page = _line(
        request, session, settings, principal, line=line, period=period, error="", revealed=clear
    )
    page.headers["Cache-Control"] = "no-store"  # the clear number stays out of caches
    return page


def _line(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    line: str,
    period: str,
    error: str,
    revealed: str | None = None,
) -> Response:
    can_reveal = principal.can(Permission.PRIVACY_REIDENTIFY)
    # the cases the number may be revealed for (the history of the one chosen shows it)
    reveal_cases = (
        casework.line_cases(session, principal=principal, line=line) if can_reveal else []
    )
    needs_approval = settings.reidentify_needs_approval
    return render(
        request,
        "fraud/line.html",
        {
            "line": line,
            "period": period,
            "signals": translated_signals(),
            "operator_names": operator_names(session),
            "case_words": translated_case_words(),
            "can_reveal": can_reveal,
            "reveal_cases": reveal_cases,
            "case_required": settings.reidentify_requires_case or needs_approval,
            "needs_approval": needs_approval,
            # where the user stands with each case's approval (four eyes), to point to it
            "approvals": {
                c.id: approvals.standing(session, actor=principal.name, case_id=c.id)
                for c in reveal_cases
            }
            if needs_approval
            else {},
            "in_force": approvals.in_force,
            "revealed": revealed,
            "error": error,
        },
    )


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    error: FormError,
    status: str = "",
    kind: Annotated[str, Query(pattern=_KIND)] = "",
    operator: Annotated[str, Query(pattern=_OPERATOR)] = "",
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
    order: Annotated[str, Query(pattern=_ORDER)] = "",
    made: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    if operator:
        accounts.get_operator(session, operator)  # (an unknown one is an error, as in the API)
    in_state = casework.case_queue(session, principal=principal, status=status or None)
    chosen = {"kind": kind or None, "operator": operator or None, "period": period or None}

    def counted(facet: str) -> Counter[str]:
        # Each filter's counts are of the cases the other filters keep (a case counts in
        # every month its finding was found in, as the month filter keeps it).
        others = {name: value for name, value in chosen.items() if name != facet}
        kept = (c for c in in_state if casework.in_queue(c, **others))
        return Counter(v for c in kept for v in casework.facet_values(c.subject, facet))

    by_kind, by_operator, by_period = counted("kind"), counted("operator"), counted("period")
    queue = casework.narrowed_queue(in_state, **chosen, order=order or "opened")
    pages = max(1, -(-len(queue) // CASES_PER_PAGE))
    page = min(page, pages)
    # Fraud cases go to the police (``handover.export`` refuses any other agency).
    agencies = [a for a in accounts.list_agencies(session) if a.kind == POLICE]
    packages = handover.packages(session, settings, principal=principal)
    # Only a package that exists is named: the address is not to make the page say things.
    made = made if made in {f"{p['agency']}/{p['name']}" for p in packages} else ""
    return render(
        request,
        "fraud/cases.html",
        {
            "cases": queue[(page - 1) * CASES_PER_PAGE : page * CASES_PER_PAGE],
            "total": len(queue),
            "page": page,
            "pages": pages,
            "status": status,
            "kind": kind,
            "operator": operator,
            "period": period,
            "order": order,
            "kinds": [(k, by_kind.get(k, 0)) for k in casework.CASE_KINDS],
            "operators": sorted(by_operator.items()),
            "periods": sorted(by_period.items(), reverse=True),
            "of_any_kind": sum(by_kind.values()),
            "error": error,
            "made": made,
            "agencies": agencies,
            "agency_names": names_of(agencies),
            "operator_names": operator_names(session),
            "weight": case_weight,
            "workflow": casework.WORKFLOW,
            "decisions_for": casework.decisions_for,
            "packages": packages[:20],
            "can_reveal": principal.can(Permission.PRIVACY_REIDENTIFY),
            "here_query": urlencode(
                {
                    k: v
                    for k, v in {
                        "status": status,
                        "kind": kind,
                        "operator": operator,
                        "period": period,
                        "order": order,
                        "page": str(page) if page > 1 else "",
                    }.items()
                    if v
                }
            ),
        },
    )


@router.get("/cases.csv")
def cases_csv(
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    status: Annotated[str, Query(pattern=r"^[a-z_]{0,16}$")] = "",
    kind: Annotated[str, Query(pattern=_KIND)] = "",
    operator: Annotated[str, Query(pattern=_OPERATOR)] = "",
    period: Annotated[str, Query(pattern=OPTIONAL_MONTH_FIELD)] = "",
    order: Annotated[str, Query(pattern=_ORDER)] = "",
) -> Response:
    """The queue as filtered and ordered, every page of it, in the reader's language."""
    queue = casework.case_queue(
        session,
        principal=principal,
        status=status or None,
        kind=kind or None,
        operator=operator or None,
        period=period or None,
        order=order or "opened",
    )
    filters = {"status": status, "kind": kind, "operator": operator, "period": period}
    audit.record_download(session, actor=principal.name, what="cases.csv", filters=filters)
    _ = i18n.gettext
    operators = operator_names(session)
    agencies = agency_names(session)
    header = [_("Case"), _("Kind"), _("Status"), _("Subject"), _("Operator"), _("Month")]
    header += [_("Score"), _("Title"), _("Handled by"), _("Outcome"), _("Opened")]
    rows = []
    for c in queue:
        subject = c.subject
        operator = str(subject.get("operator") or "")
        handler = agencies.get(c.agency.code, c.agency.code) if c.agency else c.handler
        rows.append(
            [
                c.id,
                _(str(subject.get("type", ""))),
                _(c.status),
                subject.get("domain") or subject.get("line") or subject.get("id_number") or "",
                operators.get(operator, operator),
                subject.get("period", ""),
                case_weight(subject),
                case_title(c.title, subject, operators),
                handler,
                _(c.outcome) if c.outcome else "",
                c.opened_at.isoformat(timespec="seconds"),
            ]
        )

    name = "-".join(["cases", *(v for v in (status, kind, operator, period) if v)])
    return csv_download(header, rows, name)


@router.post("/cases/moves", dependencies=[Csrf])
def move_ticked_cases(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    to: Annotated[str, Form(max_length=16)],
    move_note: Annotated[str, Form(max_length=2000)] = "",
    case: Annotated[list[int] | None, Form()] = None,
    kind: Annotated[str, Form(pattern=_KIND)] = "",
    operator: Annotated[str, Form(pattern=_OPERATOR)] = "",
    period: Annotated[str, Form(pattern=OPTIONAL_MONTH_FIELD)] = "",
    read_as: Annotated[str, Form(pattern=r"^[a-z_]{0,16}$")] = "",
) -> Response:
    """The ticked cases of the queue, moved with one note: all, or none (the page says why).
    Done, the queue shows the cases in their new state, filtered as it was. ``read_as``: the
    state the queue was filtered by, which every ticked case was shown in."""
    kept = {"kind": kind, "operator": operator, "period": period}
    shown = {"status": to} | {name: value for name, value in kept.items() if value}
    expected = _read_state(read_as)
    return form_step(
        request,
        session,
        lambda: casework.move_cases(
            session,
            principal=principal,
            case_ids=case or [],
            to=to,
            note=move_note,
            expected=expected,
        ),
        back="/fraud/cases",
        done=f"/fraud/cases?{urlencode(shown)}",
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.CASES_READ_ASSIGNED)],
    error: FormError,
) -> Response:
    """One case: what it is about, where it stands, its history, and the next step."""
    case = casework.get_case(session, principal=principal, case_id=case_id)
    manages = principal.can(Permission.CASES_MANAGE)
    # Four eyes: the user asks here to re-identify the case's values, and sees the answer.
    asks_approval = (
        settings.reidentify_needs_approval
        and manages
        and principal.can(Permission.PRIVACY_REIDENTIFY)
    )
    return render(
        request,
        "fraud/case.html",
        {
            "c": case,
            "asks_approval": asks_approval,
            "approval": approvals.standing(session, actor=principal.name, case_id=case.id)
            if asks_approval
            else None,
            "in_force": approvals.in_force,
            "approval_steps": APPROVAL_STEPS,
            "history": casework.case_history(session, principal=principal, case_id=case_id),
            "manages": manages,
            "can_audit": principal.can(Permission.AUDIT_READ),
            "can_dispose": principal.can(Permission.CASES_REPORT_OUTCOME),
            "disposals_for": casework.disposals_for,
            "workflow": casework.WORKFLOW,
            "decisions_for": casework.decisions_for,
            "signals": translated_signals(),
            "operator_names": operator_names(session),
            "agency_names": agency_names(session),
            "weight": case_weight,
            "figure": evidence_figure,
            "brand_names": findings.brand_names(),
            "error": error,
        },
    )


@router.post("/cases/{case_id}", dependencies=[Csrf])
def move_case(
    request: Request,
    case_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    to: Annotated[str, Form(max_length=16)],
    note: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(pattern="^(queue|case)$")] = "queue",
    from_: Annotated[str, Form(alias="from", max_length=300)] = "",
    read_as: Annotated[str, Form(pattern=r"^[a-z_]{0,16}$")] = "",
) -> Response:
    """A step from the queue (back to the case's row, on the page of the queue it was
    taken from) or from the case's own page. ``read_as``: the state the page showed the
    case in; a case moved meanwhile by someone else is not moved again (the page says so)."""
    page = f"/fraud/cases/{case_id}" if back == "case" else queue_address(from_)
    expected = _read_state(read_as)
    return form_step(
        request,
        session,
        lambda: casework.move_case(
            session, principal=principal, case_id=case_id, to=to, note=note, expected=expected
        ),
        back=page,
        done=page if back == "case" else f"{page}#case-{case_id}",
    )


@router.post("/cases/{case_id}/approval", dependencies=[Csrf])
def ask_approval(
    request: Request,
    case_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.PRIVACY_REIDENTIFY)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Ask another user's approval to re-identify the case's values (four eyes)."""
    page = f"/fraud/cases/{case_id}"

    def ask() -> None:
        casework.get_case(session, principal=principal, case_id=case_id)
        approvals.request_approval(
            session, settings=settings, principal=principal, case_id=case_id, reason=reason
        )

    return form_step(request, session, ask, back=page, done=f"{page}#approval")


def _read_state(read_as: str) -> CaseStatus | None:
    """The state a form says its page showed a case in (none: the page did not say)."""
    return CaseStatus(read_as) if read_as in {s.value for s in CaseStatus} else None


#: What of the queue's address a step taken from it keeps, to come back to where it was.
_QUEUE_KEYS = ("status", "kind", "operator", "period", "order", "page")
_QUEUE_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def queue_address(query: str, **more: str) -> str:
    """The queue's page as the filters in ``query`` (a page's query string) chose it, with
    ``more``; anything else in ``query`` is dropped (the address is the page's own)."""
    kept = {
        key: value
        for key, value in parse_qsl(query)
        if key in _QUEUE_KEYS and _QUEUE_VALUE.match(value)
    }
    kept.update(more)
    return f"/fraud/cases?{urlencode(kept)}" if kept else "/fraud/cases"


@router.post("/handovers", dependencies=[Csrf])
def handover_cases(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.CASES_MANAGE)],
    agency: Annotated[str, Form(max_length=32)],
    # (a blank note is refused by the hand-over itself, on the page, not as a bare 422)
    note: Annotated[str, Form(max_length=2000)] = "",
    case: Annotated[list[int] | None, Form()] = None,
    reveal_reason: Annotated[str, Form(max_length=500)] = "",
    from_: Annotated[str, Form(alias="from", max_length=300)] = "",
) -> Response:
    try:
        with session.begin_nested():
            made = handover.export(
                session,
                settings=settings,
                principal=principal,
                case_ids=case or [],
                agency_code=agency,
                note=note,
                reveal_reason=reveal_reason.strip() or None,
            )
    except TeleregError as err:
        return refused(request, err, back=queue_address(from_))
    return RedirectResponse(
        queue_address(from_, made=f"{agency}/{made.path.name}"), status_code=303
    )


@router.get("/liaison", response_class=HTMLResponse)
def liaison_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    # The agencies' page (and the analysts', who record outcomes for them): an operator's
    # user has cases addressed to it, but never a police hand-over.
    principal: Annotated[Principal, require_page(Permission.CASES_REPORT_OUTCOME)],
    error: FormError,
) -> Response:
    return _liaison(request, session, settings, principal, error=error)


def _liaison(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    error: str = "",
    checked: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "fraud/liaison.html",
        {
            "cases": casework.case_queue(session, principal=principal),
            "packages": handover.packages(session, settings, principal=principal),
            "withdrawn": casework.withdrawals(session, principal=principal),
            "agency_names": agency_names(session),
            "disposals_for": casework.disposals_for,
            "operator_names": operator_names(session),
            "error": error,
            "checked": checked,
            "can_dispose": principal.can(Permission.CASES_REPORT_OUTCOME),
        },
        status_code=status_code,
    )


@router.post("/liaison/verify", response_class=HTMLResponse)
async def verify_package(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require_page(Permission.CASES_REPORT_OUTCOME)],
) -> Response:
    """A package brought back, checked with the installation's key: what it holds when it
    is intact, what is wrong with it when not. The body is read only once the visitor is
    known, and the CSRF token, which travels in it, checked right after."""
    try:
        name, archive = await read_small_file(request, max_bytes=handover.MAX_PACKAGE_BYTES)
        await verify_csrf(request)
    except RequestValidationError:
        failed = i18n.gettext("Choose the package to check.")
        return _liaison(request, session, settings, principal, error=failed, status_code=422)
    try:
        manifest = handover.check_package(
            session, settings, principal=principal, archive=archive, filename=name
        )
    except TeleregError as err:
        failed = f"{err.where}: {localise(err.message)}" if err.where else localise(err.message)
        return _liaison(request, session, settings, principal, error=failed, status_code=422)
    checked = {"name": name, **manifest}
    purged = handover.purged_at_of(session, archive)
    if purged is not None:
        checked["purged_note"] = localise(handover.COPY_OF_PURGED.format(date=f"{purged:%Y-%m-%d}"))
    return _liaison(request, session, settings, principal, checked=checked)


@router.post("/liaison/{case_id}", dependencies=[Csrf])
def dispose_case(
    request: Request,
    case_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, require_page(Permission.CASES_REPORT_OUTCOME)],
    disposal: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(pattern="^(liaison|case)$")] = "liaison",
) -> Response:
    """A disposal from the agency's list (back to the case's row) or from the case's page."""
    page = f"/fraud/cases/{case_id}" if back == "case" else "/fraud/liaison"
    return form_step(
        request,
        session,
        lambda: handover.record_disposal(
            session, principal=principal, case_id=case_id, disposal=disposal, note=note
        ),
        back=page,
        done=page if back == "case" else f"/fraud/liaison#case-{case_id}",
    )
