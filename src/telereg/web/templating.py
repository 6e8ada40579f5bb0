"""The Jinja2 environment: gettext callables bound to the request's language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from telereg import __version__, registry
from telereg.core import i18n
from telereg.core.privacy import mask
from telereg.web.navigation import MODULES, translated
from telereg.web.terms import localise_reason

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


def dataset_title(name: str) -> str:
    """A dataset's title in the current language (its name if no contract has it)."""
    contract = registry.CONTRACTS.get(name)
    if contract is None:
        return name
    return contract.title_zh if i18n.in_chinese() else contract.title


templates.env.filters["dataset_title"] = dataset_title
templates.env.globals["LANGUAGES"] = i18n.LANGUAGES
templates.env.globals["version"] = __version__


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
    }
    base.update(context or {})
    return templates.TemplateResponse(request, template, base, status_code=status_code)
