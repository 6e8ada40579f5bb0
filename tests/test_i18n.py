"""Every UI string goes through the catalogs, and the catalogs are complete and compiled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from telereg import registry
from telereg.core import i18n
from telereg.ingest import reasons

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


def test_every_message_template_keeps_its_fields_in_chinese() -> None:
    fields = re.compile(r"\{([a-z_]+)\}")
    templates = [m for m in _catalog("zh_CN") if m.id and fields.search(m.id)]
    assert len(templates) > 30
    for message in templates:
        assert set(fields.findall(message.string)) == set(fields.findall(message.id)), message.id
        # A template must say something besides its values, or it would match any text.
        assert len(fields.sub("", message.id).strip()) >= 3, message.id


def test_stored_messages_are_shown_in_the_chosen_language() -> None:
    message = "; ".join(
        [
            reasons.SOME_QUARANTINED.format(quarantined=3, total=120),
            reasons.IGNORED_COLUMNS.format(columns="remark"),
            "a note no template knows",
        ]
    )
    assert i18n.localise(message, "zh_CN") == (
        "120 行中有 3 行被隔离; 已忽略未知列：remark; a note no template knows"
    )
    assert i18n.localise(message, "en") == message
    # A template with "; " inside it is matched whole; values are translated in turn.
    missing = reasons.MISSING_COLUMNS.format(missing="date", expected="date, city", found="x")
    assert i18n.localise(missing, "zh_CN") == "缺少必填列 date；应有 date, city；实际为 x", (
        "column names are data, even when they are words the catalog knows"
    )
    two = "; ".join([reasons.NOT_VALID.format(type="integer"), reasons.REQUIRED])
    assert i18n.localise(two, "zh_CN") == "不是有效的整数; 缺少必填值"
    nested = reasons.UNKNOWN_VALUE.format(reference=reasons.REGION_CODE.format(level="county"))
    assert i18n.localise(nested, "zh_CN") == "未知值：在所配置地区的区县代码中找不到"


def test_alternatives_are_joined_by_the_languages_or() -> None:
    both = reasons.RULE_REFERS_TO.format(
        reference=reasons.REGION_CODE.format(level="city or county")
    )
    assert i18n.localise(both, "zh_CN") == "须存在于所配置地区的地市或区县代码"
    assert i18n.localise(both, "en") == both
    shapes = reasons.RULE_GEOMETRY.format(kinds="Point or Polygon or MultiPolygon")
    assert (
        i18n.localise(shapes, "zh_CN") == "WKT / GeoJSON 几何：Point 或 Polygon 或 MultiPolygon"
    ), "the names of GeoJSON's types stay; the word between them is the reader's"
    assert i18n.localise(shapes, "en") == shapes


def test_every_form_a_contract_declares_is_told_in_chinese() -> None:
    """A value of the wrong form is told the form in the reader's words, with its example."""
    forms = {
        column.pattern
        for contract in registry.CONTRACTS.values()
        for column in contract.columns
        if column.pattern is not None
    }
    for form in forms:
        reason = reasons.WRONG_FORM.format(form=form.words, example=form.example)
        words = i18n.localise(form.words, "zh_CN")
        assert words != form.words, f"translate: {form.words}"
        assert i18n.localise(reason, "zh_CN") == f"格式不符合要求：应为{words}，例如 {form.example}"
