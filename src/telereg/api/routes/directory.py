"""Operators and partner agencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from telereg.api.deps import SessionDep, require
from telereg.api.schemas import AgencyIn, DirectoryEntryOut, OperatorIn
from telereg.core import accounts
from telereg.core.permissions import Permission
from telereg.core.principal import Principal

router = APIRouter(tags=["directory"])


@router.get(
    "/operators", dependencies=[require(Permission.REFERENCE_READ)], summary="List operators"
)
def list_operators(session: SessionDep) -> list[DirectoryEntryOut]:
    return [DirectoryEntryOut.model_validate(o) for o in accounts.list_operators(session)]


@router.post("/operators", status_code=status.HTTP_201_CREATED, summary="Add an operator")
def add_operator(
    body: OperatorIn,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.REFERENCE_MANAGE)],
) -> DirectoryEntryOut:
    operator = accounts.add_operator(
        session, principal=principal, code=body.code, name=body.name, name_en=body.name_en
    )
    return DirectoryEntryOut.model_validate(operator)


@router.get(
    "/agencies", dependencies=[require(Permission.REFERENCE_READ)], summary="List partner agencies"
)
def list_agencies(session: SessionDep) -> list[DirectoryEntryOut]:
    return [DirectoryEntryOut.model_validate(a) for a in accounts.list_agencies(session)]


@router.post("/agencies", status_code=status.HTTP_201_CREATED, summary="Add a partner agency")
def add_agency(
    body: AgencyIn,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.REFERENCE_MANAGE)],
) -> DirectoryEntryOut:
    agency = accounts.add_agency(
        session,
        principal=principal,
        code=body.code,
        name=body.name,
        kind=body.kind,
        name_en=body.name_en,
    )
    return DirectoryEntryOut.model_validate(agency)
