"""The operators and partner agencies a provincial administration works with."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telereg.core import accounts
from telereg.core.models import Agency, Operator
from telereg.core.principal import Principal

#: The kind of agency fraud cases are handed over to.
POLICE = "police"

#: The operator code the administration files its own data under: the datasets only it
#: submits (targets, corridors, key places, population, police feedback).
ADMINISTRATION = "CA"


class DirectoryEntry(NamedTuple):
    code: str
    name: str
    name_en: str
    kind: str = ""


STANDARD_OPERATORS: tuple[DirectoryEntry, ...] = (
    DirectoryEntry("CMCC", "中国移动", "China Mobile"),
    DirectoryEntry("CUCC", "中国联通", "China Unicom"),
    DirectoryEntry("CTCC", "中国电信", "China Telecom"),
    DirectoryEntry("CBN", "中国广电", "China Broadnet"),
    DirectoryEntry("TOWER", "中国铁塔", "China Tower"),
    # The administration itself, for the reference data it keeps: targets, its own GeoJSON.
    DirectoryEntry(
        ADMINISTRATION, "省通信管理局（本局）", "Communications administration (own data)"
    ),
)

STANDARD_AGENCIES: tuple[DirectoryEntry, ...] = (
    DirectoryEntry("POLICE-AF", "省公安厅反诈中心", "Provincial police anti-fraud centre", POLICE),
    DirectoryEntry("HEALTH", "省卫生健康委员会", "Provincial health commission", "health"),
    DirectoryEntry("CITY-GOV", "市人民政府", "City government", "government"),
)


def add_standard_operators(session: Session, *, principal: Principal) -> list[str]:
    """Add the standard operators the directory lacks; returns the codes added."""
    have = set(session.scalars(select(func.lower(Operator.code))))
    added = [entry for entry in STANDARD_OPERATORS if entry.code.lower() not in have]
    for entry in added:
        accounts.add_operator(
            session, principal=principal, code=entry.code, name=entry.name, name_en=entry.name_en
        )
    return [entry.code for entry in added]


def add_standard_agencies(session: Session, *, principal: Principal) -> list[str]:
    """Add the standard partner agencies the directory lacks; returns the codes added."""
    have = set(session.scalars(select(func.lower(Agency.code))))
    added = [entry for entry in STANDARD_AGENCIES if entry.code.lower() not in have]
    for entry in added:
        accounts.add_agency(
            session,
            principal=principal,
            code=entry.code,
            name=entry.name,
            name_en=entry.name_en,
            kind=entry.kind,
        )
    return [entry.code for entry in added]
