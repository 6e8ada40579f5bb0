"""The dataset catalogue: contracts listed for people, and ``docs/datasets.md``."""

from __future__ import annotations

from collections.abc import Iterable

from telereg.ingest.contracts import Contract
from telereg.reference.directory import ADMINISTRATION


def datasets_markdown(contracts: Iterable[Contract]) -> str:
    """The reference page generated from the contracts (a test keeps it in step)."""
    lines = [
        "# Datasets",
        "",
        "Generated from the data contracts by `telereg datasets --markdown`; do not edit by hand.",
        "Every file is validated against its contract at ingest: rows that break a rule are",
        "quarantined with their row number, column and reason; the rest go to the lake.",
        "Columns marked as personal identifiers are pseudonymised before anything is written.",
        "Headers are matched case-insensitively, and the Chinese names listed are accepted too.",
        "A column with a form gives it in words, an example value and, in code, the regular",
        "expression a whole value must match; the error report names the form in words, with",
        "its example, in the reader's language.",
        "",
    ]
    for contract in sorted(contracts, key=lambda c: (c.domain, c.name)):
        lines += [
            f"## `{contract.name}` — {contract.title} / {contract.title_zh}",
            "",
            contract.description,
            "",
            f"- domain: `{contract.domain}`",
            f"- formats: {', '.join(f.value for f in contract.formats)}",
        ]
        if contract.administration_only:
            lines.append(
                f"- submitted by the administration only, under the operator code "
                f"`{ADMINISTRATION}`; not by operators' users"
            )
        if contract.unique:
            keys = "; ".join("+".join(key) for key in contract.unique)
            lines.append(f"- unique within a file: {keys}")
        lines.append(f"- month: {month_rule(contract, markdown=True)}")
        if contract.coordinates:
            lon, lat = contract.coordinates
            lines.append(f"- `{lon}`/`{lat}` are converted from GCJ-02 when the file says so")
        lines += [
            "",
            "| column | type | 中文 | rules | description |",
            "|---|---|---|---|---|",
        ]
        for column in contract.columns:
            aliases = ", ".join(a for a in column.aliases if a != column.description_zh)
            zh = column.description_zh + (f" ({aliases})" if aliases else "")
            rules = "; ".join(contract.rules_of(column)).replace("|", "\\|")
            lines.append(
                f"| `{column.name}` | {column.type.value} | {zh} | {rules} | {column.description} |"
            )
        lines.append("")
    return "\n".join(lines)


def month_rule(contract: Contract, *, markdown: bool = False) -> str:
    """How a submission of ``contract`` gets its month, in words (docs and the CLI)."""
    if contract.period_column:
        column = f"`{contract.period_column}`" if markdown else contract.period_column
        return (
            f"from {column}: taken from the rows when none is given, and rows "
            "outside it are quarantined"
        )
    if contract.standing:
        return (
            "optional (a standing list: sent without one, it is filed under the month it arrives)"
        )
    return "give --period YYYY-MM (the rows carry no date)"


def contract_summary(contract: Contract) -> dict[str, object]:
    """A contract as JSON for the API."""
    return {
        "name": contract.name,
        "domain": contract.domain,
        "title": contract.title,
        "title_zh": contract.title_zh,
        "description": contract.description,
        "description_zh": contract.description_zh,
        "formats": [f.value for f in contract.formats],
        "unique": ["+".join(key) for key in contract.unique],
        "period_column": contract.period_column,
        "administration_only": contract.administration_only,
        "standing": contract.standing,
        "columns": [
            {
                "name": c.name,
                "type": c.type.value,
                "required": c.required,
                "description": c.description,
                "description_zh": c.description_zh,
                "aliases": list(c.aliases),
                "rules": contract.rules_of(c),
                # (the form a value must have: in words, by example, and as the expression)
                "form": {
                    "description": c.pattern.words,
                    "example": c.pattern.example,
                    "pattern": c.pattern.regex,
                }
                if c.pattern
                else None,
                "personal_identifier": c.identifier.value if c.identifier else None,
            }
            for c in contract.columns
        ],
    }
