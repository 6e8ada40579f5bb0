"""The operators and partner agencies a provincial administration works with."""

from __future__ import annotations

from typing import NamedTuple

#: The kind of agency fraud cases are handed over to.
POLICE = "police"


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
    DirectoryEntry("CA", "省通信管理局（本局）", "Communications administration (own data)"),
)

STANDARD_AGENCIES: tuple[DirectoryEntry, ...] = (
    DirectoryEntry("POLICE-AF", "省公安厅反诈中心", "Provincial police anti-fraud centre", POLICE),
    DirectoryEntry("HEALTH", "省卫生健康委员会", "Provincial health commission", "health"),
    DirectoryEntry("CITY-GOV", "市人民政府", "City government", "government"),
)
