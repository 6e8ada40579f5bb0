"""Translations through gettext catalogs (Babel), selected per request.

Message ids are English; ``locale/zh_CN`` translates them. The current locale
lives in a context variable so templates and code share one choice per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
LANGUAGES: dict[str, str] = {"zh_CN": "简体中文", "en": "English"}
DEFAULT_LANGUAGE = "zh_CN"

current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> NullTranslations:
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    return Translations.load(str(LOCALE_DIR), [language], DOMAIN)


def gettext(message: str) -> str:
    return translations(current_language.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ungettext(singular, plural, n)


def normalise_language(value: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map ``zh``, ``zh-CN``, ``zh_Hans``, ``en-US`` … to a supported language."""
    if not value:
        return default
    value = value.replace("-", "_")
    if value in LANGUAGES:
        return value
    if value.lower().startswith("zh"):
        return "zh_CN"
    if value.lower().startswith("en"):
        return "en"
    return default


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Mark a string for extraction; it is translated where it is shown."""
    return message


_FIELD = re.compile(r"\{([a-z_]+)\}")
_PARTS = "; "


class Catalogue:
    """Shows parametrised English messages in the current language.

    Messages that the platform stores or returns in English (a submission's
    message, an error report's reasons, an error's text) are built from
    templates such as ``"below the minimum {minimum}"``. Shown on a page, the
    text is matched back against the templates and rendered from the
    template's translation with the same values; a value that is itself a
    known message is translated too. Messages joined with ``"; "`` are
    translated part by part, and text no template matches is shown as it is.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        unique = sorted(set(templates), key=lambda t: -len(_FIELD.sub("", t)))
        self._patterns = [(re.compile(_regex(t), re.DOTALL), t) for t in unique if _FIELD.search(t)]

    def localise(self, text: str, language: str | None = None) -> str:
        """``text`` in ``language`` (by default the current one)."""
        if not text:
            return text
        translate = translations(language or current_language.get()).ugettext
        parts = text.split(_PARTS)
        shown: list[str] = []
        start = 0
        while start < len(parts):
            for end in range(len(parts), start, -1):
                found = self._one(_PARTS.join(parts[start:end]), translate)
                if found is not None:
                    shown.append(found)
                    start = end
                    break
            else:
                shown.append(parts[start])
                start += 1
        return _PARTS.join(shown)

    def _one(self, text: str, translate: Callable[[str], str]) -> str | None:
        translated = translate(text)
        if translated != text:
            return translated
        for pattern, template in self._patterns:
            match = pattern.fullmatch(text)
            if match is not None:
                values = {
                    name: self._one(value, translate) or value
                    for name, value in match.groupdict().items()
                }
                return translate(template).format(**values)
        return None


def _regex(template: str) -> str:
    pieces = []
    position = 0
    for field in _FIELD.finditer(template):
        pieces.append(re.escape(template[position : field.start()]))
        # A value never spans the "; " between two messages.
        pieces.append(f"(?P<{field.group(1)}>(?:(?!{_PARTS}).)+?)")
        position = field.end()
    pieces.append(re.escape(template[position:]))
    return "".join(pieces)
