"""Every UI string goes through the catalogs, and the catalogs are complete and compiled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from telereg.core import i18n

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "src/telereg/locale"


def _catalog(language: str):
    with (LOCALES / language / "LC_MESSAGES/messages.po").open("rb") as fh:
        return read_po(fh)


def test_the_template_catalog_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "--no-location",
            "-o",
            str(fresh),
            "src/telereg",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with fresh.open("rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    known = {m.id for m in _catalog("zh_CN") if m.id}
    missing = extracted - known
    assert not missing, f"run scripts/i18n.sh and translate: {sorted(missing)}"


def test_every_message_has_a_chinese_translation() -> None:
    untranslated = [m.id for m in _catalog("zh_CN") if m.id and not m.string]
    assert not untranslated, untranslated


def test_compiled_catalogs_match_their_sources() -> None:
    for language in i18n.LANGUAGES:
        source = {m.id: m.string for m in _catalog(language) if m.id and m.string}
        with (LOCALES / language / "LC_MESSAGES/messages.mo").open("rb") as fh:
            compiled = {m.id: m.string for m in read_mo(fh) if m.id}
        assert compiled == source, f"recompile {language}: scripts/i18n.sh compile"


def test_language_selection() -> None:
    token = i18n.current_language.set("en")
    try:
        assert i18n.gettext("Sign in") == "Sign in"
    finally:
        i18n.current_language.reset(token)
    token = i18n.current_language.set("zh_CN")
    try:
        assert i18n.gettext("Sign in") == "登录"
    finally:
        i18n.current_language.reset(token)
    assert i18n.normalise_language("zh-Hans") == "zh_CN"
    assert i18n.normalise_language("en-US") == "en"
    assert i18n.normalise_language("fr") == "zh_CN"
