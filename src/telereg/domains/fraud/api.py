"""Anti-fraud JSON API: scans, suspects, lines, domains, rings, cases and hand-overs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from telereg.api import uploads
from telereg.api.deps import (
    KnownOperator,
    Offset,
    OptionalPeriod,
    RowId,
    SessionDep,
    SettingsDep,
    require,
)
from telereg.api.openapi import file_response
from telereg.api.schemas import JobOut
from telereg.cases.models import Case, CaseStatus
from telereg.core import jobs
from telereg.core.i18n import localise
from telereg.core.periods import MONTH_FIELD
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.domains.fraud import casework, findings, handover, service

router = APIRouter(prefix="/fraud", tags=["fraud"])
Period = Annotated[str, Query(pattern=MONTH_FIELD)]
#: A city's code, as the region's reference gives it (six digits, ``440300``).
CITY_FIELD = r"^[1-9][0-9]{5}$"
#: Signed-in users; which lines they see is decided per principal (all, own operator, none).
Reader = Annotated[Principal, require(Permission.STATUS_READ)]
Manager = Annotated[Principal, require(Permission.CASES_MANAGE)]


@router.post(
    "/scans",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a month's scan as a job; follow it at the returned Location",
    description="The scan scores lines, cards and domains, links rings and opens cases, in "
    "a process of its own. A scan of the same month already queued or running is returned "
    "instead of starting another. A month without call records is refused at once (404).",
)
def scan(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.ANALYSIS_RUN)],
    period: Period,
    response: Response,
) -> JobOut:
    job = service.start_scan(session, settings, principal=principal, period=period)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobOut(**jobs.describe(job))


@router.get("/dashboard", summary="Counts by kind, city, operator; trend; outlets; domains; rings")
def dashboard(
    session: SessionDep, settings: SettingsDep, principal: Reader, period: OptionalPeriod = None
) -> dict[str, Any]:
    return findings.dashboard(
        session,
        settings=settings,
        principal=principal,
        period=service.latest_period(settings, period),
    )


@router.get(
    "/domains/blocked",
    summary="The block list: domains whose case ended with domain_blocked",
    description="JSON by default; `?format=text` gives one domain a line, for resolvers.",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The block list: JSON, or with ?format=text one domain a line",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    },
)
def blocked(
    session: SessionDep,
    principal: Reader,
    format: Annotated[Literal["json", "text"], Query()] = "json",  # noqa: A002 - the API's word
) -> Any:
    listed = casework.blocked_domains(session, principal=principal)
    if format == "text":
        return PlainTextResponse("".join(f"{d['domain']}\n" for d in listed))
    return {"total": len(listed), "domains": listed}


@router.get("/suspects", summary="A page of a month's suspects, highest score first, filtered")
def suspects(
    settings: SettingsDep,
    principal: Reader,
    operator: KnownOperator,
    period: OptionalPeriod = None,
    kind: Annotated[Literal["sim_box", "card"] | None, Query()] = None,
    city: Annotated[str | None, Query(pattern=CITY_FIELD, description="A city's code")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """An operator's user sees its own lines only, as on the dashboard."""
    return findings.suspect_list(
        settings,
        principal=principal,
        period=service.latest_period(settings, period),
        kind=kind,
        operator=operator,
        city=city,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/ids-over-limit",
    summary="ID numbers holding more active cards at one operator than allowed (tokens)",
)
def ids_over_limit(
    settings: SettingsDep,
    principal: Reader,
    operator: KnownOperator,
    period: OptionalPeriod = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Most cards first; ``all_operators`` counts the ID's active cards everywhere. An
    operator's user sees its own rows."""
    return findings.ids_over_limit(
        settings,
        principal=principal,
        period=service.latest_period(settings, period),
        operator=operator,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/identity-signals",
    summary="Cards whose registered holder is likely not their user (tokens), with the signals",
)
def identity_signals(
    settings: SettingsDep,
    principal: Reader,
    operator: KnownOperator,
    period: OptionalPeriod = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A new card used away from its registration city from its first day of calls, or a
    card on a handset that cards of two or more ID numbers use. An operator's user sees
    its own cards."""
    return findings.identity_list(
        settings,
        principal=principal,
        period=service.latest_period(settings, period),
        operator=operator,
        limit=limit,
        offset=offset,
    )


@router.get("/lines/{line}", summary="One suspect line: features, reasons, timeline, cells, links")
def line(
    line: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    period: OptionalPeriod = None,
) -> dict[str, Any]:
    return findings.line_detail(
        session,
        settings=settings,
        principal=principal,
        period=service.latest_period(settings, period),
        line=line,
    )


def _one_of(values: Iterable[str]) -> dict[str, Any]:
    """A field's values for the OpenAPI document (the service checks them, in words)."""
    return {"enum": list(values)}


def _case(c: Case, principal: Principal) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": c.status,
        "title": c.title,
        "reference": c.reference,
        "subject": c.subject,
        "handler": c.handler,
        "agency": c.agency.code if c.agency else None,
        "outcome": c.outcome,
        "opened_at": c.opened_at.isoformat(timespec="seconds"),
        "next": casework.next_steps(c, principal=principal),
    }


@router.get("/cases", summary="Fraud cases: all for analysts, the agency's own for a liaison")
def case_list(
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.CASES_READ_ASSIGNED)],
    # (str, documented as the enums they are: the queue refuses another value in words)
    status: Annotated[str | None, Query(json_schema_extra=_one_of(CaseStatus))] = None,
    kind: Annotated[
        str | None,
        Query(
            description="sim_box, card, identity, id_limit or domain",
            json_schema_extra=_one_of(casework.CASE_KINDS),
        ),
    ] = None,
    operator: Annotated[
        str | None, Query(max_length=32, description="an operator's code: its lines only")
    ] = None,
    period: Annotated[str | None, Query(description="a month, YYYY-MM: its findings only")] = None,
    order: Annotated[
        str,
        Query(
            description="opened, or priority: highest score first within each kind",
            json_schema_extra=_one_of(casework.CASE_ORDERS),
        ),
    ] = "opened",
) -> list[dict[str, Any]]:
    queue = casework.case_queue(
        session,
        principal=principal,
        status=status,
        kind=kind,
        operator=operator,
        period=period,
        order=order,
    )
    return [_case(c, principal) for c in queue]


@router.get(
    "/cases/{case_id}",
    summary="One fraud case and its history (a liaison: its agency's, from the hand-over on)",
)
def case_detail(
    case_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.CASES_READ_ASSIGNED)],
) -> dict[str, Any]:
    case = casework.get_case(session, principal=principal, case_id=case_id)
    history = casework.case_history(session, principal=principal, case_id=case_id)
    return {**_case(case, principal), "history": history}


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    to: str = Field(
        max_length=16,
        description="in_review or closed; for a domain or ID-limit case, a decision",
        json_schema_extra=_one_of(
            (CaseStatus.IN_REVIEW.value, CaseStatus.CLOSED.value, *casework.DECISIONS)
        ),
    )
    note: str = Field(min_length=1, max_length=2000)
    read_in: CaseStatus | None = Field(
        None,
        alias="from",
        description="The state the case was read in: when given and the case is in another "
        "state now (someone moved it meanwhile), it is not moved (409).",
    )


@router.post("/cases/{case_id}/moves", summary="Move a case (in review, closed)")
def move(case_id: RowId, body: Move, session: SessionDep, principal: Manager) -> dict[str, Any]:
    case = casework.move_case(
        session,
        principal=principal,
        case_id=case_id,
        to=body.to,
        note=body.note,
        expected=body.read_in,
    )
    return _case(case, principal)


class Moves(Move):
    cases: list[int] = Field(min_length=1, max_length=1000)


@router.post(
    "/cases/moves",
    summary="Move several cases with one note: all of them, or none when one may not move",
)
def move_many(body: Moves, session: SessionDep, principal: Manager) -> list[dict[str, Any]]:
    moved = casework.move_cases(
        session,
        principal=principal,
        case_ids=body.cases,
        to=body.to,
        note=body.note,
        expected=body.read_in,
    )
    return [_case(c, principal) for c in moved]


class HandoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[int] = Field(min_length=1, max_length=1000)
    agency: str = Field(max_length=32)
    note: str = Field(min_length=1, max_length=2000)
    #: a reason to add clear numbers from the vault (needs the re-identify permission)
    reveal_reason: str | None = Field(None, max_length=500)


@router.post(
    "/handovers",
    summary="Refer cases to an agency; returns the signed package",
    response_class=Response,
    openapi_extra=file_response("application/zip", description="The signed package"),
)
def create_handover(
    body: HandoverRequest, session: SessionDep, settings: SettingsDep, principal: Manager
) -> Response:
    result = handover.export(
        session,
        settings=settings,
        principal=principal,
        case_ids=body.cases,
        agency_code=body.agency,
        note=body.note,
        reveal_reason=body.reveal_reason,
    )
    session.commit()
    return _package_response(result.archive, result.path.name)


@router.get("/handovers", summary="Hand-over packages of the principal's agency (all for analysts)")
def list_handovers(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.CASES_READ_ASSIGNED)],
) -> list[dict[str, Any]]:
    """Each package with its cases and ``withdrawn``: true once none of its cases is still
    the agency's (every one was withdrawn), when the agency can no longer fetch it."""
    return handover.packages(session, settings, principal=principal)


@router.post(
    "/handovers/verify",
    summary="Check a hand-over package: its manifest if no byte of it changed",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def verify_handover(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.CASES_READ_ASSIGNED)],
) -> dict[str, Any]:
    """The package (multipart field ``file``) checked with the installation's key: 200 and
    its manifest when intact, 422 ``bad-signature`` when a byte changed, 403 when it was
    handed to another agency than the caller's. Audited either way. A copy of a package
    whose own file was purged under the retention policy is checked all the same:
    ``purged_at`` says when, and ``note`` (``message``, for a person) says so in words."""
    name, archive = await uploads.read_small_file(request, max_bytes=handover.MAX_PACKAGE_BYTES)
    manifest = handover.check_package(
        session, settings, principal=principal, archive=archive, filename=name
    )
    checked: dict[str, Any] = {"intact": True, "manifest": manifest, "purged_at": None}
    purged = handover.purged_at_of(session, archive)
    if purged is not None:
        note = handover.COPY_OF_PURGED.format(date=f"{purged:%Y-%m-%d}")
        checked |= {
            "purged_at": purged.isoformat(timespec="seconds"),
            "note": note,
            "message": localise(note),
        }
    return checked


@router.get(
    "/handovers/{agency}/{name}",
    summary="Download a hand-over package",
    response_class=Response,
    openapi_extra=file_response(
        "application/zip", description="The signed package", may_be_gone=True
    ),
)
def download_handover(
    agency: str,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.CASES_READ_ASSIGNED)],
) -> Response:
    archive = handover.package_for(session, settings, principal=principal, agency=agency, name=name)
    return _package_response(archive, name)


def _package_response(archive: bytes, name: str) -> Response:
    """A package as a download (its name is checked: letters, digits, ``-``, ``_``)."""
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class Disposal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposal: str = Field(
        max_length=32,
        description="Which fit a case depends on its kind",
        json_schema_extra=_one_of(casework.DISPOSALS),
    )
    note: str = Field(min_length=1, max_length=2000)


@router.post("/cases/{case_id}/disposal", summary="Record the agency's disposal of a case")
def dispose(
    case_id: RowId,
    body: Disposal,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.CASES_REPORT_OUTCOME)],
) -> dict[str, Any]:
    case = handover.record_disposal(
        session, principal=principal, case_id=case_id, disposal=body.disposal, note=body.note
    )
    return _case(case, principal)
