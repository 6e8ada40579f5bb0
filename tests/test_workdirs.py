"""Private work directories: a killed process's are swept at the next start, a live one's stay."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from telereg.app import create_app
from telereg.core import engine, workdirs
from telereg.core.privacy import IdentifierKind, Vault, pseudonymise
from telereg.core.settings import Settings

#: A process that spills clear values into the vault's spill and waits to be killed.
_SPILLING = """
import sys, time
from pathlib import Path
from telereg.core.privacy import private_duckdb
with private_duckdb(Path(sys.argv[1])) as con:
    con.execute("SET memory_limit = '16MB'")
    con.execute("SET threads = 1")
    con.execute("CREATE TEMP TABLE t AS SELECT '13812341234' clear, i FROM range(999999) r(i)")
    print("spilled", flush=True)
    time.sleep(600)
"""
#: A process that holds an upload's scratch directory, with a clear copy in it.
_UPLOADING = """
import sys, time
from pathlib import Path
from telereg.core.settings import load_settings
from telereg.ingest import lake
with lake.scratch(load_settings(data_dir=Path(sys.argv[1]))) as work:
    (work / "upload.bin").write_text("13812341234")
    print("copied", flush=True)
    time.sleep(600)
"""


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip(), "the process did not get to its work"
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _killed(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _work_of(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_a_killed_process_spill_is_swept_when_the_vault_opens_and_a_live_one_stays(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    vault_dir = tmp_path / "vault"
    spill = vault_dir / workdirs.VAULT_SPILL
    processes.append(_start(_SPILLING, str(spill)))
    (killed_dir,) = _work_of(spill)
    processes.append(_start(_SPILLING, str(spill)))
    (live_dir,) = set(_work_of(spill)) - {killed_dir}
    assert list(killed_dir.rglob("*.tmp")), "the killed process spilled clear values"
    _killed(processes[0])
    assert killed_dir.exists(), "a kill leaves the spill behind"

    vault = Vault(vault_dir, b"k" * 32)
    pairs = pa.table({"token": [pseudonymise("13912341234", b"p" * 32)], "clear": ["13912341234"]})
    assert vault.store(pairs, IdentifierKind.PHONE) == 1

    assert not killed_dir.exists(), "the next process that opens the vault swept it"
    assert list(live_dir.rglob("*.tmp")), "the spill of a process working now is kept"
    assert _work_of(spill) == [live_dir]


def test_the_web_app_start_sweeps_a_killed_upload_copy_and_keeps_a_live_one(
    settings: Settings, processes: list[subprocess.Popen[str]]
) -> None:
    scratch = workdirs.scratch_root(settings)
    processes.append(_start(_UPLOADING, str(settings.data_dir)))
    (killed_dir,) = _work_of(scratch)
    processes.append(_start(_UPLOADING, str(settings.data_dir)))
    (live_dir,) = set(_work_of(scratch)) - {killed_dir}
    _killed(processes[0])
    assert (killed_dir / "upload.bin").exists()

    create_app(settings)

    assert not killed_dir.exists(), "the server's start swept the killed upload's copy"
    assert (live_dir / "upload.bin").read_text() == "13812341234", "a live upload is kept"


def test_a_directory_being_made_or_made_by_an_older_version_is_judged_by_age(
    tmp_path: Path,
) -> None:
    root = tmp_path / "scratch"
    being_made = root / ".0123"
    older_version = root / "4567"
    being_made.mkdir(parents=True)
    older_version.mkdir()
    assert workdirs.sweep(root) == 0, "young, and no lock to ask: kept"
    day_ago = time.time() - workdirs.DAY_S - 60
    os.utime(being_made, (day_ago, day_ago))
    os.utime(older_version, (day_ago, day_ago))
    assert workdirs.sweep(root) == 2
    assert list(root.iterdir()) == []


def test_a_young_directory_being_made_is_not_locked_by_a_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its maker takes the lock a moment from now; a sweep holding it then would make the
    # maker's claim fail (a false "storage not writable" for an ingest).
    root = tmp_path / "scratch"
    being_made = root / ".0123"
    being_made.mkdir(parents=True)
    (being_made / workdirs.OWNER).touch()
    tried: list[int] = []
    monkeypatch.setattr(workdirs.fcntl, "flock", lambda *args: tried.append(args[0]))
    assert workdirs.sweep(root) == 0
    assert tried == [], "not even tried"
    assert being_made.exists()


def test_a_directory_a_sweep_cannot_read_is_left_and_the_rest_swept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # (another account's, say: the server still starts, the vault still opens)
    root = tmp_path / "scratch"
    unreadable = root / "4567"
    unreadable.mkdir(parents=True)
    (unreadable / workdirs.OWNER).symlink_to("/etc/hostname/not-a-directory")
    gone = root / "89ab"
    gone.mkdir()
    day_ago = time.time() - workdirs.DAY_S - 60
    os.utime(gone, (day_ago, day_ago))
    assert workdirs.sweep(root) == 1
    assert [p.name for p in root.iterdir()] == ["4567"]
    assert "work directory" in caplog.text
    assert "4567" in caplog.text


def test_a_directory_held_in_this_process_is_kept_and_goes_when_released(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    with workdirs.private_directory(root) as work:
        assert (work.stat().st_mode & 0o777, root.stat().st_mode & 0o777) == (0o700, 0o700)
        assert workdirs.sweep(root) == 0
        assert work.exists()
    assert list(root.iterdir()) == []


def test_analyses_spilling_at_once_each_spill_into_their_own_directory(
    settings: Settings,
) -> None:
    """Two DuckDB databases spilling into one directory read each other's blocks and fail
    (``Could not read enough bytes from file …duckdb_temp_storage…``)."""
    limited = settings.model_copy(update={"duckdb_memory_limit": "40MB"})
    sums: list[int] = []
    failures: list[BaseException] = []
    spill_dirs: list[list[Path]] = []
    both_done = threading.Barrier(2, timeout=120)
    both_looked = threading.Barrier(2, timeout=120)
    query = (
        "SELECT sum(x) FROM (SELECT i AS x, repeat('a', 20) AS s FROM range(2000000) t(i) "
        "ORDER BY s, x DESC)"
    )

    def analyse() -> None:
        backend = engine.connect(limited)
        try:
            backend.raw_sql("SET threads = 1")
            ((found,),) = backend.raw_sql(query).fetchall()
            both_done.wait()  # (both connections still open)
            spill_dirs.append(_work_of(workdirs.engine_spill_root(limited)))
            both_looked.wait()  # (and still open while the other looks)
            sums.append(int(found))
        except BaseException as err:  # noqa: BLE001 - reported below
            failures.append(err)
            # (the other thread stops waiting: this error is the failure)
            both_done.abort()
            both_looked.abort()
        finally:
            del backend

    threads = [threading.Thread(target=analyse) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sums == [sum(range(2_000_000))] * 2
    assert [len(seen) for seen in spill_dirs] == [2, 2], "one directory per connection"
    gc.collect()
    assert _work_of(workdirs.engine_spill_root(limited)) == [], "each goes with its connection"
