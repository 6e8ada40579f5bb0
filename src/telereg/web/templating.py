"""The Jinja2 environment: gettext callables bound to the request's language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from telereg import __version__, registry
from telereg.core import i18n
from telereg.core.privacy import mask
from telereg.web.navigation import MODULES, translated
from telereg.web.terms import audit_action, case_title, localise_reason, localise_reasons

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    auto_reload=False,  # templates ship with the package; no need to stat them per render
    extensions=["jinja2.ext.i18n"],
)
_env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)
templates = Jinja2Templates(env=_env)
templates.env.filters["mask"] = mask
templates.env.filters["localise"] = i18n.localise
templates.env.filters["localise_reason"] = localise_reason
templates.env.filters["localise_reasons"] = localise_reasons
templates.env.filters["case_title"] = case_title
templates.env.filters["audit_action"] = audit_action


def dataset_title(name: str) -> str:
    """A dataset's title in the current language (its name if no contract has it)."""
    contract = registry.CONTRACTS.get(name)
    if contract is None:
        return name
    return contract.title_zh if i18n.in_chinese() else contract.title


templates.env.filters["dataset_title"] = dataset_title


def iso_time(value: str, seconds: bool = False) -> str:
    """An ISO 8601 time as pages show it: ``2021-11-05 08:30`` (with ``:15`` if ``seconds``)."""
    return value[: 19 if seconds else 16].replace("T", " ")


templates.env.filters["iso_time"] = iso_time
templates.env.globals["LANGUAGES"] = i18n.LANGUAGES
templates.env.globals["version"] = __version__


#: A language link comes back to the same page with its filters and page number: query
#: values of these names, and only plain ones (nothing a link could put on the page).
_KEPT_QUERY = frozenset(
    {"status", "page", "period", "kind", "order", "operator", "dataset", "level"}
)
_PLAIN = re.compile(r"[0-9A-Za-z_.:-]{1,40}")


def _same_page(request: Request) -> str:
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name in _KEPT_QUERY and _PLAIN.fullmatch(value)
    ]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page with what every page needs: user, language, navigation, CSRF token."""
    user = getattr(request.state, "user", None)
    role = str((user or {}).get("role", "viewer"))
    base = {
        "lang": i18n.current_language.get(),
        # Each role sees the modules it may enter, each linked to the page it starts from.
        "modules": [t for t in (translated(m, role) for m in MODULES) if t["href"]],
        "user": user,
        # Error pages may render outside the session middleware, hence scope.get.
        "csrf_token": request.scope.get("session", {}).get("csrf", ""),
        "path": request.url.path,
        "full_path": _same_page(request),
    }
    base.update(context or {})
    return templates.TemplateResponse(request, template, base, status_code=status_code)
