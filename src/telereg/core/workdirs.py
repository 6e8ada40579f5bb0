"""Private work directories, each locked by the process working in it, swept once it is gone.

Work on clear values (an upload's copy, a GBK file's UTF-8 copy, DuckDB's spill while the
vault or an ingest works) happens in a directory of its own (mode ``0700``) under a root in
the data dir. Its process holds an exclusive ``flock`` on the directory's ``.owner`` file
while it works there, and the kernel lets go of the lock when the process ends, however it
ends (``SIGKILL``, the OOM killer). A sweep removes a directory only when it can take that
lock itself: its owner is gone, so the work of a process running now (a second CLI, the web
server) is never removed, and the leftovers of a killed one go at the next start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from telereg.core.settings import Settings

log = logging.getLogger(__name__)

#: The file of a work directory whose lock its process holds (it names the host and pid).
OWNER = ".owner"
#: The vault's spill, under the vault's directory.
VAULT_SPILL = ".spill"
#: A directory still being made (hidden, not yet locked) is left alone for this long.
_MAKING_S = 60.0
#: A directory with no ``.owner`` (made by an older telereg) goes once it is this old.
DAY_S = 24 * 3600.0


def scratch_root(settings: Settings) -> Path:
    """Ingests' and uploads' work on clear values, outside the lake."""
    return settings.data_dir / "scratch"


def staging_root(settings: Settings) -> Path:
    """Ingests' finished files before they are published, inside the lake."""
    return settings.lake_dir / "_staging"


def engine_spill_root(settings: Settings) -> Path:
    """The analyses' DuckDB spill (pseudonymised data only)."""
    return settings.data_dir / "engine-spill"


def roots(settings: Settings) -> tuple[Path, ...]:
    """Every root of work directories in the data dir."""
    return (
        scratch_root(settings),
        staging_root(settings),
        settings.vault_dir / VAULT_SPILL,
        engine_spill_root(settings),
    )


class Claim:
    """A work directory this process made and holds the lock of, until :meth:`release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Remove the directory, then let go of its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)


def claim(root: Path) -> Claim:
    """A fresh directory under ``root`` (both mode ``0700``), locked by this process."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    # Made under a hidden name, which a sweep leaves alone for a while, and given its own
    # only once locked: a sweep never finds it unlocked while its maker is alive.
    making = root / f".{name}"
    making.mkdir(mode=0o700)
    fd = os.open(making / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        path = root / name
        making.rename(path)
    except BaseException:
        os.close(fd)
        shutil.rmtree(making, ignore_errors=True)
        raise
    return Claim(path, fd)


@contextmanager
def private_directory(root: Path) -> Iterator[Path]:
    """A fresh directory under ``root`` (:func:`claim`), removed when the block ends."""
    held = claim(root)
    try:
        yield held.path
    finally:
        held.release()


def sweep(root: Path, *, older_than_s: float = DAY_S) -> int:
    """Remove the work directories under ``root`` whose process has ended; returns how many.

    A directory without a ``.owner`` file (made by an older telereg) goes once it is
    ``older_than_s`` old.
    """
    if not root.is_dir():
        return 0
    removed = 0
    try:
        found = list(root.iterdir())
    except OSError as err:
        log.warning("work directories under %s not swept: %s", root, err)
        return 0
    for path in found:
        try:
            if path.is_dir() and _abandoned_removed(path, older_than_s):
                removed += 1
        except FileNotFoundError:
            continue  # another sweep took it first
        except OSError as err:
            # (one another account left, say: it stays, and the work of this process goes on)
            log.warning("work directory %s left as it is: %s", path, err)
    return removed


def sweep_left_behind(settings: Settings) -> int:
    """:func:`sweep` every root of work directories in the data dir (:func:`roots`)."""
    return sum(sweep(root) for root in roots(settings))


def _abandoned_removed(path: Path, older_than_s: float) -> bool:
    age = time.time() - path.stat().st_mtime
    being_made = path.name.startswith(".")
    if being_made and age < _MAKING_S:
        # Its maker locks it a moment from now: not even its lock is tried, which would make
        # the maker's own attempt fail while this sweep held it.
        return False
    try:
        fd = os.open(path / OWNER, os.O_RDONLY)
    except FileNotFoundError:
        if not being_made and age < older_than_s:
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process works in it now
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        os.close(fd)
