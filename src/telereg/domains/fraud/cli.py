"""``telereg fraud …``: scan a month, list and move cases, hand over, verify, purge."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from telereg.core.db import session_scope
from telereg.core.errors import InputError
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import casework, findings, handover, retention, service

out = Console()


def scan_command(settings: Settings, principal: Principal, *, period: str, as_json: bool) -> None:
    with out.status(f"scanning {period} …") as spinner, session_scope(settings) as session:
        summary = service.scan(
            session,
            settings=settings,
            principal=principal,
            period=period,
            progress=lambda stage: spinner.update(f"scanning {period}: {stage} …"),
        )
    if as_json:
        out.print_json(json.dumps(summary.__dict__, ensure_ascii=False))
        return
    for line in summary.lines_for_demo():
        out.print(line)
    out.print(f"results: {service.results_dir(settings, period)} ({summary.seconds} s)")


def _print_listing(
    listed: dict[str, Any],
    key: str,
    title: str,
    headers: tuple[str, ...],
    cells: Callable[[dict[str, Any]], tuple[str, ...]],
    *,
    as_json: bool,
) -> None:
    """A service's listing as JSON, or as a table whose first column (a token) is never cut."""
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    table = Table(title=f"{title}: {len(listed[key])} of {listed['total']:,}")
    table.add_column(headers[0], no_wrap=True, min_width=32)
    for name in headers[1:]:
        table.add_column(name)
    for row in listed[key]:
        table.add_row(*cells(row))
    out.print(table)


def suspects_command(
    settings: Settings,
    principal: Principal,
    *,
    period: str,
    kind: str | None,
    operator: str | None,
    city: str | None,
    limit: int,
    as_json: bool,
) -> None:
    listed = findings.suspect_list(
        settings,
        principal=principal,
        period=period,
        kind=kind,
        operator=operator,
        city=city,
        limit=limit,
    )
    _print_listing(
        listed,
        "suspects",
        f"suspects {period}",
        ("line (token)", "kind", "operator", "city", "score", "calls/day", "why"),
        lambda s: (
            s["line"],
            s["kind"],
            s["operator"],
            s["home_city"],
            f"{s['score']:g}",
            str(s["calls_per_day"]),
            ", ".join(s["rules"]),
        ),
        as_json=as_json,
    )


def over_limit_command(
    settings: Settings,
    principal: Principal,
    *,
    period: str,
    operator: str | None,
    limit: int,
    as_json: bool,
) -> None:
    listed = findings.ids_over_limit(
        settings, principal=principal, period=period, operator=operator, limit=limit
    )
    _print_listing(
        listed,
        "ids",
        f"ID numbers over {listed['limit_per_operator']} cards, {period}",
        ("ID number (token)", "operator", "cards", "all operators"),
        lambda r: (r["id_number"], r["operator"], str(r["cards"]), str(r["all_operators"])),
        as_json=as_json,
    )


def identity_command(
    settings: Settings,
    principal: Principal,
    *,
    period: str,
    operator: str | None,
    limit: int,
    as_json: bool,
) -> None:
    listed = findings.identity_list(
        settings, principal=principal, period=period, operator=operator, limit=limit
    )
    _print_listing(
        listed,
        "cards",
        f"cards whose holder is likely not the user, {period}",
        ("line (token)", "operator", "registered in", "activated", "IDs on handset", "why"),
        lambda c: (
            c["line"],
            c["operator"],
            c["home_city"],
            c["activated_at"],
            str(c["imei_identities"]),
            ", ".join(c["signals"]),
        ),
        as_json=as_json,
    )


def blocklist_command(settings: Settings, principal: Principal, *, as_json: bool) -> None:
    with session_scope(settings) as session:
        listed = casework.blocked_domains(session, principal=principal)
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    for entry in listed:
        sys.stdout.write(f"{entry['domain']}\n")  # plain lines, for a resolver's configuration


def cases_command(
    settings: Settings,
    principal: Principal,
    *,
    status: str | None,
    kind: str | None,
    operator: str | None = None,
    period: str | None = None,
    order: str,
    as_json: bool,
) -> None:
    with session_scope(settings) as session:
        rows = [
            {
                "id": c.id,
                "status": c.status,
                "type": c.subject.get("type", ""),
                "title": c.title,
                "handler": c.handler,
                "opened": c.opened_at.date().isoformat(),
            }
            for c in casework.case_queue(
                session,
                principal=principal,
                status=status,
                kind=kind,
                operator=operator,
                period=period,
                order=order,
            )
        ]
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "status", "type", "title", "handler", "opened", title="fraud cases")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


def case_command(settings: Settings, principal: Principal, *, case_id: int, as_json: bool) -> None:
    """One case and its history (as ``GET /api/v1/fraud/cases/{id}``)."""
    with session_scope(settings) as session:
        case = casework.get_case(session, principal=principal, case_id=case_id)
        history = casework.case_history(session, principal=principal, case_id=case_id)
        found: dict[str, Any] = {
            "id": case.id,
            "status": case.status,
            "title": case.title,
            "subject": case.subject,
            "agency": case.agency.code if case.agency else None,
            "outcome": case.outcome,
            "history": history,
        }
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    out.print(f"case {found['id']} · {found['status']} · {found['title']}")
    if found["agency"]:
        out.print(f"handed over to {found['agency']}; outcome: {found['outcome'] or '—'}")
    elif found["outcome"]:
        out.print(f"outcome: {found['outcome']}")  # decided by the administration, or dismissed
    table = Table("at (UTC)", "by", "step", "agency", "note", title=f"case {case_id}: history")
    for step in history:
        done = f"{step['step']} ({step['values']})" if step.get("values") else step["step"]
        table.add_row(step["at"], step["actor"], done, step["agency"], step["note"])
    out.print(table)


def move_command(
    settings: Settings, principal: Principal, *, case_ids: list[int], to: str, note: str
) -> None:
    """Move one case or several with one note: all of them, or none."""
    with session_scope(settings) as session:
        moved = casework.move_cases(
            session, principal=principal, case_ids=case_ids, to=to, note=note
        )
        for case in moved:
            decided = f", decided {case.outcome}: {_DECIDED[to]}" if to in _DECIDED else ""
            out.print(
                f"case {case.id} is now {case.status}{decided}", highlight=False, soft_wrap=True
            )


#: What the administration's decision on a case sets in motion, said when it is taken.
_DECIDED = {
    "domain_blocked": "the domain was blocked: it is on the block list (telereg fraud blocklist)",
    "cards_cancelled": "the operator is ordered to cancel the cards over the limit",
    "no_action": "nothing further is done",
}


def export_command(
    settings: Settings,
    principal: Principal,
    *,
    case_ids: list[int],
    agency: str,
    note: str,
    out_file: Path,
    reveal_reason: str | None,
) -> None:
    if out_file.exists():
        # (checked before the cases move: a hand-over refused afterwards would leave them
        # referred with no package in the officer's hands)
        raise InputError(f"{out_file} exists; name a new file", where="--out")
    with session_scope(settings) as session:
        result = handover.export(
            session,
            settings=settings,
            principal=principal,
            case_ids=case_ids,
            agency_code=agency,
            note=note,
            reveal_reason=reveal_reason,
        )
    # Readable by its owner only: with --reveal it holds clear numbers.
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(result.archive)
    out.print(
        f"hand-over of {len(result.manifest['cases'])} case(s) to {agency} written: {out_file}"
    )


def dispose_command(
    settings: Settings, principal: Principal, *, case_id: int, disposal: str, note: str
) -> None:
    with session_scope(settings) as session:
        case = handover.record_disposal(
            session, principal=principal, case_id=case_id, disposal=disposal, note=note
        )
        out.print(f"case {case.id} resolved: {disposal}")


def verify_command(settings: Settings, *, path: Path) -> None:
    manifest = handover.verify(path, settings.secret("handover_key"))
    out.print(
        f"signature valid: {len(manifest['cases'])} case(s) for {manifest['agency']}, "
        f"made {manifest['created_at']} by {manifest['created_by']}"
    )


def purge_command(
    settings: Settings, principal: Principal, *, dry_run: bool, as_json: bool
) -> None:
    """Remove the files of the hand-over packages past ``handover_retention_days``."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("purging hand-over packages …", total=None)
        run = retention.purge(
            settings,
            principal=principal,
            dry_run=dry_run,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        out.print_json(json.dumps(run.describe(), ensure_ascii=False))
        return
    if not run.retention_days:
        out.print("packages are kept forever (TELEREG_HANDOVER_RETENTION_DAYS is 0): none purged")
        return
    verb = "would be purged" if dry_run else "purged"
    table = Table(
        "agency",
        "package",
        "made (UTC)",
        "cases",
        "file",
        title=f"packages made over {run.retention_days} days ago: {len(run.purged)} {verb}",
    )
    for p in run.purged:
        gone = "would be removed" if dry_run else "removed"
        table.add_row(
            p.agency,
            p.name,
            p.made.isoformat(timespec="seconds"),
            ", ".join(map(str, p.cases)),
            gone if p.file_kept else "already gone",
        )
    out.print(table)
    for name in run.kept_open:
        out.print(f"kept: {name} (a case of it is still with the agency)", highlight=False)
