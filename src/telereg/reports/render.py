"""Rendering reports: Jinja templates with translations, charts as images, PDF by WeasyPrint."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2

from telereg.core import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: CJK-capable fonts, in the order tried (Debian's fonts-noto-cjk provides the first).
FONT_FAMILY = '"Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", sans-serif'

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, extensions=["jinja2.ext.i18n"]
)
_env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def bar_chart(labels: list[str], values: list[float], *, title: str, percent: bool = False) -> str:
    """A horizontal bar chart as a PNG data URI (matplotlib, CJK font)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Serif CJK SC", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    figure, axes = plt.subplots(figsize=(7, 0.32 * len(labels) + 1.2), dpi=110)
    shown = [v * 100 for v in values] if percent else values
    axes.barh(labels[::-1], shown[::-1], color="#0b5cad")
    axes.set_title(title)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_html(template: str, context: dict[str, Any], *, language: str) -> str:
    token = i18n.current_language.set(i18n.normalise_language(language))
    try:
        return _env.get_template(template).render(
            **context, lang=i18n.current_language.get(), font_family=FONT_FAMILY
        )
    finally:
        i18n.current_language.reset(token)


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
