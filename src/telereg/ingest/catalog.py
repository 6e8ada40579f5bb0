"""The dataset catalogue: contracts listed for people, and ``docs/datasets.md``."""

from __future__ import annotations

from collections.abc import Iterable

from telereg.ingest.contracts import Contract


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
            lines.append("- submitted by the administration only, not by operators' users")
        if contract.unique:
            keys = "; ".join("+".join(key) for key in contract.unique)
            lines.append(f"- unique within a file: {keys}")
        if contract.period_column:
            lines.append(
                f"- rows must fall in the submission's month by `{contract.period_column}`"
                " (the month is taken from it when none is given)"
            )
        elif contract.standing:
            lines.append(
                "- a standing list: sent without a month, it is filed under the month it arrives"
            )
        else:
            lines.append("- the submission's month must be given: the rows do not tell it")
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
            rules = "; ".join(column.rules()).replace("|", "\\|")
            lines.append(
                f"| `{column.name}` | {column.type.value} | {zh} | {rules} | {column.description} |"
            )
        lines.append("")
    return "\n".join(lines)


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
                "rules": c.rules(),
                "personal_identifier": c.identifier.value if c.identifier else None,
            }
            for c in contract.columns
        ],
    }
