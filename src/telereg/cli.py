"""The ``telereg`` command line: a thin adapter over the service functions.

User mistakes print one line on stderr and exit non-zero, never a traceback.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import sqlalchemy.exc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telereg.core import accounts, i18n
from telereg.core.db import session_scope, utcnow
from telereg.core.errors import InputError, TeleregError
from telereg.core.periods import month_problem
from telereg.core.permissions import Role
from telereg.core.principal import Principal, cli_principal
from telereg.core.settings import (
    Settings,
    check_cookie_transport,
    is_new_installation,
    load_settings,
    owner_only,
)
from telereg.ingest.service import SubmissionRecord
from telereg.scenario.files import OperatorFile
from telereg.scenario.model import Scale
from telereg.scenario.runner import ScenarioSummary

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="telereg",
    help="telereg: supervision platform for telecom regulators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="State database: migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
operators_app = typer.Typer(
    help="Operators that report to the administration.", no_args_is_help=True
)
agencies_app = typer.Typer(help="Partner agencies work is handed to.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(operators_app, name="operators")
app.add_typer(agencies_app, name="agencies")
buildout_app = typer.Typer(
    help="Build-out: 5G and gigabit coverage, corridors, key places.", no_args_is_help=True
)
app.add_typer(buildout_app, name="buildout")
fraud_app = typer.Typer(
    help="Anti-fraud: SIM boxes, card-breaking, fraud domains, cases for the police.",
    no_args_is_help=True,
)
app.add_typer(fraud_app, name="fraud")
jobs_app = typer.Typer(
    help="Jobs: long work started from the web or the API, each in its own process.",
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")
audit_app = typer.Typer(help="The audit log: read it, or take it out as CSV.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (lake, state DB, secrets). Default: $TELEREG_DATA_DIR or ./var.",
        show_default=False,
    ),
]
Host = Annotated[str, typer.Option(help="Address to listen on.")]
DEFAULT_HOST = "127.0.0.1"
Port = Annotated[int, typer.Option(help="Port to listen on.")]
InsecureCookies = Annotated[
    bool,
    typer.Option(
        "--insecure-cookies",
        help="Serve another address than loopback although cookies are not Secure "
        "(plain HTTP on a trusted network).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UserName = Annotated[str, typer.Argument(help="The user's username (telereg users list).")]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _print_rows(rows: list[dict[str, object]], *, as_json: bool) -> None:
    """Print rows as JSON, or as a table whose columns are the first row's keys."""
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table()
    for i, name in enumerate(rows[0].keys() if rows else ()):
        # The first column names what a row is (a code, a dataset): what one types next.
        table.add_column(name, no_wrap=i == 0)
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    out.print(table)


def _progress() -> Progress:
    """A progress bar on stderr, so that stdout stays the command's output."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _settings(data_dir: Path | None, *, reading: bool = False) -> Settings:
    """The settings, with ``--data-dir`` applied; ``reading``: the command only reads, and
    refuses a data dir that holds no installation rather than start one."""
    # (the domains' own checks, imported alone: the registry loads every analysis)
    from telereg.domains.fraud.parameters import check_settings

    settings = load_settings(data_dir=data_dir, existing=reading)
    check_settings(settings)
    if is_new_installation(settings):
        # A command run from another directory, without TELEREG_DATA_DIR, would otherwise
        # start a second, empty installation without a word.
        err.print(
            f"note: no installation in {settings.data_dir.resolve()} yet; starting a new one "
            "(set TELEREG_DATA_DIR or --data-dir to use an existing one)",
            highlight=False,
            soft_wrap=True,
        )
    return settings


def _me() -> Principal:
    return cli_principal(getpass.getuser())


def _migrated(data_dir: Path | None, *, reading: bool = False) -> Settings:
    from telereg.system.migrate import upgrade

    settings = _settings(data_dir, reading=reading)
    upgrade(settings)
    return settings


def _serve(
    settings: Settings, host: str, port: int, workers: int, *, insecure_cookies: bool
) -> None:
    import uvicorn

    check_cookie_transport(settings, host=host, insecure_cookies=insecure_cookies)
    # Workers are separate processes: they rebuild the app from the environment.
    os.environ["TELEREG_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.log_format == "json":
        # (a log collector reads the output: every line of it is a JSON object)
        from telereg.core.logging import json_line

        print(json_line(f"telereg serving on http://{host}:{port}/", logger="telereg.serve"))
    else:
        out.print(f"telereg serving on [bold]http://{host}:{port}/[/bold]  (Ctrl+C to stop)")
    uvicorn.run(
        "telereg.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def demo(
    data_dir: DataDir = None,
    scale: Annotated[
        Scale, typer.Option(help="Size of the synthetic province: small (CI), medium, province.")
    ] = Scale.SMALL,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic province.")] = 2021,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Build and load the demo, print the login, exit.")
    ] = False,
    host: Host = DEFAULT_HOST,
    port: Port = 8000,
    insecure_cookies: InsecureCookies = False,
) -> None:
    """Build a synthetic province, load it through ingest, print a summary, serve the dashboard."""
    from telereg.registry import CONTRACTS, SYNTHESIZERS, run_analyses
    from telereg.scenario.demo import prepare
    from telereg.scenario.runner import run_scenario

    settings = _settings(data_dir)
    if settings.environment != "development":
        # It resets the admin's password and loads made-up operators' data: never on a real
        # installation.
        raise InputError(
            "the demo runs only with TELEREG_ENVIRONMENT=development, in a data dir of its "
            "own: it resets the admin's password and loads a synthetic province",
            where="demo",
        )
    if not no_serve:  # refused before the long build, not after it
        check_cookie_transport(settings, host=host, insecure_cookies=insecure_cookies)
    login = prepare(settings, principal=_me())
    started = utcnow()
    with _progress() as progress:
        task = progress.add_task("generating the province …", total=None)

        def on_file(item: OperatorFile, index: int, total: int) -> None:
            progress.update(
                task,
                total=total,
                completed=index,
                description=f"ingesting {item.operator} {item.period} {item.dataset}",
            )

        summary = run_scenario(
            settings,
            principal=_me(),
            scale=scale,
            seed=seed,
            synthesizers=SYNTHESIZERS,
            contracts=CONTRACTS,
            on_file=on_file,
        )
        progress.update(task, completed=summary.files, description="analysing …")
        findings = run_analyses(settings, principal=_me(), since=started)
        progress.update(task, completed=summary.files, description="done")
    _print_demo_summary(summary, findings)
    out.print(f"data dir: {settings.data_dir.resolve()}")
    out.print(
        f"admin login: [bold]{login.username}[/bold] / [bold]{login.password}[/bold]"
        " (password shown only this once)"
    )
    if no_serve:
        # (the options given to the demo, so that the command serves what it built)
        given = [f"--data-dir {shlex.quote(str(settings.data_dir.resolve()))}"] * bool(data_dir)
        given += [f"--host {shlex.quote(host)}"] * (host != DEFAULT_HOST)
        given += ["--insecure-cookies"] * insecure_cookies
        out.print(
            f"to serve the dashboard: telereg serve {' '.join([*given, f'--port {port}'])}",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(f"dashboard: http://{host}:{port}/")
    _serve(settings, host, port, workers=1, insecure_cookies=insecure_cookies)


def _print_demo_summary(summary: ScenarioSummary, findings: dict[str, list[str]]) -> None:
    table = Table(
        "dataset",
        "operator",
        "period",
        "status",
        "accepted",
        "quarantined",
        title=f"demo scenario: {summary.scale}, seed {summary.seed}",
    )
    for r in summary.records:
        table.add_row(
            r.dataset,
            r.operator,
            r.period,
            r.status,
            f"{r.rows_accepted:,}",
            f"{r.rows_quarantined:,}",
        )
    out.print(table)
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(summary.by_status().items()))
    out.print(
        f"submissions: {len(summary.records)} ({statuses}); rows accepted "
        f"{summary.rows_accepted:,}, quarantined {summary.rows_quarantined:,}"
    )
    out.print("findings per domain:")
    for domain, lines in findings.items():
        for line in lines:
            out.print(f"  {domain}: {line}", highlight=False)
    out.print(f"ground truth (never ingested): {summary.truth_file}")


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    insecure_cookies: InsecureCookies = False,
) -> None:
    """Serve the web dashboard and the JSON API (migrates the state DB first)."""
    _serve(_migrated(data_dir), host, port, workers, insecure_cookies=insecure_cookies)


@app.command()
def ingest(
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8 or GBK), XLSX, Parquet or GeoJSON file.")
    ],
    dataset: Annotated[str, typer.Option(help="Dataset name (see telereg datasets).")],
    operator: Annotated[str, typer.Option(help="Operator code the data belongs to.")],
    period: Annotated[
        str | None,
        typer.Option(
            help="Month YYYY-MM the file describes. Taken from the rows when the dataset has a "
            "date column; needed otherwise, except for standing lists (corridors, key places, "
            "population). See telereg datasets NAME."
        ),
    ] = None,
    crs: Annotated[
        str,
        typer.Option(help="Coordinates in the file: wgs84, or gcj02 (Chinese web maps); any case."),
    ] = "wgs84",
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Validate an operator's file and load it into the lake; bad rows go to quarantine."""
    from telereg.ingest.service import ingest_file
    from telereg.registry import contract

    if not file.is_file():
        raise InputError(f"no such file: {file}")
    crs = crs.lower()  # (WGS84, as coordinate systems are usually written, too)
    if crs not in ("wgs84", "gcj02"):
        raise InputError(f"--crs must be wgs84 or gcj02, not {crs!r}")
    settings = _migrated(data_dir)
    with err.status("ingesting …") as status:
        record = ingest_file(
            settings,
            principal=_me(),
            contract=contract(dataset),
            path=file,
            filename=file.name,
            operator=operator,
            period=period,
            crs="gcj02" if crs == "gcj02" else "wgs84",
            progress=lambda stage: status.update(f"{file.name}: {stage} …"),
        )
    if as_json:
        out.print_json(json.dumps(record.as_dict(), ensure_ascii=False))
    else:
        _print_submission(record)
    if record.status == "rejected" and record.duplicate_of is None:
        raise typer.Exit(1)


def _print_submission(record: SubmissionRecord) -> None:
    colour = {"accepted": "green", "partial": "yellow", "rejected": "red"}[record.status]
    if record.reinstated:
        out.print(f"same file as submission {record.duplicate_of}: it is in use again")
    elif record.duplicate_of is not None:
        out.print(f"same file as submission {record.duplicate_of}: nothing changed")
    out.print(
        f"submission {record.id}: [{colour}]{record.status}[/{colour}] · {record.dataset} · "
        f"{record.operator} · {record.period} · {record.rows_accepted:,} of "
        f"{record.rows_total:,} rows accepted, {record.rows_quarantined:,} quarantined"
    )
    out.print(record.message, highlight=False)
    if record.superseded and record.reinstated:
        out.print(f"submission {record.superseded} is replaced by it")
    elif record.superseded:
        out.print(f"supersedes submission {record.superseded}")
    for reason, count in list(record.errors_by_reason.items())[:10]:
        out.print(f"  {count:>8,} × {reason}", highlight=False)


@app.command()
def submissions(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    operator: Annotated[str | None, typer.Option(help="Only this operator.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many, newest first (1-1000).")
    ] = 30,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List submissions, newest first, with their status and row counts."""
    from telereg.ingest.submissions import list_submissions

    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        records, _ = list_submissions(
            session, principal=_me(), dataset=dataset, operator=operator, limit=limit
        )
    rows: list[dict[str, object]] = [
        {
            "id": r.id,
            "dataset": r.dataset,
            "operator": r.operator,
            "period": r.period,
            "status": r.status,
            "accepted": r.rows_accepted,
            "quarantined": r.rows_quarantined,
            "current": r.current,
            "file": r.filename,
        }
        for r in records
    ]
    _print_rows(rows, as_json=as_json)


@app.command()
def datasets(
    name: Annotated[
        str | None, typer.Argument(help="One dataset: its columns and their rules.")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/datasets.md.")] = False,
    as_json: AsJson = False,
) -> None:
    """List the datasets operators can submit, from their contracts."""
    from telereg.ingest.catalog import contract_summary, datasets_markdown, month_rule
    from telereg.registry import CONTRACTS, contract

    if markdown:
        print(datasets_markdown(CONTRACTS.values()), end="")
        return
    if name is not None:
        one = contract(name)
        if as_json:
            out.print_json(json.dumps(contract_summary(one), ensure_ascii=False))
            return
        out.print(f"[bold]{one.name}[/bold] · {one.title} / {one.title_zh}", highlight=False)
        out.print(one.description, highlight=False)
        out.print(f"month: {month_rule(one)}", highlight=False)
        _print_rows(
            [
                {
                    "column": c.name,
                    "type": c.type.value,
                    "中文": c.description_zh,
                    "rules": "; ".join(one.rules_of(c)),
                }
                for c in one.columns
            ],
            as_json=False,
        )
        return
    if as_json:
        out.print_json(
            json.dumps([contract_summary(c) for c in CONTRACTS.values()], ensure_ascii=False)
        )
        return
    rows: list[dict[str, object]] = [
        {
            "dataset": c.name,
            "domain": c.domain,
            "title": c.title,
            "中文": c.title_zh,
            "columns": len(c.columns),
            "formats": ",".join(f.value for f in c.formats),
        }
        for c in CONTRACTS.values()
    ]
    _print_rows(rows, as_json=as_json)


@app.command()
def regions(
    level: Annotated[
        str, typer.Option(help="Which regions: city or county.", show_default=True)
    ] = "county",
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """The region's cities or counties: area and population, and whether it is estimated."""
    from telereg.geography.service import populated

    if level not in ("city", "county"):
        raise typer.BadParameter("city or county", param_hint="--level")
    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        found = populated(session, settings)
    members = found.cities if level == "city" else found.counties
    rows: list[dict[str, object]] = [
        {
            "code": r.code,
            "name": r.name,
            "parent": r.parent,
            "area_km2": round(r.area_km2, 1),
            "population": r.population,
            "estimated": r.population_estimated,
        }
        for r in members
    ]
    _print_rows(rows, as_json=as_json)
    if not as_json:
        province = found.province
        err.print(f"{province.name} {province.code}; population: {found.population_source}")


def _check_month(period: str) -> None:
    if (problem := month_problem(period)) is not None:
        raise InputError(problem)


@buildout_app.command("coverage")
def buildout_coverage(
    period: Annotated[
        str | None,
        typer.Option(help="Month YYYY-MM; default: the latest every operator has sent sites for."),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Coverage of railways, expressways and key places, per operator and by any operator."""
    from telereg.domains.buildout.cli import coverage_command

    if period is not None:
        _check_month(period)
    coverage_command(_migrated(data_dir, reading=True), _me(), period=period, as_json=as_json)


@buildout_app.command("report")
def buildout_report(
    region: Annotated[str, typer.Option(help="Province or city code, e.g. 140000 or 140100.")],
    period: Annotated[str, typer.Option(help="Month YYYY-MM.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="The file to write the report to; must not exist.")
    ],
    output: Annotated[str, typer.Option("--format", help="pdf or html.")] = "pdf",
    language: Annotated[str, typer.Option(help="zh_CN (default) or en.")] = "zh_CN",
    data_dir: DataDir = None,
) -> None:
    """The periodic build-out analysis report for the province or a city (PDF or HTML)."""
    from telereg.reports.buildout import buildout_report as render

    if output not in ("pdf", "html"):
        raise InputError(f"--format must be pdf or html, not {output!r}")
    if language not in i18n.LANGUAGES:
        raise InputError(f"--language must be {' or '.join(i18n.LANGUAGES)}, not {language!r}")
    _check_month(period)
    if not out_file.parent.is_dir():
        raise InputError(f"no such directory: {out_file.parent}")
    if out_file.exists():
        # (as every export: an earlier report is never replaced without a word)
        raise InputError(f"{out_file} exists; choose another file", where="--out")
    settings = _migrated(data_dir, reading=True)
    with err.status("writing the report …"), session_scope(settings) as session:
        content = render(
            session,
            settings=settings,
            principal=_me(),
            region_code=region,
            period=period,
            language=language,
            output="pdf" if output == "pdf" else "html",
        )
    with out_file.open("xb") as written:  # (made meanwhile: refused all the same)
        written.write(content)
    out.print(f"report written: {out_file} ({len(content):,} bytes)")


@fraud_app.command("scan")
def fraud_scan(
    period: Annotated[str, typer.Option(help="Month YYYY-MM.")],
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Score every line, new card and observed domain of a month; open cases for suspects."""
    from telereg.domains.fraud.cli import scan_command

    scan_command(_migrated(data_dir), _me(), period=period, as_json=as_json)


@fraud_app.command("suspects")
def fraud_suspects(
    period: Annotated[str, typer.Option(help="Month YYYY-MM (a scanned one).")],
    kind: Annotated[str | None, typer.Option(help="sim_box or card.")] = None,
    operator: Annotated[str | None, typer.Option(help="Only this operator's lines.")] = None,
    city: Annotated[str | None, typer.Option(help="Only lines of this city code.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, highest first.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """A month's suspect lines, highest score first (lines are tokens)."""
    from telereg.domains.fraud.cli import suspects_command

    suspects_command(
        _migrated(data_dir, reading=True),
        _me(),
        period=period,
        kind=kind,
        operator=operator,
        city=city,
        limit=limit,
        as_json=as_json,
    )


@fraud_app.command("over-limit")
def fraud_over_limit(
    period: Annotated[str, typer.Option(help="Month YYYY-MM (a scanned one).")],
    operator: Annotated[str | None, typer.Option(help="Only this operator's rows.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, most cards first.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """ID numbers holding more active cards at one operator than allowed (IDs are tokens)."""
    from telereg.domains.fraud.cli import over_limit_command

    over_limit_command(
        _migrated(data_dir, reading=True),
        _me(),
        period=period,
        operator=operator,
        limit=limit,
        as_json=as_json,
    )


@fraud_app.command("identity")
def fraud_identity(
    period: Annotated[str, typer.Option(help="Month YYYY-MM (a scanned one).")],
    operator: Annotated[str | None, typer.Option(help="Only this operator's cards.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Cards whose registered holder is likely not their user, with the signals (tokens)."""
    from telereg.domains.fraud.cli import identity_command

    identity_command(
        _migrated(data_dir, reading=True),
        _me(),
        period=period,
        operator=operator,
        limit=limit,
        as_json=as_json,
    )


@fraud_app.command("blocklist")
def fraud_blocklist(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON (each domain with its case) instead of one domain a line."
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Domains whose case ended with domain_blocked, one a line (for resolvers)."""
    from telereg.domains.fraud.cli import blocklist_command

    blocklist_command(_migrated(data_dir, reading=True), _me(), as_json=as_json)


@fraud_app.command("cases")
def fraud_cases(
    status: Annotated[
        str | None,
        typer.Option(
            help="Only cases in this state: open, in_review, referred, resolved or closed."
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only cases of this kind: sim_box, card, identity, id_limit or domain."),
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Only this operator's lines (its code, e.g. CMCC).")
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="Only the findings of this month, YYYY-MM.")
    ] = None,
    order: Annotated[
        str, typer.Option(help="opened, or priority (highest score first within each kind).")
    ] = "opened",
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """The fraud case queue."""
    from telereg.domains.fraud.cli import cases_command

    cases_command(
        _migrated(data_dir, reading=True),
        _me(),
        status=status,
        kind=kind,
        operator=operator,
        period=period,
        order=order,
        as_json=as_json,
    )


@fraud_app.command("case")
def fraud_case(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """One case: what it is about, where it stands, and its history from the audit log."""
    from telereg.domains.fraud.cli import case_command

    case_command(_migrated(data_dir, reading=True), _me(), case_id=case_id, as_json=as_json)


@fraud_app.command("move")
def fraud_move(
    case_ids: Annotated[list[int], typer.Argument(help="Case ids: all move, or none.")],
    to: Annotated[
        str,
        typer.Option(
            help="in_review or closed (dismissed), or closed after resolved; in_review for a "
            "referred case withdraws its hand-over; or, for a domain "
            "or an ID number over the limit, the administration's decision: domain_blocked, "
            "cards_cancelled or no_action."
        ),
    ],
    note: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    data_dir: DataDir = None,
) -> None:
    """Move a case: open → in_review → (export) referred → resolved → closed."""
    from telereg.domains.fraud.cli import move_command

    move_command(_migrated(data_dir), _me(), case_ids=case_ids, to=to, note=note)


@fraud_app.command("export")
def fraud_export(
    case_ids: Annotated[list[int], typer.Argument(help="Case id(s) to hand over.")],
    out_file: Annotated[Path, typer.Option("--out", help="The package to write (.zip).")],
    note: Annotated[
        str,
        typer.Option(
            help="Covering note: the agency reads it, and the audit log keeps it as the "
            "hand-over's reason."
        ),
    ],
    agency: Annotated[str, typer.Option(help="Agency code.")] = "POLICE-AF",
    reveal_reason: Annotated[
        str | None,
        typer.Option("--reveal", help="Add clear numbers from the vault, for this reason."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Hand cases over to a police liaison as a signed package (CSV, XLSX, manifest)."""
    from telereg.domains.fraud.cli import export_command

    export_command(
        _migrated(data_dir),
        _me(),
        case_ids=case_ids,
        agency=agency,
        note=note,
        out_file=out_file,
        reveal_reason=reveal_reason,
    )


@fraud_app.command("dispose")
def fraud_dispose(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    disposal: Annotated[
        str,
        typer.Option(
            help="line_suspended, device_seized, domain_blocked, cards_cancelled or no_action."
        ),
    ],
    note: Annotated[str, typer.Option(help="What was done.")],
    data_dir: DataDir = None,
) -> None:
    """Record the agency's disposal of a referred case."""
    from telereg.domains.fraud.cli import dispose_command

    dispose_command(_migrated(data_dir), _me(), case_id=case_id, disposal=disposal, note=note)


@fraud_app.command("verify")
def fraud_verify(
    path: Annotated[Path, typer.Argument(help="A hand-over package.")],
    data_dir: DataDir = None,
) -> None:
    """Check a hand-over package's signature and file hashes."""
    from telereg.domains.fraud.cli import verify_command

    verify_command(_migrated(data_dir, reading=True), path=path)


packages_app = typer.Typer(
    help="Hand-over packages kept for the agencies: their retention.", no_args_is_help=True
)
fraud_app.add_typer(packages_app, name="packages")


@packages_app.command("purge")
def fraud_packages_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be purged; change nothing.")
    ] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Remove the files of hand-over packages older than TELEREG_HANDOVER_RETENTION_DAYS
    (their records stay, marked purged); run it daily from cron."""
    from telereg.domains.fraud.cli import purge_command

    purge_command(_migrated(data_dir), _me(), dry_run=dry_run, as_json=as_json)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply all state-DB migrations."""
    from telereg.system.migrate import upgrade

    settings = _settings(data_dir)
    out.print(f"state DB at revision {upgrade(settings)}")


@db_app.command("current")
def db_current(data_dir: DataDir = None) -> None:
    """Show the state DB's migration revision."""
    from telereg.system.migrate import current_revision, head_revision

    revision = current_revision(_settings(data_dir, reading=True))
    out.print(f"current: {revision or 'none (run telereg db upgrade)'}; head: {head_revision()}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[Role, typer.Option(help="Role of the user.")],
    operator: Annotated[str | None, typer.Option(help="Operator code (operator role).")] = None,
    agency: Annotated[str | None, typer.Option(help="Partner agency code (liaison role).")] = None,
    display_name: Annotated[str, typer.Option(help="Full name shown in the UI.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Add a user; prints a one-time password."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        _, password = accounts.create_user(
            session,
            principal=_me(),
            username=name,
            role=role,
            operator=operator,
            agency=agency,
            display_name=display_name,
        )
    out.print(f"user {name} ({role.value}) added")
    out.print(f"password (shown only this once): [bold]{password}[/bold]")


@jobs_app.command("list")
def jobs_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List the latest jobs, newest first, with their status and result."""
    from telereg.core import jobs

    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        rows: list[dict[str, object]] = [
            {k: v for k, v in jobs.describe(job).items() if as_json or k != "result"}
            for job in jobs.visible(session, settings, principal=_me())
        ]
    if not as_json:
        for row in rows:
            params = row["params"] if isinstance(row["params"], dict) else {}
            row["params"] = " ".join(f"{k}={v}" for k, v in params.items())
    _print_rows(rows, as_json=as_json)


@jobs_app.command("run")
def jobs_run(
    job_id: Annotated[int, typer.Argument(help="The job's id (telereg jobs list).")],
    lock_fd: Annotated[
        int | None,
        typer.Option(
            hidden=True, help="The job's lock, handed over by the process that queued it."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run a queued job in this process (the web and the API start jobs this way)."""
    from telereg import registry
    from telereg.core import jobs

    jobs.stop_within(jobs.STOP_GRACE_SECONDS)
    job = jobs.run(_migrated(data_dir), job_id=job_id, lock_fd=lock_fd, kinds=registry.JOB_KINDS)
    out.print(f"job {job.id} {job.status}" + (f": {job.message}" if job.message else ""))
    if job.status != jobs.JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument(help="The job's id (telereg jobs list).")],
    data_dir: DataDir = None,
) -> None:
    """Stop a queued or running job; the month keeps the results it had."""
    from telereg.core import jobs

    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        job = jobs.cancel(session, settings, principal=_me(), job_id=job_id)
        out.print(f"job {job.id} {job.status}")


@users_app.command("list")
def users_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List users with their role, binding and status."""
    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        rows: list[dict[str, object]] = [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "operator": u.operator.code if u.operator else None,
                "agency": u.agency.code if u.agency else None,
                "active": u.active,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in accounts.list_users(session, principal=_me())
        ]
    _print_rows(rows, as_json=as_json)


@users_app.command("disable")
def users_disable(
    name: UserName,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    data_dir: DataDir = None,
) -> None:
    """Disable a user and revoke its API tokens."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        accounts.disable_user(session, principal=_me(), username=name, reason=reason)
    out.print(f"user {name} disabled; its API tokens are revoked")


@users_app.command("enable")
def users_enable(
    name: UserName,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    data_dir: DataDir = None,
) -> None:
    """Enable a disabled user again (its old API tokens stay revoked)."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        accounts.enable_user(session, principal=_me(), username=name, reason=reason)
    out.print(f"user {name} enabled")


@users_app.command("tokens")
def users_tokens(name: UserName, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List a user's API tokens by id and prefix (the tokens themselves are never stored)."""
    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        rows: list[dict[str, object]] = [
            {
                "id": t.id,
                "prefix": t.prefix,
                "label": t.label,
                "created_at": t.created_at.isoformat(timespec="seconds"),
                "expires_at": t.expires_at.isoformat(timespec="seconds") if t.expires_at else None,
                "revoked_at": t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else None,
            }
            for t in accounts.list_tokens(session, principal=_me(), username=name)
        ]
    _print_rows(rows, as_json=as_json)


@users_app.command("password")
def users_password(
    name: UserName,
    keep_tokens: Annotated[
        bool,
        typer.Option(
            "--keep-tokens",
            help="Keep the user's API tokens (a forgotten password, not a stolen account).",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Reset a user's password (and lockout), end its sessions and revoke its API tokens;
    prints a one-time password."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        password = accounts.set_password(
            session, principal=_me(), username=name, keep_tokens=keep_tokens
        )
    out.print(f"new password (shown only this once) for {name}: [bold]{password}[/bold]")
    if not keep_tokens:
        out.print(f"{name}'s API tokens were revoked; issue new ones with `telereg users token`.")


@users_app.command("token")
def users_token(
    name: UserName,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    valid_days: Annotated[int | None, typer.Option(min=1, help="Expiry in days.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Issue an API token for a user; it is shown once and stored only hashed."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        issued = accounts.issue_token(
            session, principal=_me(), username=name, label=label, valid_days=valid_days
        )
    out.print(f"token {issued.id} for {name} (shown once):")
    print(issued.token)


@users_app.command("revoke-token")
def users_revoke_token(
    token_id: Annotated[
        int, typer.Argument(help="The token's id (telereg users tokens NAME lists them).")
    ],
    data_dir: DataDir = None,
) -> None:
    """Revoke an API token by its id."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        accounts.revoke_token(session, principal=_me(), token_id=token_id)
    out.print(f"token {token_id} revoked")


@operators_app.command("list")
def operators_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List operators."""
    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        rows: list[dict[str, object]] = [
            {"code": o.code, "name": o.name, "name_en": o.name_en}
            for o in accounts.list_operators(session)
        ]
    _print_rows(rows, as_json=as_json)


@operators_app.command("add")
def operators_add(
    code: Annotated[str, typer.Argument(help="Operator code, e.g. CMCC: what files name.")],
    name: Annotated[str, typer.Argument(help="Name, in Chinese (中国移动).")],
    name_en: Annotated[str, typer.Option(help="Name in English (China Mobile).")] = "",
    data_dir: DataDir = None,
) -> None:
    """Add an operator."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        accounts.add_operator(session, principal=_me(), code=code, name=name, name_en=name_en)
    out.print(f"operator {code} added")


@operators_app.command("add-standard")
def operators_add_standard(data_dir: DataDir = None) -> None:
    """Add the standard operators that are missing, CA (the administration's own data) too."""
    from telereg.reference.directory import add_standard_operators

    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        added = add_standard_operators(session, principal=_me())
    out.print(f"operators added: {', '.join(added)}" if added else "no operator was missing")


@agencies_app.command("list")
def agencies_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List partner agencies."""
    settings = _migrated(data_dir, reading=True)
    with session_scope(settings) as session:
        rows: list[dict[str, object]] = [
            {"code": a.code, "name": a.name, "name_en": a.name_en, "kind": a.kind}
            for a in accounts.list_agencies(session)
        ]
    _print_rows(rows, as_json=as_json)


@agencies_app.command("add")
def agencies_add(
    code: Annotated[str, typer.Argument(help="Agency code, e.g. POLICE-AF.")],
    name: Annotated[str, typer.Argument(help="Name, in Chinese (省公安厅反诈中心).")],
    kind: Annotated[str, typer.Option(help="police, health, government, other")] = "other",
    name_en: Annotated[str, typer.Option(help="Name in English.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Add a partner agency."""
    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        accounts.add_agency(
            session, principal=_me(), code=code, name=name, kind=kind, name_en=name_en
        )
    out.print(f"partner agency {code} added")


@agencies_app.command("add-standard")
def agencies_add_standard(data_dir: DataDir = None) -> None:
    """Add the standard partner agencies that are missing."""
    from telereg.reference.directory import add_standard_agencies

    settings = _migrated(data_dir)
    with session_scope(settings) as session:
        added = add_standard_agencies(session, principal=_me())
    out.print(f"partner agencies added: {', '.join(added)}" if added else "no agency was missing")


AuditActor = Annotated[
    str, typer.Option("--actor", help="Only this user's entries (cli:NAME for the CLI).")
]
AuditAction = Annotated[
    str, typer.Option("--action", help="Only actions starting so, e.g. 'users.'.")
]
AuditObject = Annotated[
    str, typer.Option("--object", help="Only entries naming this object, e.g. 'case:40'.")
]
FirstDay = Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")]
LastDay = Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC).")]


@audit_app.command("list")
def audit_list(
    actor: AuditActor = "",
    action: AuditAction = "",
    obj: AuditObject = "",
    first: FirstDay = "",
    last: LastDay = "",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries shown.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """The newest entries the filters select, as the audit page shows them."""
    from telereg.core import audit
    from telereg.core.permissions import Permission

    since, until = audit.day_bounds(first, last)
    settings = _migrated(data_dir, reading=True)
    _me().require(Permission.AUDIT_READ)
    with session_scope(settings) as session:
        rows, total = audit.entries(
            session,
            actor=actor or None,
            action=action or None,
            obj=obj or None,
            since=since,
            until=until,
            limit=limit,
        )
        listed: list[dict[str, object]] = [
            {
                "id": e.id,
                "at": e.at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "objects": e.objects if as_json else " ".join(e.objects),
                "reason": e.reason,
                "detail": e.detail if as_json else json.dumps(e.detail, ensure_ascii=False),
                "client": e.client,
            }
            for e in rows
        ]
    if not as_json:
        err.print(f"{_entries(total)}; the newest {len(listed):,} shown")
    _print_rows(listed, as_json=as_json)


@audit_app.command("export")
def audit_export(
    target: Annotated[Path, typer.Option("--out", help="The CSV file to write; must not exist.")],
    actor: AuditActor = "",
    action: AuditAction = "",
    obj: AuditObject = "",
    first: FirstDay = "",
    last: LastDay = "",
    data_dir: DataDir = None,
) -> None:
    """Every entry the filters select, oldest first, as CSV. The export is itself an entry."""
    import csv

    from telereg.core import audit
    from telereg.core.i18n import N_
    from telereg.ingest.submissions import neutralise

    if target.exists():
        raise InputError(N_("{path} exists; choose another file").format(path=target))
    since, until = audit.day_bounds(first, last)
    settings = _migrated(data_dir)
    partial = target.with_name(f".{target.name}.part")
    try:
        # (the file can be written: known before the export is recorded) Readable by its
        # owner only, as a hand-over: the log names who looked at which number, and why.
        partial.touch(mode=0o600)
        owner_only(partial)
    except OSError as error:
        raise InputError(
            N_("cannot write {path}: {reason}").format(path=target, reason=error.strerror)
        ) from error
    try:
        with session_scope(settings) as session:
            export = audit.export(
                session,
                principal=_me(),
                client="cli",
                actor=actor or None,
                action=action or None,
                obj=obj or None,
                since=since,
                until=until,
            )
            session.commit()
            export_id, total = export.id, int(export.detail["entries"])
        with (
            session_scope(settings) as session,
            partial.open("w", encoding="utf-8-sig", newline="") as file,
            _progress() as progress,
        ):
            task = progress.add_task("exporting the audit log …", total=total)
            writer = csv.writer(file)
            writer.writerow(audit.EXPORT_COLUMNS)
            for entry in audit.exported(session, export_id):
                writer.writerow([neutralise(c) for c in audit.export_row(entry)])
                progress.advance(task)
        partial.replace(target)  # the file appears whole or not at all
    finally:
        partial.unlink(missing_ok=True)
    out.print(f"{_entries(total)} written to {target} (the export is audit entry {export_id})")


def _entries(count: int) -> str:
    return f"{count:,} {'entry' if count == 1 else 'entries'}"


def main() -> None:
    """Entry point: run the CLI and turn telereg errors into one line on stderr."""
    try:
        app()
    except TeleregError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        if not error.user_error and os.environ.get("TELEREG_DEBUG"):
            raise
        sys.exit(2 if isinstance(error, ValueError) else 1)
    except (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.ArgumentError) as error:
        # The state DB cannot be reached (no such database, a wrong password, a server
        # down), its URL is not one, or it refused a change: said in a line, without the
        # statement's values (a password hash), the trace only for TELEREG_DEBUG.
        cause = getattr(error, "orig", None) or error
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        err.print(f"[red]error:[/red] state DB: {first}", highlight=False, soft_wrap=True)
        if os.environ.get("TELEREG_DEBUG"):
            raise
        sys.exit(1)
    except OSError as error:
        # A full disk, a read-only data dir, a directory that does not exist: what and where.
        where = f": {error.filename}" if error.filename else ""
        err.print(
            f"[red]error:[/red] {error.strerror or error}{where}", highlight=False, soft_wrap=True
        )
        if os.environ.get("TELEREG_DEBUG"):
            raise
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
