"""The modules of the mission, as the navigation shows them."""

from __future__ import annotations

from dataclasses import dataclass

from telereg.core.i18n import N_
from telereg.core.i18n import gettext as _
from telereg.core.permissions import Permission, has_permission


@dataclass(frozen=True)
class Module:
    slug: str
    title: str
    summary: str
    mission_rows: tuple[int, ...]
    #: the module's pages: for each permission, the page a holder of it starts from, the
    #: first that applies winning (none: the module is not built yet, and has a plan page)
    pages: tuple[tuple[Permission, str], ...] = ()

    @property
    def available(self) -> bool:
        return bool(self.pages)

    def href_for(self, role: str) -> str | None:
        """Where ``role`` enters the module; None when it may see none of its pages."""
        if not self.pages:
            return f"/modules/{self.slug}"
        return next((url for need, url in self.pages if has_permission(role, need)), None)


MODULES: tuple[Module, ...] = (
    Module(
        "buildout",
        N_("Build-out"),
        N_("5G and gigabit build-out, corridors, key places, targets, projects, site obstacles"),
        (1, 2, 3),
        pages=((Permission.DASHBOARD_READ, "/buildout"),),
    ),
    Module(
        "epidemic",
        N_("Epidemic support"),
        N_("Lists of people at risk pushed to localities and their verification"),
        (4,),
    ),
    Module(
        "interconnect",
        N_("Interconnection"),
        N_("Backbone interconnection point: inter-network quality between operators"),
        (5,),
    ),
    Module(
        "identifiers",
        N_("Identifier resolution"),
        N_("Industrial-internet secondary nodes, enterprises and registered identifiers"),
        (6,),
    ),
    Module(
        "service",
        N_("Service quality"),
        N_("Complaints, commercial-building broadband cases, tariffs and offers"),
        (7, 8, 9),
    ),
    Module(
        "security",
        N_("Security"),
        N_("Grading and filing, campaigns, threat monitoring, IoT cards, assurance periods"),
        (10, 11, 12, 15, 16),
    ),
    Module(
        "fraud",
        N_("Anti-fraud"),
        N_("SIM-box hunting, card-breaking, real-name anomalies, fraud domains, joint disposal"),
        (13,),
        pages=(
            (Permission.DATA_READ_ALL, "/fraud"),  # (a viewer reads no lines)
            (Permission.DATA_READ_OWN, "/fraud"),  # an operator: its own lines
            (Permission.CASES_REPORT_OUTCOME, "/fraud/liaison"),  # an agency: its hand-overs
        ),
    ),
    Module(
        "apps",
        N_("App governance"),
        N_("Rectification orders and delisting of apps that violate users' rights"),
        (14,),
    ),
)


def module(slug: str) -> Module | None:
    return next((m for m in MODULES if m.slug == slug), None)


def translated(m: Module, role: str) -> dict[str, object]:
    return {
        "slug": m.slug,
        "title": _(m.title),
        "summary": _(m.summary),
        "rows": m.mission_rows,
        "href": m.href_for(role),
        "available": m.available,
    }
