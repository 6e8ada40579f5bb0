"""Translations through gettext catalogs (Babel), selected per request.

Message ids are English; ``locale/zh_CN`` translates them. The current locale
lives in a context variable so templates and code share one choice per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from babel.messages.mofile import read_mo
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


def in_chinese() -> bool:
    """Whether the current language is Chinese (for data that carries both names)."""
    return current_language.get() == "zh_CN"


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


def accepted_language(header: str | None) -> str | None:
    """The supported language an ``Accept-Language`` header prefers most (``zh-CN,zh;q=0.9,
    en;q=0.8``), or None when it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        language = normalise_language(tag.strip(), default="")
        if language and weight > 0:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else None


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Mark a string for extraction; it is translated where it is shown."""
    return message


_FIELD = re.compile(r"\{([a-z_]+)\}")
_PARTS = "; "
#: Fields whose values are words or messages themselves (a type, a state, a nested
#: message), translated in turn; other values (names, numbers, lists of columns) are data.
_WORDS = frozenset(
    {
        "type",
        "level",
        "status",
        # (the state a case was read in: "case 55 is in_review, not open")
        "expected",
        "target",
        "reference",
        "disposal",
        "decision",
        "detail",
        "form",
    }
)
#: Values that may be lists of such words, joined with ", " (the states a case may move to),
#: or alternatives joined with " or " (a city or county code, the kinds of a geometry).
_LISTS = frozenset({"allowed", "kinds", "states", "level"})
_OR = " or "


def localise(text: str, language: str | None = None) -> str:
    """``text``, a message the platform stores or returns in English, in ``language``.

    A message with values is built from a marked template, such as
    ``N_("below the minimum {minimum}").format(minimum=0)``. The text is matched
    back to the templates the language's catalog translates, and rendered from
    the translation with the same values; a type, a state or a nested message
    among the values is translated too (see ``_WORDS``). Messages joined with
    ``"; "`` are translated part by part; text that no template matches is shown
    as it is.
    """
    if not text:
        return text
    return _localised(text, language or current_language.get())


@lru_cache(maxsize=8192)  # an error report repeats a few reasons over many rows
def _localised(text: str, language: str) -> str:
    catalog = _Catalog(
        translations(language).ugettext,
        _templates(language),
        _LIST_SEPARATORS.get(language, ", "),
        _ALTERNATIVES.get(language, "or"),
    )
    parts = text.split(_PARTS)
    shown: list[str] = []
    start = 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            found = _one(_PARTS.join(parts[start:end]), catalog)
            if found is not None:
                shown.append(found)
                start = end
                break
        else:
            shown.append(parts[start])
            start += 1
    return _PARTS.join(shown)


#: How a language separates the items of a list (", " where not given).
_LIST_SEPARATORS = {"zh_CN": "、"}
#: How a language says "or" between alternatives ("or" where not given).
_ALTERNATIVES = {"zh_CN": "或"}


def _alternatives(options: list[str], word: str) -> str:
    """``options`` joined by ``word``, spaced where a neighbour is a Latin word
    ("LineString or Polygon", "地市或区县", "LineString 或 Polygon")."""
    shown = options[0]
    for option in options[1:]:
        spaced = shown[-1:].isascii() or option[:1].isascii()
        shown += f" {word} " if spaced else word
        shown += option
    return shown


class _Catalog(NamedTuple):
    """What translating a message in one language takes."""

    translate: Callable[[str], str]
    #: the language's templates with values, most specific first (see ``_templates``)
    patterns: list[tuple[re.Pattern[str], str]]
    list_separator: str
    #: the word between alternatives
    alternative: str


def _one(text: str, catalog: _Catalog) -> str | None:
    translated = catalog.translate(text)
    if translated != text:
        return translated
    for pattern, template in catalog.patterns:
        match = pattern.fullmatch(text)
        if match is not None:
            values = {
                name: (_one(value, catalog) if name in _WORDS else None) or value
                for name, value in match.groupdict().items()
            }
            for name in _LISTS & values.keys():
                if _OR in values[name]:
                    # ("or" is the language's; a name no catalog knows, LineString say, stays)
                    options = [_one(w, catalog) or w for w in values[name].split(_OR)]
                    values[name] = _alternatives(options, catalog.alternative)
                    continue
                # (a list of states or disposals; a list of data, a column's allowed values
                # say, is left as it is)
                words = [_one(word, catalog) for word in values[name].split(", ")]
                if all(words):
                    values[name] = catalog.list_separator.join(w for w in words if w)
            return catalog.translate(template).format(**values)
    return None


@cache
def _templates(language: str) -> list[tuple[re.Pattern[str], str]]:
    """The language's translated messages that take values, most specific first."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if language not in LANGUAGES or not path.exists():
        return []
    with path.open("rb") as fh:
        ids = [m.id for m in read_mo(fh) if isinstance(m.id, str) and m.string]
    templates = sorted((i for i in ids if _FIELD.search(i)), key=lambda t: -len(_FIELD.sub("", t)))
    return [(re.compile(_regex(t), re.DOTALL), t) for t in templates]


def _regex(template: str) -> str:
    pieces = []
    position = 0
    seen: set[str] = set()
    for field in _FIELD.finditer(template):
        pieces.append(re.escape(template[position : field.start()]))
        name = field.group(1)
        # A value never spans the "; " between two messages; a repeated field repeats it.
        # (a value may be empty: a blank field is shown as "()")
        pieces.append(f"(?P={name})" if name in seen else f"(?P<{name}>(?:(?!{_PARTS}).)*?)")
        seen.add(name)
        position = field.end()
    pieces.append(re.escape(template[position:]))
    return "".join(pieces)
