"""The build-out analysis report for the province or a city, as HTML or PDF."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from telereg.core import i18n
from telereg.core.i18n import N_
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.buildout.report import report_data
from telereg.geography.contracts import CORRIDOR_KINDS
from telereg.reports.render import bar_chart, html_to_pdf, render_html

#: A kind of corridor's share covered, in the key figures ("National road covered").
KIND_COVERED = N_("{kind} covered")


def buildout_report(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    region_code: str,
    period: str,
    language: str = "zh_CN",
    output: Literal["html", "pdf"] = "html",
) -> bytes:
    data = report_data(
        session, settings=settings, principal=principal, region_code=region_code, period=period
    )
    english = i18n.normalise_language(language) == "en"

    def name(item: dict[str, object]) -> str:
        return str(item.get("name_en") or item["name"]) if english else str(item["name"])

    token = i18n.current_language.set(i18n.normalise_language(language))
    try:
        charts = {
            "ranking": bar_chart(
                [name(c) for c in data["ranking"]],
                # (a city without a known population has no bar)
                [float(c["per_10k"] or 0) for c in data["ranking"]],
                title=i18n.gettext("5G sites per 10,000 people"),
            ),
            "gigabit": bar_chart(
                [name(c) for c in data["gigabit_cities"]],
                [float(c["gigabit_coverage"]) for c in data["gigabit_cities"]],
                title=i18n.gettext("Gigabit coverage") + " (%)",
                percent=True,
            )
            if data["gigabit_cities"]
            else None,
        }
        # (a kind of corridor by its name; covered shares for every kind the region has)
        kinds = {
            kind: i18n.gettext(KIND_COVERED).format(kind=i18n.gettext(words))
            for kind, words in CORRIDOR_KINDS.items()
        }
    finally:
        i18n.current_language.reset(token)
    html = render_html(
        "buildout.html",
        {"d": data, "charts": charts, "english": english, "kinds": kinds},
        language=language,
    )
    return html_to_pdf(html) if output == "pdf" else html.encode()
