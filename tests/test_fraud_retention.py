"""Retention of hand-over packages: expired files go, their records stay, marked purged."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from telereg.app import create_app
from telereg.cases.models import HandoverPackage
from telereg.core import audit
from telereg.core.db import session_scope
from telereg.core.errors import GoneError, NotFoundError, RoleLacksPermissionError
from telereg.core.models import AuditEntry
from telereg.core.permissions import Role
from telereg.core.settings import Settings, load_settings
from telereg.domains.fraud import handover, retention
from telereg.domains.fraud.handover import Handover
from telereg.scenario.demo import prepare
from tests.conftest import PASSWORD, ROOT, Site, csrf_of, handed_over, principal_of_role

LIAISON = principal_of_role(Role.LIAISON, agency_code="POLICE-AF")


def _made_days_ago(settings: Settings, made: Handover, days: int) -> None:
    """The package's record says it was made ``days`` ago."""
    with session_scope(settings) as s:
        s.execute(
            update(HandoverPackage)
            .where(HandoverPackage.name == made.path.name)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


def _resolve(settings: Settings, made: Handover) -> None:
    """The agency recorded the disposal of every case of the package."""
    with session_scope(settings) as s:
        for case in made.manifest["cases"]:
            handover.record_disposal(
                s, principal=ROOT, case_id=case, disposal="no_action", note="not ours"
            )


def _record(settings: Settings, name: str) -> HandoverPackage:
    with session_scope(settings) as s:
        found = s.scalar(select(HandoverPackage).where(HandoverPackage.name == name))
        assert found is not None
        s.expunge(found)
        return found


def _purges(settings: Settings, name: str) -> list[AuditEntry]:
    with session_scope(settings) as s:
        found = [
            e
            for e in audit.about(s, f"handover:POLICE-AF/{name}")
            if e.action == retention.PURGED_ACTION
        ]
        s.expunge_all()
        return found


def test_expired_packages_lose_their_file_and_keep_their_record(db_settings: Settings) -> None:
    prepare(db_settings, principal=ROOT)
    old = handed_over(db_settings, "old.example", "older.example")
    new = handed_over(db_settings, "new.example")
    # Past the period too, but its case is still with the agency: kept while it acts.
    still = handed_over(db_settings, "still.example")
    for made in (old, still):
        _made_days_ago(db_settings, made, 181)
    _made_days_ago(db_settings, new, 179)
    _resolve(db_settings, old)

    dry = retention.purge(db_settings, principal=ROOT, dry_run=True)
    assert [p.name for p in dry.purged] == [old.path.name]
    assert dry.kept_open == [f"POLICE-AF/{still.path.name}"]
    assert all(m.path.exists() for m in (old, new, still)), "a dry run removes nothing"
    assert _record(db_settings, old.path.name).purged_at is None
    assert _purges(db_settings, old.path.name) == []

    run = retention.purge(db_settings, principal=ROOT)
    assert [(p.name, p.file_kept) for p in run.purged] == [(old.path.name, True)]
    assert not old.path.exists()
    assert new.path.exists()
    assert still.path.exists()
    record = _record(db_settings, old.path.name)
    assert record.purged_at == run.at
    assert (record.cases, record.created_by) == (old.manifest["cases"], ROOT.name)
    # What recognises a copy brought back later stays with the record.
    with zipfile.ZipFile(io.BytesIO(old.archive)) as package:
        assert record.manifest_sha256 == hashlib.sha256(package.read("manifest.json")).hexdigest()
        assert record.signature == package.read("manifest.sig").decode()
    (entry,) = _purges(db_settings, old.path.name)
    assert entry.actor == ROOT.name
    assert entry.objects == [
        f"handover:POLICE-AF/{old.path.name}",
        *(f"case:{c}" for c in old.manifest["cases"]),
    ]
    assert entry.detail["file"] == "removed"
    assert entry.detail["retention_days"] == 180

    again = retention.purge(db_settings, principal=ROOT)
    assert again.purged == [], "a second run has nothing to do"
    assert len(_purges(db_settings, old.path.name)) == 1

    with session_scope(db_settings) as s:
        listed = {p["name"]: p for p in handover.packages(s, db_settings, principal=LIAISON)}
    assert listed[old.path.name]["purged_at"] == run.at.isoformat(timespec="seconds")
    assert listed[old.path.name]["cases"] == old.manifest["cases"]
    assert listed[new.path.name]["purged_at"] is None
    assert listed[still.path.name]["purged_at"] is None


def test_an_interrupted_purge_is_finished_by_the_next_run(db_settings: Settings) -> None:
    prepare(db_settings, principal=ROOT)
    made = handed_over(db_settings, "interrupted.example")
    _made_days_ago(db_settings, made, 400)
    _resolve(db_settings, made)
    # Stopped after the file was removed, before the record was marked (and a copy that the
    # hand-over staged was left by a process killed before it published it).
    made.path.unlink()
    staged = made.path.with_name(f".{made.path.name}.staged")
    staged.write_bytes(b"staged")
    assert _record(db_settings, made.path.name).purged_at is None
    run = retention.purge(db_settings, principal=ROOT)
    assert [(p.name, p.file_kept) for p in run.purged] == [(made.path.name, False)]
    assert not staged.exists()
    assert _record(db_settings, made.path.name).purged_at == run.at
    (entry,) = _purges(db_settings, made.path.name)
    assert entry.detail["file"] == "already gone"
    # A purged package's file restored from a backup goes again; its record keeps its date.
    made.path.write_bytes(b"restored")
    retention.purge(db_settings, principal=ROOT, at=run.at + timedelta(days=1))
    assert not made.path.exists()
    assert _record(db_settings, made.path.name).purged_at == run.at


def test_packages_kept_before_their_records_are_purged_too(settings: Settings) -> None:
    prepare(settings, principal=ROOT)
    made = handed_over(settings, "recorded.example")
    _resolve(settings, made)
    folder = made.path.parent
    # One kept before records existed (state DB revision 0005), made long ago, and one that
    # cannot be read at all, dated by its file.
    long_ago = datetime(2021, 1, 5, tzinfo=UTC)
    legacy = folder / "handover-20210105T000000-legacy.zip"
    manifest = {**made.manifest, "created_at": long_ago.isoformat(timespec="seconds")}
    archive = handover.package_bytes([], manifest, settings.secret("handover_key"))
    legacy.write_bytes(handover._sealed(settings, "POLICE-AF", legacy.name, archive))
    damaged = folder / "handover-20210106T000000-damaged.zip"
    damaged.write_bytes(b"PK\x03\x04 not a package")
    os.utime(damaged, (long_ago.timestamp(), long_ago.timestamp()))

    run = retention.purge(settings, principal=ROOT)
    assert sorted(p.name for p in run.purged) == [legacy.name, damaged.name]
    assert not legacy.exists()
    assert not damaged.exists()
    assert made.path.exists(), "made today"
    record = _record(settings, legacy.name)
    assert (record.cases, record.created_at) == (made.manifest["cases"], long_ago)
    assert record.manifest_sha256 is not None
    assert _record(settings, damaged.name).cases == []
    with session_scope(settings) as s:
        listed = {p["name"]: p for p in handover.packages(s, settings, principal=ROOT)}
    assert listed[legacy.name]["purged_at"] == run.at.isoformat(timespec="seconds")
    assert listed[made.path.name]["purged_at"] is None


def test_a_retention_of_zero_keeps_packages_forever(settings: Settings) -> None:
    prepare(settings, principal=ROOT)
    made = handed_over(settings, "forever.example")
    _made_days_ago(settings, made, 5000)
    _resolve(settings, made)
    forever = settings.model_copy(update={"handover_retention_days": 0})
    run = retention.purge(forever, principal=ROOT)
    assert (run.purged, run.cutoff) == ([], None)
    assert made.path.exists()


def test_only_an_administrator_purges(settings: Settings) -> None:
    prepare(settings, principal=ROOT)
    with pytest.raises(RoleLacksPermissionError):
        retention.purge(settings, principal=principal_of_role(Role.ANALYST), dry_run=True)


def test_fetching_a_purged_package_says_when_it_was_removed(site: Site) -> None:
    settings = site.settings
    made = handed_over(settings, "gone.example")
    _made_days_ago(settings, made, 200)
    _resolve(settings, made)
    archive = site.client.get(
        f"/api/v1/fraud/handovers/POLICE-AF/{made.path.name}", headers=site.as_role("liaison")
    ).content
    run = retention.purge(settings, principal=ROOT)
    day = f"{run.at:%Y-%m-%d}"
    address = f"/api/v1/fraud/handovers/POLICE-AF/{made.path.name}"
    for role in ("liaison", "analyst"):
        answer = site.client.get(address, headers=site.as_role(role))
        assert answer.status_code == 410, answer.text
        problem = answer.json()
        assert problem["type"] == "urn:telereg:problem:gone"
        assert f"was removed on {day} (UTC) under the retention policy" in problem["detail"]
        assert "its record, its cases and the audit log are unchanged" in problem["detail"]
    with session_scope(settings) as s:
        refused = list(audit.about(s, f"handover:POLICE-AF/{made.path.name}"))
        assert [e.action for e in refused][-2:] == ["fraud.handover.refused"] * 2
        assert refused[-1].detail == {"purged": True}
        # Another agency's liaison learns nothing of it.
        with pytest.raises(NotFoundError) as found:
            handover.package_for(
                s,
                settings,
                principal=principal_of_role(Role.LIAISON, agency_code="HEALTH"),
                agency="POLICE-AF",
                name=made.path.name,
            )
        assert not isinstance(found.value, GoneError)

    listed = site.client.get("/api/v1/fraud/handovers", headers=site.as_role("liaison")).json()
    (entry,) = [p for p in listed if p["name"] == made.path.name]
    assert entry["purged_at"] == run.at.isoformat(timespec="seconds")
    assert entry["cases"] == made.manifest["cases"]

    # A copy the agency kept is still checked, and the answer says the original was purged.
    checked = site.client.post(
        "/api/v1/fraud/handovers/verify",
        files={"file": (made.path.name, archive, "application/zip")},
        headers=site.as_role("liaison"),
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["purged_at"] == run.at.isoformat(timespec="seconds")
    assert f"removed on {day} (UTC)" in checked.json()["note"]

    # The liaison's page lists it as removed, with no link to fetch it.
    site.login(site.client, "lee", PASSWORD)
    site.client.get("/lang/en?next=/")
    page = site.client.get("/fraud/liaison").text
    assert f"removed on {day} (UTC) under the retention policy" in page
    assert f'href="{address}"' not in page
    shown = site.client.post(
        "/fraud/liaison/verify",
        data={"csrf_token": csrf_of(page)},
        files={"file": (made.path.name, archive, "application/zip")},
    )
    assert shown.status_code == 200, shown.text
    assert 'id="package-purged"' in shown.text


def test_the_server_purges_when_it_starts(settings: Settings) -> None:
    prepare(settings, principal=ROOT)
    made = handed_over(settings, "startup.example")
    _made_days_ago(settings, made, 365)
    _resolve(settings, made)
    create_app(settings)
    assert not made.path.exists()
    (entry,) = _purges(settings, made.path.name)
    assert entry.actor == retention.SYSTEM.name


def _telereg(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telereg", "fraud", "packages", "purge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TELEREG_DATA_DIR": str(data_dir), **env},
    )


def test_the_purge_command(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var")
    prepare(settings, principal=ROOT)
    made = handed_over(settings, "command.example")
    _made_days_ago(settings, made, 181)
    _resolve(settings, made)

    dry = _telereg(settings.data_dir, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    said = json.loads(dry.stdout)
    assert (said["dry_run"], said["retention_days"]) == (True, 180)
    assert [p["name"] for p in said["purged"]] == [made.path.name]
    assert made.path.exists()

    done = _telereg(settings.data_dir, "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert [(p["name"], p["file"]) for p in said["purged"]] == [(made.path.name, "removed")]
    assert not made.path.exists()
    (entry,) = _purges(settings, made.path.name)
    assert entry.actor.startswith("cli:")

    table = _telereg(settings.data_dir)
    assert table.returncode == 0, table.stderr
    assert "0 purged" in table.stdout
    forever = _telereg(settings.data_dir, TELEREG_HANDOVER_RETENTION_DAYS="0")
    assert forever.returncode == 0, forever.stderr
    assert "kept forever" in forever.stdout
    refused = _telereg(settings.data_dir, TELEREG_HANDOVER_RETENTION_DAYS="-1")
    assert refused.returncode != 0
    assert "handover_retention_days" in refused.stderr.lower()


def test_the_api_document_says_a_package_may_be_gone(settings: Settings) -> None:
    document = create_app(settings).openapi()
    fetch = document["paths"]["/api/v1/fraud/handovers/{agency}/{name}"]["get"]
    assert "application/problem+json" in fetch["responses"]["410"]["content"]
    assert "410" not in document["paths"]["/api/v1/fraud/handovers"]["get"]["responses"]
