"""Jobs: long work run in a process of its own, so that a web request returns at once.

A job is a row in the state DB and a lock file under ``<data_dir>/jobs``. The
process that submits a job creates the lock file and locks it before the row is
committed, hands the open file to the job's process and closes its own copy:
from then on the lock is held exactly as long as the job's process lives. A job
still queued or running whose lock can be taken has lost its process (killed,
crashed, the machine restarted) and is marked interrupted. Whatever ends a job
first (its process, a cancel, the discovery that its process is gone) is what
the job records: a later ending changes nothing.

At most ``jobs_max_running`` jobs run at once: each waits, queued, for one of as
many slot locks. A job's process writes its pid into its lock file, so that a
job can be cancelled. The kinds of job and what runs them are plugged in by the
composition root (``telereg.registry``), so this module knows no domain.

Everything here assumes that jobs run on the machine whose data dir they use:
``flock`` locks are not shared between machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.auth import principal_of
from telereg.core.db import session_scope, utcnow
from telereg.core.errors import (
    ConflictError,
    JobStartError,
    NotFoundError,
    PermissionDeniedError,
    TeleregError,
)
from telereg.core.i18n import N_
from telereg.core.models import Job, User
from telereg.core.permissions import Permission, Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings, ensure_data_dir, settings_environment

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
#: The fixed messages of a job (the web translates them; keep ``web.terms`` in step).
INTERRUPTED_MESSAGE = (
    "The job's process ended without recording a result (killed, out of memory or the "
    "machine restarted). Start it again."
)
CANCELLED_MESSAGE = "Cancelled before it finished. Start it again if it is still needed."
NO_JOB = N_("no job {id}")


class _Cancelled(BaseException):
    """Raised in a job's process when it is told to stop (SIGTERM)."""


#: Seconds between a waiting job's attempts at a free slot.
SLOT_POLL_SECONDS = 0.5
#: Seconds a job told to stop has to unwind before its process ends regardless.
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job: its name, the permission it needs and the function that does it.

    ``run(session, settings, principal, params, progress)`` does the work in the job's
    process, tells ``progress`` each step it begins, and returns its result as
    JSON-ready data. ``check`` runs in the submitting request, so that what is
    certain to fail (no data for the month) is refused there rather than queued.
    """

    name: str
    permission: Permission
    run: Callable[
        [Session, Settings, Principal, dict[str, Any], Callable[[str], None]], dict[str, Any]
    ]
    check: Callable[[Session, Settings, dict[str, Any]], None]


def jobs_dir(settings: Settings) -> Path:
    path = ensure_data_dir(settings.data_dir) / "jobs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def log_path(settings: Settings, job: Job) -> Path:
    return jobs_dir(settings) / f"{job.key}.log"


def submit(
    session: Session,
    settings: Settings,
    *,
    principal: Principal,
    job_kind: JobKind,
    params: dict[str, Any],
) -> Job:
    """Queue ``job_kind`` with ``params`` and start its process; commits ``session``.

    A job of the same kind and parameters that is already queued or running is
    returned instead of starting a second one.
    """
    principal.require(job_kind.permission)
    job_kind.check(session, settings, params)
    key = uuid.uuid4().hex
    # What the request wrote so far (an API token's last use) is committed before the
    # submit lock is awaited: held meanwhile, the database's write lock would stop the
    # request that has the submit lock from queueing its job, and both would wait.
    session.commit()
    lock = os.open(jobs_dir(settings) / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a new file: nobody else holds it
        with _submitting(settings):
            # One submit at a time: two requests for one month cannot both miss the other.
            session.commit()  # so that what others committed is seen
            refresh(session, settings)
            prune_logs(session, settings)
            for job in session.scalars(
                select(Job).where(Job.kind == job_kind.name, Job.status.in_(ACTIVE))
            ):
                if job.params == params:
                    os.close(lock)
                    lock = -1
                    (jobs_dir(settings) / f"{key}.lock").unlink(missing_ok=True)
                    return job
            job = _queued(session, principal=principal, key=key, kind=job_kind.name, params=params)
        try:
            _spawn(settings, job, lock)
        except OSError as err:
            message = f"could not start the job's process ({err.strerror or err})"
            if _finish(session, job, JobStatus.FAILED, message=message, result={}):
                session.commit()
            (jobs_dir(settings) / f"{key}.lock").unlink(missing_ok=True)
            raise JobStartError(message, where=f"job {job.id}") from err
    finally:
        if lock >= 0:
            os.close(lock)
    return job


@contextlib.contextmanager
def _submitting(settings: Settings) -> Iterator[None]:
    guard = os.open(jobs_dir(settings) / "submit.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield
    finally:
        os.close(guard)


def _queued(
    session: Session, *, principal: Principal, key: str, kind: str, params: dict[str, Any]
) -> Job:
    """The new job's row, audited and committed."""
    job = Job(
        key=key,
        kind=kind,
        params=params,
        status=JobStatus.QUEUED.value,
        stage="",
        requested_by=principal.name,
        user_id=principal.user_id,
        message="",
        result={},
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="job.submitted",
        objects=[f"job:{job.id}"],
        detail={"kind": kind, "params": params},
    )
    session.commit()
    return job


def _spawn(settings: Settings, job: Job, lock: int) -> None:
    command = [sys.executable, "-m", "telereg", "jobs", "run", str(job.id), "--lock-fd", str(lock)]
    with log_path(settings, job).open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            env={**os.environ, **settings_environment(settings)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(lock,),
            start_new_session=True,
        )
    # Reap it when it ends, so that a long-lived server does not collect zombies.
    threading.Thread(target=process.wait, name=f"job-{job.id}", daemon=True).start()


def run(
    settings: Settings, *, job_id: int, lock_fd: int | None, kinds: Mapping[str, JobKind]
) -> Job:
    """Run job ``job_id`` in this process: wait for a slot, do the work, record the result.

    ``lock_fd`` is the job's lock as handed over by :func:`submit`; without it (a
    job started again by hand) the lock is taken here, and refused while another
    process holds it.
    """
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFoundError(NO_JOB.format(id=job_id))
        if job.status != JobStatus.QUEUED.value:
            raise ConflictError(f"job {job_id} is {job.status}, not queued")
    lock = lock_fd if lock_fd is not None else _take_own_lock(settings, job)
    os.ftruncate(lock, 0)
    os.pwrite(lock, str(os.getpid()).encode(), 0)  # whoever cancels it signals this process
    # Told to stop (see cancel), it unwinds: the work's transaction rolls back, the lock goes.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main else None
    slot = -1
    try:
        slot = _take_slot(settings)
        with session_scope(settings) as session:
            started = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.RUNNING.value, started_at=utcnow())
            )
            if started.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError(f"job {job_id} is no longer queued")
        status, message, result = _work(settings, job, kinds, by_hand=lock_fd is None)
        with session_scope(settings) as session:
            current = session.get(Job, job_id)
            assert current is not None
            _finish(session, current, status, message=message, result=result)
            job = current
    except _Cancelled:
        with session_scope(settings) as session:
            current = session.get(Job, job_id)
            assert current is not None
            job = current
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if slot >= 0:
            os.close(slot)
        (jobs_dir(settings) / f"{job.key}.lock").unlink(missing_ok=True)
        os.close(lock)
    return job


def _stop(_signum: int, _frame: object) -> None:
    raise _Cancelled


def stop_within(grace: float) -> None:
    """Make sure this process ends within ``grace`` seconds of being told to stop.

    For a process that runs one job (``telereg jobs run``), called from its main thread.

    Python runs a signal's handler only between its own instructions, and an engine
    query can keep it from them for minutes. The C-level handler, though, writes the
    signal to the wakeup pipe at once; a thread waiting on the pipe gives the handler
    ``grace`` seconds to unwind the work, then ends the process. A cancelled job's end
    is recorded before it is signalled, and its locks go with its process.
    """
    readable, writable = os.pipe()
    os.set_blocking(writable, False)
    signal.set_wakeup_fd(writable)

    def watch() -> None:
        while True:
            told = os.read(readable, 1)
            if told and told[0] in (signal.SIGTERM, signal.SIGINT):
                time.sleep(grace)
                os._exit(128 + told[0])

    threading.Thread(target=watch, name="job-stop", daemon=True).start()


def _work(
    settings: Settings, job: Job, kinds: Mapping[str, JobKind], *, by_hand: bool
) -> tuple[JobStatus, str, dict[str, Any]]:
    try:
        job_kind = _kind_of(kinds, job.kind)
        with session_scope(settings) as session:
            principal = _principal_of(session, job)
            principal.require(job_kind.permission)
            result = job_kind.run(
                session, settings, principal, dict(job.params), _progress_of(settings, job)
            )
    except TeleregError as err:
        return JobStatus.FAILED, str(err), {}
    except Exception as err:  # noqa: BLE001 - any failure is recorded, with its trace in the log
        trace = traceback.format_exc()
        if by_hand:
            # Started from a terminal, whose output is not the log: the trace goes to both.
            with log_path(settings, job).open("a", encoding="utf-8") as fh:
                fh.write(trace)
        sys.stderr.write(trace)
        sys.stderr.flush()
        where = f"jobs/{job.key}.log in the data dir"
        return (
            JobStatus.FAILED,
            f"internal error ({type(err).__name__}); its trace is in the job's log ({where})",
            {},
        )
    return JobStatus.SUCCEEDED, "", result


def _progress_of(settings: Settings, job: Job) -> Callable[[str], None]:
    """Records the step the work begins, in a transaction of its own, for others to see.

    Progress is for show: when it cannot be recorded (the state DB is busy with the
    work's own writes), the work goes on.
    """

    def progress(stage: str) -> None:
        try:
            with session_scope(settings) as session:
                session.execute(update(Job).where(Job.id == job.id).values(stage=stage[:32]))
        except SQLAlchemyError as err:
            log.warning("job %s: could not record its stage %r: %s", job.id, stage, err)

    return progress


def _kind_of(kinds: Mapping[str, JobKind], name: str) -> JobKind:
    try:
        return kinds[name]
    except KeyError as err:
        raise NotFoundError(f"no kind of job named {name!r} (known: {', '.join(kinds)})") from err


def _principal_of(session: Session, job: Job) -> Principal:
    """The job acts as whoever asked for it, as that user is now (disabled: refused)."""
    if job.user_id is None:
        return Principal(name=job.requested_by, role=Role.ADMIN, via="cli")
    user = session.get(User, job.user_id)
    if user is None or not user.active:
        raise PermissionDeniedError(f"user {job.requested_by!r} is disabled; the job was not run")
    return principal_of(user, via="job")


def _finish(
    session: Session,
    job: Job,
    status: JobStatus,
    *,
    message: str,
    result: dict[str, Any],
    actor: str | None = None,
) -> bool:
    """Record how ``job`` ended, unless it ended already (cancelled, found interrupted).

    Returns whether this call recorded it.
    """
    ended = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(ACTIVE))
        .values(status=status.value, finished_at=utcnow(), message=message, result=result)
        .execution_options(synchronize_session=False)
    )
    if not ended.rowcount:  # type: ignore[attr-defined]
        session.refresh(job)
        return False
    audit.record(
        session,
        actor=actor or job.requested_by,
        action=f"job.{status.value}",
        objects=[f"job:{job.id}"],
        detail={"kind": job.kind, "params": job.params, "message": message},
    )
    session.flush()
    session.refresh(job)
    return True


def may_cancel(principal: Principal, requested_by: str) -> bool:
    """Whether ``principal`` may cancel a job ``requested_by`` asked for: they or an admin."""
    return principal.name == requested_by or principal.role is Role.ADMIN


def cancel(session: Session, settings: Settings, *, principal: Principal, job_id: int) -> Job:
    """Stop a queued or running job: recorded as cancelled, its process told to end.

    Its requester and administrators may cancel it. A scan stops where it is; the
    month keeps the results it had (a scan replaces them whole, at its end).
    """
    job = get(session, settings, principal=principal, job_id=job_id)
    if not may_cancel(principal, job.requested_by):
        raise PermissionDeniedError(
            N_("job {id} is {user}'s; only they or an administrator may cancel it").format(
                id=job_id, user=job.requested_by
            )
        )
    pid = pid_of(settings, job)
    if not _finish(
        session,
        job,
        JobStatus.CANCELLED,
        message=CANCELLED_MESSAGE,
        result={},
        actor=principal.name,
    ):
        raise ConflictError(
            N_("job {id} is {status}; only a queued or running job can stop").format(
                id=job_id, status=job.status
            )
        )
    session.commit()
    if pid is not None:
        try:
            # Started by submit, the job's process leads its own group: what it started
            # (Spark's JVM) stops too. Started by hand, it may not lead one.
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    return job


def pid_of(settings: Settings, job: Job) -> int | None:
    """The pid of ``job``'s process while it holds its lock; None when there is none (yet)."""
    path = jobs_dir(settings) / f"{job.key}.lock"
    try:
        lock = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(lock, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(lock, fcntl.LOCK_UN)
        return None
    finally:
        os.close(lock)


def _take_own_lock(settings: Settings, job: Job) -> int:
    lock = os.open(jobs_dir(settings) / f"{job.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        os.close(lock)
        raise ConflictError(f"job {job.id} is already being run by another process") from err
    return lock


def _take_slot(settings: Settings) -> int:
    """Block until one of the ``jobs_max_running`` slots is free; hold it by the returned fd."""
    while True:
        for number in range(settings.jobs_max_running):
            slot = os.open(
                jobs_dir(settings) / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600
            )
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(slot)
                continue
            return slot
        time.sleep(SLOT_POLL_SECONDS)


def _alive(settings: Settings, job: Job) -> bool:
    """Whether the process that holds ``job``'s lock is still there."""
    try:
        lock = os.open(jobs_dir(settings) / f"{job.key}.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(lock)
    return False


def refresh(session: Session, settings: Settings) -> int:
    """Mark queued or running jobs whose process is gone as interrupted; returns how many."""
    marked = 0
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE))).all():
        if _alive(settings, job):
            continue
        # Only if it did not finish in the meantime: a finished job lets go of its lock too.
        gone = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status.in_(ACTIVE))
            .values(
                status=JobStatus.INTERRUPTED.value,
                finished_at=utcnow(),
                message=INTERRUPTED_MESSAGE,
            )
            .execution_options(synchronize_session=False)
        )
        if gone.rowcount:  # type: ignore[attr-defined]
            marked += 1
            (jobs_dir(settings) / f"{job.key}.lock").unlink(missing_ok=True)
            audit.record(
                session,
                actor="system",
                action="job.interrupted",
                objects=[f"job:{job.id}"],
                detail={"kind": job.kind, "params": job.params},
            )
    if marked:
        session.expire_all()
    return marked


def prune_logs(session: Session, settings: Settings, *, now: float | None = None) -> int:
    """Remove the logs of jobs that ended over ``jobs_log_days`` ago; returns how many.

    A log is kept while its job is queued or running, however old it is.
    """
    cutoff = (time.time() if now is None else now) - settings.jobs_log_days * 86400
    old = {
        path.stem: path
        for path in jobs_dir(settings).glob("*.log")
        if path.stat().st_mtime < cutoff
    }
    if not old:
        return 0
    active = set(session.scalars(select(Job.key).where(Job.status.in_(ACTIVE))))
    removed = 0
    for key, path in old.items():
        if key not in active:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d job logs older than %d days", removed, settings.jobs_log_days)
    return removed


def visible(
    session: Session, settings: Settings, *, principal: Principal, limit: int = 100
) -> Sequence[Job]:
    """The latest jobs, newest first: analysis is shared work, so all of them."""
    principal.require(Permission.ANALYSIS_RUN)
    refresh(session, settings)
    return session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)).all()


def get(session: Session, settings: Settings, *, principal: Principal, job_id: int) -> Job:
    principal.require(Permission.ANALYSIS_RUN)
    refresh(session, settings)
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(NO_JOB.format(id=job_id))
    return job


def describe(job: Job) -> dict[str, Any]:
    """A job as the API and the pages show it."""
    seconds = None
    if job.started_at is not None:
        end = job.finished_at or utcnow()
        seconds = round((end - job.started_at).total_seconds(), 1)
    return {
        "id": job.id,
        "kind": job.kind,
        "params": job.params,
        "status": job.status,
        "stage": job.stage,
        "requested_by": job.requested_by,
        "created_at": job.created_at.isoformat(timespec="seconds"),
        "started_at": job.started_at.isoformat(timespec="seconds") if job.started_at else None,
        "finished_at": job.finished_at.isoformat(timespec="seconds") if job.finished_at else None,
        "seconds": seconds,
        "message": job.message,
        "result": job.result,
    }
