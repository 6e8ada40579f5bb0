from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["demo", "serve", "db", "users", "operators", "agencies", "audit"]
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the refusal of insecure serving is about


def telereg(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    return subprocess.run(
        [sys.executable, "-m", "telereg", *args, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_every_command_with_a_description() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "telereg", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=True,
    )
    described = dict(re.findall(r"^│ (\w+) +(\S.*?) *│$", result.stdout, flags=re.MULTILINE))
    for command in COMMANDS:
        assert len(described.get(command, "")) > 10, f"{command}: no description in --help"


def test_the_demo_refuses_a_production_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEREG_ENVIRONMENT", "production")
    import secrets

    for name in ("pseudonym_key", "vault_key", "session_secret", "handover_key"):
        monkeypatch.setenv(f"TELEREG_{name.upper()}", secrets.token_urlsafe(32))
    result = telereg("demo", "--no-serve", data_dir=tmp_path)
    assert result.returncode != 0
    assert "the demo runs only with TELEREG_ENVIRONMENT=development" in result.stderr
    assert not (tmp_path / "lake").exists(), "nothing was loaded"


def test_demo_without_serving_prints_a_working_login(tmp_path: Path) -> None:
    result = telereg("demo", "--no-serve", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "admin login: admin / " in result.stdout
    assert "dashboard: http" not in result.stdout, "nothing is served"
    # The command serves what the demo built: its --data-dir is passed on.
    serve_line = (
        f"to serve the dashboard: telereg serve --data-dir {tmp_path.resolve()} --port 8000"
    )
    assert serve_line in result.stdout
    assert (tmp_path / "state.db").exists()
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600
    # Every month with call records is scanned, oldest first: the dashboard has a trend.
    from telereg.core.settings import load_settings
    from telereg.domains.fraud import service as fraud

    settings = load_settings(data_dir=tmp_path)
    assert fraud.scanned_periods(settings) == ["2021-11", "2021-10"]
    assert "earlier months scanned: 2021-10" in result.stdout


def _prepared(data_dir: Path) -> None:
    """What the demo sets up before its data: the directory and the admin (the demo itself
    runs once, in the test above)."""
    from telereg.core.settings import load_settings
    from telereg.scenario.demo import prepare
    from tests.conftest import ROOT

    prepare(load_settings(data_dir=data_dir), principal=ROOT)


def test_user_lifecycle(tmp_path: Path) -> None:
    assert telereg("db", "upgrade", data_dir=tmp_path).returncode == 0
    _prepared(tmp_path)
    added = telereg(
        "users", "add", "olu", "--role", "operator", "--operator", "CMCC", data_dir=tmp_path
    )
    assert added.returncode == 0, added.stderr
    assert "password (shown only this once)" in added.stdout
    token = telereg("users", "token", "olu", "--label", "upload", data_dir=tmp_path)
    assert token.returncode == 0
    assert token.stdout.strip().splitlines()[-1].startswith("trg_")
    listed = json.loads(telereg("users", "list", "--json", data_dir=tmp_path).stdout)
    admin = next(u for u in listed if u["username"] == "admin")
    assert admin["display_name"] == "Demo administrator", "who the user is, not just a login"
    assert {"username": "olu", "operator": "CMCC", "role": "operator"}.items() <= next(
        u for u in listed if u["username"] == "olu"
    ).items()
    tokens = json.loads(telereg("users", "tokens", "olu", "--json", data_dir=tmp_path).stdout)
    assert len(tokens) == 1
    assert tokens[0]["revoked_at"] is None
    assert telereg("users", "disable", "olu", "--reason", "left", data_dir=tmp_path).returncode == 0
    tokens = json.loads(telereg("users", "tokens", "olu", "--json", data_dir=tmp_path).stdout)
    assert tokens[0]["revoked_at"] is not None
    listed = json.loads(telereg("users", "list", "--json", data_dir=tmp_path).stdout)
    assert next(u for u in listed if u["username"] == "olu")["active"] is False


@pytest.mark.parametrize(
    ("command", "shown", "hidden"),
    [
        (["users", "disable"], "The user's username", None),
        (["users", "revoke-token"], "telereg users tokens NAME lists them", None),
        (["operators", "add"], "Name in English", None),
        (["submissions"], "At most this many", None),
        (["fraud", "cases"], "open, in_review, referred, resolved or closed", None),
        (["fraud", "blocklist"], "instead of one domain a line", "instead of a table"),
        (["jobs", "run"], "The job's id", "--lock-fd"),
    ],
)
def test_help_says_what_each_argument_is(
    command: list[str], shown: str, hidden: str | None
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "telereg", *command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"},
        check=True,
    )
    assert shown in result.stdout
    if hidden is not None:
        assert hidden not in result.stdout


def test_a_first_installation_adds_the_standard_directory(tmp_path: Path) -> None:
    assert telereg("db", "upgrade", data_dir=tmp_path).returncode == 0
    added = telereg("operators", "add-standard", data_dir=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "operators added: CMCC, CUCC, CTCC, CBN, TOWER, CA" in added.stdout
    agencies = telereg("agencies", "add-standard", data_dir=tmp_path)
    assert "partner agencies added: POLICE-AF, HEALTH, CITY-GOV" in agencies.stdout
    listed = json.loads(telereg("operators", "list", "--json", data_dir=tmp_path).stdout)
    assert {o["code"] for o in listed} == {"CMCC", "CUCC", "CTCC", "CBN", "TOWER", "CA"}
    again = telereg("operators", "add-standard", data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no operator was missing" in again.stdout


def test_the_audit_log_is_listed_and_exported_whole(tmp_path: Path) -> None:
    _prepared(tmp_path)  # the demo's directory and admin: already audited
    target = tmp_path / "audit.csv"
    usual = os.umask(0o022)  # (files made with the umask alone are readable by all)
    try:
        exported = telereg("audit", "export", "--out", str(target), data_dir=tmp_path)
    finally:
        os.umask(usual)
    assert exported.returncode == 0, exported.stderr
    assert target.stat().st_mode & 0o777 == 0o600, "who looked at which number, for its owner"
    rows = target.read_text(encoding="utf-8-sig").splitlines()
    assert rows[0] == "id,at,actor,action,objects,reason,detail,client"
    assert any(",operators.add,operator:CMCC," in row for row in rows[1:])
    count = int(re.search(r"^([0-9,]+) entr", exported.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert count == len(rows) - 1, "the file holds what the export counted"
    again = telereg("audit", "export", "--out", str(target), data_dir=tmp_path)
    assert again.returncode != 0
    assert "exists" in again.stderr
    assert target.read_text(encoding="utf-8-sig").splitlines() == rows, "the file is untouched"
    assert not list(tmp_path.glob(".audit.csv.part")), "no partial file is left"
    listed = telereg("audit", "list", "--action", "audit.", "--json", data_dir=tmp_path)
    (export,) = json.loads(listed.stdout)
    assert export["detail"] == {"filters": {}, "entries": count}
    assert export["actor"].startswith("cli:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "bob", "--role", "operator"], "must be bound to an operator"),
        (["users", "add", "bob", "--role", "operator", "--operator", "XX"], "no operator 'XX'"),
        (["users", "disable", "ghost"], "no user named 'ghost'"),
        (["users", "add", "admin", "--role", "viewer"], "already exists"),
        # one operator to a person, whatever the case its code is written in
        (["operators", "add", "cmcc", "移动"], "operator 'CMCC' already exists"),
        (["agencies", "add", "ARMY", "某部队", "--kind", "army"], "is not one of: police"),
        (["operators", "add", "1BAD", "某运营商"], "starting with a letter"),
        # longer than the state DB holds: refused alike on SQLite and PostgreSQL
        (["operators", "add", "LONG", "长" * 201], "name is longer than 200 characters"),
        (
            ["users", "add", "bob", "--role", "viewer", "--display-name", "x" * 201],
            "display_name is longer than 200 characters",
        ),
        (["users", "token", "admin", "--valid-days", "100000000"], "1 to 3650 days"),
        (["audit", "export", "--out", "/nonexistent/dir/audit.csv"], "cannot write"),
    ],
)
def test_user_mistakes_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _prepared(tmp_path)
    result = telereg(*args, data_dir=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_hand_over_needs_its_covering_note() -> None:
    # The note is the reason the audit log keeps for the hand-over: no stock text stands in.
    result = telereg("fraud", "export", "40", "--out", "handover.zip")
    assert result.returncode != 0
    assert "Missing option '--note'" in result.stderr


def test_a_hand_over_refused_half_way_keeps_its_refusal_and_nothing_else(tmp_path: Path) -> None:
    # The reveal of a number the vault does not hold is refused after the case has moved:
    # the command rolls back the move and the package, and keeps the refusal's record.
    from typer.testing import CliRunner

    from telereg.cases import service as cases
    from telereg.cases.models import Case
    from telereg.cli import app
    from telereg.core import audit
    from telereg.core.db import dispose_engines, session_scope
    from telereg.core.settings import load_settings
    from telereg.domains.fraud import casework
    from tests.conftest import ROOT

    _prepared(tmp_path)
    settings = load_settings(data_dir=tmp_path)
    subject = {"type": "sim_box", "line": "ab" * 16, "period": "2021-11", "operator": "CMCC"}
    with session_scope(settings) as s:
        new = cases.NewCase("sim_box:not-in-vault", "SIM box suspect", subject)
        (case,) = cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=[new])
        cases.move(
            s, principal=ROOT, workflow=casework.WORKFLOW, case_id=case.id, to="in_review", note="n"
        )
        case_id, last = case.id, max(e.id for e in audit.entries(s, limit=1)[0])
    out = tmp_path / "handover.zip"
    args = ["fraud", "export", str(case_id), "--note", "cli", "--out", str(out)]
    reveal = ["--reveal", "police request JQ-1", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, *reveal])
    dispose_engines()
    assert result.exit_code != 0
    assert not out.exists()
    assert not [p for p in (tmp_path / "handovers").rglob("*") if p.is_file()]
    with session_scope(settings) as s:
        assert s.get(Case, case_id).status == "in_review"
        after = [e for e in audit.entries(s, limit=100)[0] if e.id > last]
        assert [e.action for e in after] == ["privacy.reidentify_refused"]
        assert after[0].detail["refused"] == "not-found"
    dispose_engines()


def test_a_command_in_an_empty_data_dir_says_it_starts_a_new_installation(
    tmp_path: Path,
) -> None:
    first = telereg("db", "upgrade", data_dir=tmp_path / "new")
    assert "no installation in" in first.stderr
    again = telereg("operators", "list", data_dir=tmp_path / "new")
    assert "no installation in" not in again.stderr, "said once, when it is new"


@pytest.mark.parametrize("args", [["db", "current"], ["users", "list"], ["fraud", "cases"]])
def test_a_command_that_only_reads_refuses_a_data_dir_without_an_installation(
    tmp_path: Path, args: list[str]
) -> None:
    # A mistyped or not yet restored data dir gets no new keys and no empty state DB.
    result = telereg(*args, data_dir=tmp_path / "restored")
    assert result.returncode != 0
    assert f"no installation in {tmp_path / 'restored'} (it has no state.db)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "restored").exists(), "nothing was created"


def test_a_failed_export_is_not_recorded_as_one(tmp_path: Path) -> None:
    _prepared(tmp_path)
    failed = telereg("audit", "export", "--out", "/nonexistent/dir/a.csv", data_dir=tmp_path)
    assert failed.returncode != 0
    listed = telereg("audit", "list", "--action", "audit.", "--json", data_dir=tmp_path)
    assert json.loads(listed.stdout) == [], "no export entry for a file never written"


def test_unusable_fraud_settings_stop_a_command_before_it_starts(tmp_path: Path) -> None:
    _prepared(tmp_path)
    for rules, message in (
        ('{"calls_per_day": -3}', "below zero"),
        ('{"nonsense": 3}', "unknown rule(s) nonsense"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "telereg", "users", "list", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "TELEREG_FRAUD_RULES": rules},
            check=False,
        )
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_a_state_db_newer_than_the_software_is_named(tmp_path: Path) -> None:
    _prepared(tmp_path)
    import sqlite3

    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    result = telereg("users", "list", data_dir=tmp_path)
    assert result.returncode != 0
    assert "the state DB is at revision 9999" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_are_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "telereg", "db", "upgrade", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"TELEREG_ENGINE": "oracle", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode != 0
    assert "TELEREG_ENGINE" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_other_addresses_without_secure_cookies(tmp_path: Path) -> None:
    result = telereg("serve", "--host", ALL_INTERFACES, data_dir=tmp_path)
    assert result.returncode != 0
    assert "TELEREG_SECURE_COOKIES=true" in result.stderr
    assert "--insecure-cookies" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {}),
        (["--host", ALL_INTERFACES, "--insecure-cookies"], {}),
        (["--host", ALL_INTERFACES], {"TELEREG_SECURE_COOKIES": "true"}),
    ],
)
def test_serve_starts_on_loopback_with_secure_cookies_or_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from telereg.cli import app

    started: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_, **kw: started.append(kw))
    monkeypatch.setenv("TELEREG_DATA_DIR", str(tmp_path))  # restored after the test
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["serve", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(started) == 1


def test_serve_says_where_it_serves_as_json_when_the_log_is_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from telereg.cli import app

    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: None)
    monkeypatch.setenv("TELEREG_DATA_DIR", str(tmp_path))  # restored after the test
    monkeypatch.setenv("TELEREG_LOG_FORMAT", "json")
    result = CliRunner().invoke(app, ["serve", "--port", "8123", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert first["message"] == "telereg serving on http://127.0.0.1:8123/"
    assert first["level"] == "INFO"


def test_ingest_exit_codes_and_json_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    _prepared(data_dir)
    header = "cell_id,site_id,longitude,latitude,city_code,technology\n"
    good, partial, bad = (tmp_path / n for n in ("good.csv", "partial.csv", "bad.csv"))
    good.write_text(header + "K0001,S1,112.5,37.8,140100,4G\n")
    partial.write_text(header + "K0002,S1,112.5,37.8,140100,4G\nK0003,S1,112.5,99,140100,4G\n")
    bad.write_text("what,ever\n1,2\n")
    args = ("--dataset", "cells", "--operator", "CMCC", "--period", "2021-11", "--json")

    def run(path: Path) -> tuple[int, dict[str, object]]:
        result = telereg("ingest", str(path), *args, data_dir=data_dir)
        return result.returncode, json.loads(result.stdout)

    code, record = run(good)
    assert (code, record["status"], record["rows_accepted"]) == (0, "accepted", 1)
    code, record = run(partial)
    assert (code, record["status"], record["rows_quarantined"]) == (0, "partial", 1)
    assert record["superseded"] is not None, "it replaces the first file of the slot"
    code, record = run(bad)
    assert (code, record["status"]) == (1, "rejected")
    assert "missing required column(s)" in str(record["message"])
    code, record = run(partial)
    assert (code, record["duplicate_of"]) == (0, record["id"]), "the same bytes again"
    # A coordinate system as it is usually written, in capitals, is understood.
    upper = telereg("ingest", str(partial), *args, "--crs", "WGS84", data_dir=data_dir)
    assert upper.returncode == 0, upper.stderr
    month = ("--dataset", "cells", "--operator", "CMCC", "--period", "2021-13")
    thirteenth = telereg("ingest", str(good), *month, data_dir=data_dir)
    assert thirteenth.returncode == 2
    assert "period '2021-13' is not a valid month: the month is 01 to 12" in thirteenth.stderr
    missing = telereg("ingest", str(tmp_path / "nope.csv"), *args, data_dir=data_dir)
    assert missing.returncode != 0
    assert "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_regions_show_population_and_which_is_estimated(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    _prepared(data_dir)
    counties = json.loads(telereg("regions", "--json", data_dir=data_dir).stdout)
    # Jincheng: three of its six counties have no census figure shipped.
    jincheng = [c for c in counties if c["parent"] == "140500" and c["estimated"]]
    assert len(jincheng) == 3
    figures = tmp_path / "population.csv"
    figures.write_text(
        f"region_code,population,year,source\n{jincheng[0]['code']},900000,2020,公报\n"
    )
    sent = telereg(
        "ingest", str(figures), "--dataset", "population", "--operator", "CA", data_dir=data_dir
    )
    assert sent.returncode == 0, sent.stderr
    listed = json.loads(telereg("regions", "--json", data_dir=data_dir).stdout)
    again = {c["code"]: c for c in listed}
    assert (again[jincheng[0]["code"]]["population"], again[jincheng[0]["code"]]["estimated"]) == (
        900_000,
        False,
    )
    assert again[jincheng[1]["code"]]["estimated"]
    cities = json.loads(telereg("regions", "--level", "city", "--json", data_dir=data_dir).stdout)
    assert len(cities) == 11
    assert not any(c["estimated"] for c in cities)
    shown = telereg("regions", "--level", "city", data_dir=data_dir)
    assert "公报 (2020)" in shown.stderr
    wrong = telereg("regions", "--level", "village", data_dir=data_dir)
    assert wrong.returncode != 0
    assert "city or county" in wrong.stderr


def test_datasets_are_listed_whole_and_one_at_a_time() -> None:
    listed = json.loads(telereg("datasets", "--json").stdout)
    cells = next(d for d in listed if d["name"] == "cells")
    assert [c["name"] for c in cells["columns"]][:2] == ["cell_id", "site_id"]
    one = telereg("datasets", "voice_cdr")
    assert one.returncode == 0, one.stderr
    assert "month: from start_time" in one.stdout
    assert "callee" in one.stdout
    assert "identifier" in one.stdout, "the rules say which columns are pseudonymised"
    assert "month: give --period" in telereg("datasets", "cells").stdout
    unknown = telereg("datasets", "towers")
    assert unknown.returncode != 0
    assert "no dataset named 'towers'" in unknown.stderr
