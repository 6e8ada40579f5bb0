"""Jobs: a month's scan started from the API or a page runs in a process of its own."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from telereg import registry
from telereg.core import accounts, jobs
from telereg.core.db import session_scope
from telereg.core.errors import ConflictError, InputError
from telereg.core.models import AuditEntry, Job
from telereg.core.permissions import Permission
from telereg.core.settings import Settings, load_settings, settings_environment
from telereg.domains.fraud import service as fraud
from telereg.ingest.service import ingest_file
from tests.conftest import PASSWORD, ROOT, Site, csrf_of, make_site

CELLS = (
    "cell_id,site_id,longitude,latitude,city_code,technology\n"
    "C0001,S01,112.55,37.87,140100,4G\nC0002,S01,112.56,37.88,140100,5G\n"
)
CALLS = "caller,callee,start_time,duration_s,direction,cell_id,imei\n" + "".join(
    f"1381234{n:04d},1390000{m:04d},2021-11-{d:02d} 10:{m:02d}:00,{20 + m},MO,C000{1 + m % 2},"
    f"86123456789{n:04d}\n"
    for n in range(3)
    for m in range(4)
    for d in (5, 6)
)
#: Long enough for a job's process to start, scan a handful of calls and record it.
DONE_WITHIN_S = 120


def _ingest(settings: Settings, tmp_path: Path, name: str, text: str, dataset: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    record = ingest_file(
        settings,
        principal=ROOT,
        contract=registry.contract(dataset),
        path=path,
        filename=name,
        operator="CMCC",
        period="2021-11",
    )
    assert record.status == "accepted", record.message


@pytest.fixture
def calls_site(settings: Settings, tmp_path: Path) -> Site:
    """A site whose CMCC sent a month of calls: something to scan."""
    site = make_site(settings)
    _ingest(settings, tmp_path, "cells.csv", CELLS, "cells")
    _ingest(settings, tmp_path, "cdr.csv", CALLS, "voice_cdr")
    return site


@pytest.fixture
def slot_taken(settings: Settings) -> Iterator[Callable[[], None]]:
    """Hold the only slot, so that a job's process waits, queued, until the test lets go.

    Yields the function that lets go of it.
    """
    slot = [os.open(jobs.jobs_dir(settings) / "slot-0.lock", os.O_RDWR | os.O_CREAT, 0o600)]
    fcntl.flock(slot[0], fcntl.LOCK_EX)

    def release() -> None:
        if slot:
            os.close(slot.pop())

    yield release
    release()


def _wait(site: Site, job_id: int, *, until: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + DONE_WITHIN_S
    while time.monotonic() < deadline:
        job = site.client.get(f"/api/v1/jobs/{job_id}", headers=site.as_role("admin")).json()
        if job["status"] in until:
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} did not reach {until} within {DONE_WITHIN_S} s: {job}")


def _process_of(settings: Settings, job_id: int) -> int:
    """The pid of the process running job ``job_id``, as it wrote it into its lock file."""
    deadline = time.monotonic() + DONE_WITHIN_S
    while time.monotonic() < deadline:
        with session_scope(settings) as session:
            pid = jobs.pid_of(settings, session.get(Job, job_id))
        if pid is not None:
            return pid
        time.sleep(0.1)
    pytest.fail(f"job {job_id}'s process did not start within {DONE_WITHIN_S} s")


def _until_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"process {pid} is still there"


def _actions(settings: Settings, job_id: int) -> list[str]:
    with session_scope(settings) as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [r.action for r in rows if f"job:{job_id}" in r.objects]


def _kinds_of(work: Callable[..., dict]) -> dict[str, jobs.JobKind]:
    """A kind of job, ``test.work``, that does ``work``."""
    kind = jobs.JobKind(
        name="test.work", permission=Permission.ANALYSIS_RUN, run=work, check=lambda *_: None
    )
    return {kind.name: kind}


def _queued_job(settings: Settings, params: dict) -> Job:
    """A ``test.work`` job's row, queued as a request would leave it (no process)."""
    with session_scope(settings) as session:
        job = Job(
            key=uuid.uuid4().hex,
            kind="test.work",
            params=params,
            status="queued",
            stage="",
            requested_by="cli:pytest",
            message="",
            result={},
        )
        session.add(job)
    return job


def _run_by_hand(settings: Settings, work: Callable[..., dict], params: dict) -> Job:
    """Queue a ``test.work`` job as a request would, then run it in this process by hand."""
    job = _queued_job(settings, params)
    return jobs.run(settings, job_id=job.id, lock_fd=None, kinds=_kinds_of(work))


def test_settings_reach_the_job_process_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = load_settings(
        data_dir=tmp_path / "var",
        fraud_rules={"calls_per_day": 40.0},
        secure_cookies=True,
        duckdb_memory_limit="3GB",
        jobs_max_running=2,
    )
    for name in [k for k in os.environ if k.startswith("TELEREG_")]:
        monkeypatch.delenv(name)
    for name, value in settings_environment(given).items():
        monkeypatch.setenv(name, value)
    read_back = load_settings()

    def plain(s: Settings) -> dict:
        dumped = s.model_dump()
        for name in ("pseudonym_key", "vault_key", "session_secret", "handover_key"):
            dumped[name] = dumped[name].get_secret_value()
        dumped["data_dir"] = dumped["data_dir"].resolve()
        return dumped

    assert plain(read_back) == plain(given)


def test_a_scan_started_through_the_api_runs_as_a_job(calls_site: Site) -> None:
    site, settings = calls_site, calls_site.settings
    analyst = site.as_role("analyst")
    started = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=analyst)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] == "queued"
    assert started.headers["location"] == f"/api/v1/jobs/{job['id']}"
    # Asked again while it waits or runs: the same job, not a second scan.
    again = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=analyst)
    assert again.json()["id"] == job["id"]

    done = _wait(site, job["id"], until=("succeeded", "failed", "interrupted"))
    assert done["status"] == "succeeded", done["message"]
    assert done["result"]["period"] == "2021-11"
    assert done["result"]["lines"] == 3
    assert done["seconds"] is not None
    assert done["stage"] == fraud.SCAN_STAGES[-1]
    assert fraud.load_summary(settings, "2021-11")["lines"] == 3
    assert _actions(settings, job["id"]) == ["job.submitted", "job.succeeded"]
    with session_scope(settings) as session:
        scans = session.scalars(select(AuditEntry).where(AuditEntry.action == "fraud.scan")).all()
        assert [s.actor for s in scans] == ["ann"]  # the job acts as whoever asked for it
    listed = site.client.get("/api/v1/jobs", headers=site.as_role("admin")).json()
    assert [j["id"] for j in listed] == [job["id"]]
    # Nothing to scan: refused at once, and no job is queued.
    empty = site.client.post("/api/v1/fraud/scans?period=2021-05", headers=analyst)
    assert empty.status_code == 404
    assert "no call records for 2021-05" in empty.json()["detail"]
    assert len(site.client.get("/api/v1/jobs", headers=analyst).json()) == 1
    for role in ("operator", "liaison", "viewer"):
        assert site.client.get("/api/v1/jobs", headers=site.as_role(role)).status_code == 403


@pytest.mark.usefixtures("slot_taken")
def test_a_killed_job_is_marked_interrupted_and_earlier_results_stay(calls_site: Site) -> None:
    site, settings = calls_site, calls_site.settings
    with session_scope(settings) as session:
        fraud.scan(session, settings=settings, principal=ROOT, period="2021-11")
    summary = fraud.results_dir(settings, "2021-11") / "summary.json"
    before = summary.read_bytes()

    job = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=site.as_role("analyst"))
    job_id = job.json()["id"]
    pid = _process_of(settings, job_id)  # started, and waiting for the slot the test holds
    assert _wait(site, job_id, until=("queued",))["status"] == "queued"
    os.kill(pid, signal.SIGKILL)
    _until_gone(pid)

    gone = _wait(site, job_id, until=("interrupted",))
    assert gone["message"] == jobs.INTERRUPTED_MESSAGE
    assert gone["finished_at"] is not None
    assert summary.read_bytes() == before
    assert _actions(settings, job_id) == ["job.submitted", "job.interrupted"]
    # Interrupted, it no longer holds the month: a new request starts a new job.
    again = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=site.as_role("analyst"))
    assert again.json()["id"] != job_id
    os.kill(_process_of(settings, again.json()["id"]), signal.SIGKILL)


def test_a_job_waits_for_a_slot_and_runs_as_its_user_is_then(
    calls_site: Site, slot_taken: Callable[[], None]
) -> None:
    site, settings = calls_site, calls_site.settings
    job_id = site.client.post(
        "/api/v1/fraud/scans?period=2021-11", headers=site.as_role("analyst")
    ).json()["id"]
    _process_of(settings, job_id)  # started, and waiting for the slot the test holds
    assert _wait(site, job_id, until=("queued",))["started_at"] is None
    with session_scope(settings) as session:
        accounts.disable_user(session, principal=ROOT, username="ann", reason="left")
    slot_taken()
    failed = _wait(site, job_id, until=("succeeded", "failed", "interrupted"))
    assert failed["status"] == "failed"
    assert "user 'ann' is disabled" in failed["message"]
    assert not fraud.results_dir(settings, "2021-11").exists()


def test_an_analyst_starts_a_scan_from_the_dashboard_and_follows_it(calls_site: Site) -> None:
    site, client = calls_site, calls_site.client
    site.login(client, "ann", PASSWORD)
    page = client.get("/fraud")
    assert 'action="/fraud/scans"' in page.text
    assert '<option value="2021-11">' in page.text
    csrf = csrf_of(page.text)

    malformed = client.post("/fraud/scans", data={"period": "2021-13", "csrf_token": csrf})
    assert malformed.status_code == 422
    assert "period" in malformed.text
    nothing = client.post("/fraud/scans", data={"period": "2021-05", "csrf_token": csrf})
    assert nothing.url.path == "/fraud"
    assert "2021-05 没有话单" in nothing.text

    followed = client.post("/fraud/scans", data={"period": "2021-11", "csrf_token": csrf})
    assert followed.url.path.startswith("/jobs/")
    assert 'http-equiv="refresh"' in followed.text  # reloads while it waits or runs
    job_id = int(followed.url.path.rsplit("/", 1)[1])
    _wait(site, job_id, until=("succeeded", "failed", "interrupted"))
    done = client.get(f"/jobs/{job_id}")
    assert 'id="job-results"' in done.text
    assert 'href="/fraud?period=2021-11"' in done.text
    assert 'http-equiv="refresh"' not in done.text
    listed = client.get("/jobs").text
    assert f'href="/jobs/{job_id}"' in listed
    assert "反诈扫描 2021-11" in listed  # Chinese by default
    in_english = client.get("/lang/en?next=/jobs").text
    assert "Fraud scan 2021-11" in in_english
    assert "Succeeded" in in_english or "succeeded" in in_english
    assert "Fraud scan" in client.get(f"/jobs/{job_id}").text
    client.get("/lang/zh_CN?next=/jobs")

    site.login(client, "olu", PASSWORD)
    assert 'action="/fraud/scans"' not in client.get("/fraud").text
    assert client.get("/jobs").status_code == 403


def test_the_cli_lists_jobs_and_will_not_run_one_twice(calls_site: Site) -> None:
    settings = calls_site.settings
    with session_scope(settings) as session:
        job = fraud.start_scan(session, settings, principal=ROOT, period="2021-11")
    _wait(calls_site, job.id, until=("succeeded", "failed", "interrupted"))
    env = {**os.environ, **settings_environment(settings)}
    listed = subprocess.run(
        [sys.executable, "-m", "telereg", "jobs", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"], r["requested_by"]) for r in rows] == [
        (job.id, "succeeded", "cli:pytest")
    ]
    table = subprocess.run(
        [sys.executable, "-m", "telereg", "jobs", "list"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "300"},
        check=True,
    )
    assert "period=2021-11" in table.stdout, "the parameters as one types them"
    assert "{'period'" not in table.stdout
    again = subprocess.run(
        [sys.executable, "-m", "telereg", "jobs", "run", str(job.id)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert again.returncode != 0
    assert f"job {job.id} is succeeded, not queued" in again.stderr
    assert "Traceback" not in again.stderr
    with session_scope(settings) as session:
        assert session.get(Job, job.id).status == "succeeded"


def test_a_failing_job_says_why_and_where_it_stopped(site: Site) -> None:
    settings = site.settings

    def work(_session, _settings, _principal, params, progress) -> dict:
        progress("reading")
        progress("checking")
        if params["broken"] == "input":
            raise InputError("row 7 is not a call", where="cdr.csv")
        return {"rows": 1 // 0}

    outcomes = {
        broken: _run_by_hand(settings, work, {"broken": broken}) for broken in ("input", "code")
    }

    assert outcomes["input"].status == "failed"
    assert outcomes["input"].message == "cdr.csv: row 7 is not a call"
    assert outcomes["input"].stage == "checking"
    assert outcomes["code"].message.startswith("internal error (ZeroDivisionError)")
    assert f"jobs/{outcomes['code'].key}.log" in outcomes["code"].message
    logged = (jobs.jobs_dir(settings) / f"{outcomes['code'].key}.log").read_text()
    assert "ZeroDivisionError" in logged, "run by hand, the trace is in the log it names"
    with pytest.raises(ConflictError, match="is failed, not queued"):
        jobs.run(settings, job_id=outcomes["input"].id, lock_fd=None, kinds=_kinds_of(work))
    site.login(site.client, "ada", PASSWORD)
    page = site.client.get(f"/jobs/{outcomes['input'].id}").text
    assert 'id="job-stage">checking<' in page
    assert "row 7 is not a call" in page


def test_a_jobs_result_groups_its_counts_by_thousands(site: Site) -> None:
    def work(_session, _settings, _principal, params, progress) -> dict:
        return {"lines": 3105, "seconds": 5.9}

    done = _run_by_hand(site.settings, work, {})
    assert done.status == "succeeded"
    site.login(site.client, "ada", PASSWORD)
    page = site.client.get(f"/jobs/{done.id}").text
    assert page.count(" UTC</dd>") == 3, "requested, started and finished, in UTC"
    assert re.search(r"<td>[0-9: -]{19} UTC</td>", site.client.get("/jobs").text)
    result = page.split('id="job-result"', 1)[1]
    assert "<td>3,105</td>" in result, "as the dashboard shows the lines it scanned"
    assert "<td>5.9</td>" in result


def test_the_logs_of_jobs_that_ended_long_ago_are_removed(site: Site) -> None:
    settings = site.settings
    ended = _run_by_hand(settings, lambda *_: {}, {"n": 1})
    waiting = _queued_job(settings, {"n": 2})
    logs = {key: jobs.jobs_dir(settings) / f"{key}.log" for key in (ended.key, waiting.key)}
    for path in logs.values():
        path.write_text("what the job printed\n")
    days = settings.jobs_log_days
    with session_scope(settings) as session:
        assert jobs.prune_logs(session, settings) == 0, "young logs stay"
        later = time.time() + (days + 1) * 86400
        assert jobs.prune_logs(session, settings, now=later) == 1
    assert not logs[ended.key].exists()
    assert logs[waiting.key].exists(), "a queued job keeps its log, however old"


def test_two_requests_for_one_month_at_once_start_one_job(
    calls_site: Site, slot_taken: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = calls_site.settings
    real_refresh = jobs.refresh

    def slow_refresh(session, settings) -> int:  # widens the window between look and insert
        found = real_refresh(session, settings)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(jobs, "refresh", slow_refresh)
    made: list[int] = []

    def request() -> None:
        with session_scope(settings) as session:
            made.append(fraud.start_scan(session, settings, principal=ROOT, period="2021-11").id)

    both = [threading.Thread(target=request) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    assert len(made) == 2
    assert made[0] == made[1]
    with session_scope(settings) as session:
        assert session.query(Job).count() == 1
    with session_scope(settings) as session:
        jobs.cancel(session, settings, principal=ROOT, job_id=made[0])


def test_a_job_is_cancelled_by_its_requester_or_an_administrator(
    calls_site: Site, slot_taken: Callable[[], None]
) -> None:
    site, settings = calls_site, calls_site.settings
    with session_scope(settings) as session:
        fraud.scan(session, settings=settings, principal=ROOT, period="2021-11")
    summary = fraud.results_dir(settings, "2021-11") / "summary.json"
    before = summary.read_bytes()
    ann, ada = site.as_role("analyst"), site.as_role("admin")
    mine = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=ann).json()["id"]
    pid = _process_of(settings, mine)
    # Only its requester or an administrator may stop it; nobody else may even see it.
    operator = site.as_role("operator")
    assert site.client.post(f"/api/v1/jobs/{mine}/cancel", headers=operator).status_code == 403
    stopped = site.client.post(f"/api/v1/jobs/{mine}/cancel", headers=ann)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "cancelled"
    assert stopped.json()["message"] == jobs.CANCELLED_MESSAGE
    _until_gone(pid)  # told to stop, its process ended
    with session_scope(settings) as session:
        key = session.get(Job, mine).key
    assert not (jobs.jobs_dir(settings) / f"{key}.lock").exists()
    assert summary.read_bytes() == before
    assert _actions(settings, mine) == ["job.submitted", "job.cancelled"]
    with session_scope(settings) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "job.cancelled")
        ).one()
        assert entry.actor == "ann"
    again = site.client.post(f"/api/v1/jobs/{mine}/cancel", headers=ann)
    assert again.status_code == 409
    assert "only a queued or running job" in again.json()["detail"]

    theirs = site.client.post("/api/v1/fraud/scans?period=2021-11", headers=ann).json()["id"]
    _process_of(settings, theirs)
    site.login(site.client, "ada", PASSWORD)
    page = site.client.get(f"/jobs/{theirs}")
    assert 'id="job-cancel"' in page.text
    site.client.post(f"/jobs/{theirs}/cancel", data={"csrf_token": csrf_of(page.text)})
    assert site.client.get(f"/api/v1/jobs/{theirs}", headers=ada).json()["status"] == "cancelled"
    assert 'id="job-cancel"' not in site.client.get(f"/jobs/{theirs}").text


def test_a_job_that_finishes_after_it_was_marked_ended_keeps_that_mark(site: Site) -> None:
    settings = site.settings

    def work(_session, settings, _principal, _params, _progress) -> dict:
        # Meanwhile, someone else records the job as ended (a cancel, a refresh).
        with session_scope(settings) as other:
            other.execute(update(Job).where(Job.status == "running").values(status="interrupted"))
        return {"done": True}

    ended = _run_by_hand(settings, work, {})
    assert ended.status == "interrupted"
    assert ended.result == {}
    assert "job.succeeded" not in _actions(settings, ended.id)


def test_the_fixed_messages_of_jobs_are_translated() -> None:
    from telereg.core.i18n import translations
    from telereg.web.terms import JOB_MESSAGES

    assert JOB_MESSAGES == (jobs.INTERRUPTED_MESSAGE, jobs.CANCELLED_MESSAGE)
    for message in JOB_MESSAGES:
        assert translations("zh_CN").gettext(message) != message


_BUSY_IN_C = """
import hashlib, signal, sys
from telereg.core import jobs

signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # as a job's handler: Python-level
jobs.stop_within(1.0)
print("ready", flush=True)
# One long call into C that never lets Python run the handler (an engine query can be one).
hashlib.sha256(bytes(12_000_000_000)).hexdigest()
"""


def test_a_process_told_to_stop_ends_within_its_grace_even_inside_a_long_call() -> None:
    busy = subprocess.Popen([sys.executable, "-c", _BUSY_IN_C], stdout=subprocess.PIPE, text=True)
    assert busy.stdout is not None
    assert busy.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # inside the call
    told = time.monotonic()
    busy.send_signal(signal.SIGTERM)
    busy.wait(timeout=120)
    took = time.monotonic() - told
    # Ended by the grace (128 + SIGTERM), not by the handler once the call returned (3).
    assert busy.returncode == 128 + signal.SIGTERM, (busy.returncode, took)
    assert took < 5
