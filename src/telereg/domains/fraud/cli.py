"""``telereg fraud …``: scan a month, list and move cases, hand over, verify."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from telereg.core.db import session_scope
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.fraud import handover, service

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
    listed = service.suspect_list(
        settings,
        principal=principal,
        period=period,
        kind=kind,
        operator=operator,
        city=city,
        limit=limit,
    )
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    table = Table(title=f"suspects {period}: {len(listed['suspects'])} of {listed['total']:,}")
    table.add_column("line (token)", no_wrap=True, min_width=32)  # a token is never cut
    for name in ("kind", "operator", "city", "score", "calls/day", "why"):
        table.add_column(name)
    for s in listed["suspects"]:
        cells = (s["line"], s["kind"], s["operator"], s["home_city"], f"{s['score']:g}")
        table.add_row(*cells, str(s["calls_per_day"]), ", ".join(s["rules"]))
    out.print(table)


def over_limit_command(
    settings: Settings,
    principal: Principal,
    *,
    period: str,
    operator: str | None,
    limit: int,
    as_json: bool,
) -> None:
    listed = service.ids_over_limit(
        settings, principal=principal, period=period, operator=operator, limit=limit
    )
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    shown, total, allowed = len(listed["ids"]), listed["total"], listed["limit_per_operator"]
    table = Table(title=f"ID numbers over {allowed} cards, {period}: {shown} of {total:,}")
    table.add_column("ID number (token)", no_wrap=True, min_width=32)  # never cut
    for name in ("operator", "cards", "all operators"):
        table.add_column(name, justify="right" if name != "operator" else "left")
    for r in listed["ids"]:
        table.add_row(r["id_number"], r["operator"], str(r["cards"]), str(r["all_operators"]))
    out.print(table)


def identity_command(
    settings: Settings,
    principal: Principal,
    *,
    period: str,
    operator: str | None,
    limit: int,
    as_json: bool,
) -> None:
    listed = service.identity_list(
        settings, principal=principal, period=period, operator=operator, limit=limit
    )
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    shown, total = len(listed["cards"]), listed["total"]
    table = Table(
        title=f"cards whose holder is likely not the user, {period}: {shown} of {total:,}"
    )
    table.add_column("line (token)", no_wrap=True, min_width=32)  # never cut
    for name in ("operator", "registered in", "activated", "IDs on handset", "why"):
        table.add_column(name)
    for c in listed["cards"]:
        cells = (c["line"], c["operator"], c["home_city"], c["activated_at"])
        table.add_row(*cells, str(c["imei_identities"]), ", ".join(c["signals"]))
    out.print(table)


def blocklist_command(settings: Settings, principal: Principal, *, as_json: bool) -> None:
    with session_scope(settings) as session:
        listed = service.blocked_domains(session, principal=principal)
    if as_json:
        out.print_json(json.dumps(listed, ensure_ascii=False))
        return
    for entry in listed:
        sys.stdout.write(f"{entry['domain']}\n")  # plain lines, for a resolver's configuration


def cases_command(
    settings: Settings, principal: Principal, *, status: str | None, as_json: bool
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
            for c in service.case_queue(session, principal=principal, status=status)
        ]
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "status", "type", "title", "handler", "opened", title="fraud cases")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


def move_command(
    settings: Settings, principal: Principal, *, case_id: int, to: str, note: str
) -> None:
    with session_scope(settings) as session:
        case = service.move_case(session, principal=principal, case_id=case_id, to=to, note=note)
        out.print(f"case {case.id} is now {case.status}")


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
    shutil.copyfile(result.path, out_file)
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
