"""The documentation keeps up with the code: every setting and every CLI command is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from telereg.cli import app
from telereg.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "docs"
CONFIGURATION = DOCS_DIR / "configuration.md"


def _documentation() -> str:
    """README.md (when present) and every Markdown file under docs/."""
    paths = [ROOT / "README.md", *sorted(DOCS_DIR.glob("*.md"))]
    return "\n".join(path.read_text(encoding="utf-8") for path in paths if path.is_file())


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every leaf command under ``command`` as ``telereg <group> <command>``."""
    subcommands: dict[str, Any] | None = getattr(command, "commands", None)
    if not subcommands:
        return [" ".join(("telereg", *prefix))]
    paths: list[str] = []
    for name, sub in sorted(subcommands.items()):
        if getattr(sub, "hidden", False):
            continue
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


def _mentions(text: str, command: str) -> bool:
    """Whether ``command`` appears as whole words (``telereg users to`` is not in ``… token``)."""
    return re.search(re.escape(command) + r"(?![\w-])", text) is not None


def test_every_setting_is_in_configuration_md() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = [
        f"TELEREG_{name.upper()}"
        for name in Settings.model_fields
        if f"`TELEREG_{name.upper()}`" not in text
    ]
    assert not missing, f"settings missing from {CONFIGURATION.name}: {', '.join(missing)}"


def test_mentions_matches_whole_commands_only() -> None:
    assert _mentions("run `telereg users token bob`", "telereg users token")
    assert not _mentions("telereg users token bob", "telereg users to")
    assert not _mentions("telereg users revoke-token 3", "telereg users revoke")


def test_command_walk_finds_groups_and_commands() -> None:
    paths = _command_paths(typer.main.get_command(app))
    assert "telereg serve" in paths
    assert "telereg users add" in paths
    assert "telereg db upgrade" in paths
    assert "telereg users" not in paths


def test_every_cli_command_is_documented() -> None:
    text = _documentation()
    missing = [
        path for path in _command_paths(typer.main.get_command(app)) if not _mentions(text, path)
    ]
    assert not missing, f"CLI commands missing from README.md and docs/: {', '.join(missing)}"


def test_datasets_doc_is_generated_from_the_contracts() -> None:
    from telereg.ingest.catalog import datasets_markdown
    from telereg.registry import CONTRACTS

    committed = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    assert committed == datasets_markdown(CONTRACTS.values()), (
        "docs/datasets.md is stale: run `telereg datasets --markdown > docs/datasets.md`"
    )
