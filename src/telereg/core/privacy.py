"""Pseudonymisation, display masking, the identity vault and re-identification.

Personal identifiers (phone numbers, IMSI, IMEI, ID-card numbers) are replaced
at ingest by keyed tokens, HMAC-SHA256 truncated to 128 bits, so analyses join
on tokens without seeing the clear value. The clear value is kept only in the
vault, encrypted with AES-GCM; reading it back needs a permission, a
reason that says why and room in the user's daily limit, and leaves an audit record,
a refused attempt too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from telereg.core import audit, workdirs
from telereg.core.errors import (
    ApprovalRequiredError,
    ConfigurationError,
    InputError,
    LimitReachedError,
    NotFoundError,
    TeleregError,
)
from telereg.core.i18n import N_
from telereg.core.models import ApprovalStatus, AuditEntry, ReidentifyApproval, ReidentifyTurn
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.settings import Settings

TOKEN_HEX_CHARS = 32
_NONCE_BYTES = 12


class IdentifierKind(StrEnum):
    PHONE = "phone"
    IMSI = "imsi"
    IMEI = "imei"
    ID_NUMBER = "id_number"


def pseudonymise(value: str, key: bytes) -> str:
    """The token of ``value`` under ``key``: 32 lowercase hex characters."""
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_HEX_CHARS]


class Pseudonymiser:
    """Batch form of :func:`pseudonymise`: the same tokens, about twice as fast.

    HMAC's inner and outer hash states after the padded key are computed once
    and copied per value, instead of re-deriving them for every call.
    """

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def token(self, value: str) -> str:
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:TOKEN_HEX_CHARS]

    def tokens(self, values: Iterable[str]) -> list[str]:
        return [self.token(v) for v in values]


def mask(value: str) -> str:
    """A display form that never shows more than the first 3 and last 4 characters.

    Values shorter than 11 characters show at most half of themselves:
    ``13812341234`` → ``138****1234``; an 8-character value → ``12****78``.
    """
    n = len(value)
    if n >= 11:
        head, tail = 3, 4
    elif n >= 8:
        head, tail = 2, 2
    elif n >= 4:
        head, tail = 1, 1
    else:
        head, tail = 0, 0
    return value[:head] + "*" * (n - head - tail) + value[n - tail :] if tail else "*" * n


#: A phone or ID number as people write one in free text: 11 digits or more, ASCII or
#: full-width, in groups split by up to 3 of spaces, hyphens and other dashes (U+2010 to
#: U+2015, the minus sign), dots, slashes, underscores or brackets, ASCII or full-width
#: (``138-1234-5678``, ``(182)2755-6502``, ``138 - 1234 - 5678``, ``138.1234.5678``,
#: ``140102 19840707 857X``), an ID number's check letter last. Groups: the first 3 digits
#: and the last 4 characters, which a masked form keeps. (Python's ``re`` and the engine's
#: RE2 read it alike.)
_GROUPING = "[ \u00a0\u3000\\-－\u2010-\u2015\u2212.．/／_＿()（）]{0,3}"
WRITTEN_NUMBER = (
    f"([0-9０-９]{{3}})(?:{_GROUPING}[0-9０-９]){{4,}}{_GROUPING}([0-9０-９]{{3}}[0-9０-９XxＸ])"
)
_IDENTIFYING_RUN = re.compile(WRITTEN_NUMBER)


def mask_digits(text: str) -> str:
    """``text`` with every run of digits long enough to be an identifier shown as
    :func:`mask` shows it: for free text (a line as sent, a value typed into an address)
    that may hold a number anywhere."""
    return _IDENTIFYING_RUN.sub(lambda found: mask(found.group()), text)


class Sealer:
    """AES-GCM encryption bound to a label (associated data).

    A ciphertext presented under another label, or opened with another key,
    does not decrypt.
    """

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ConfigurationError("the vault key is empty", where="settings")
        self._aead = AESGCM(hashlib.sha256(b"telereg-vault\0" + key).digest())

    def seal(self, label: str, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, label.encode())

    def open(self, label: str, sealed: bytes) -> bytes:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, label.encode())
        except InvalidTag as err:
            raise ConfigurationError(
                f"vault data {label} does not decrypt with the configured vault key"
            ) from err


@contextmanager
def private_duckdb(directory: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection that spills (clear values, when they outgrow memory) into a fresh
    directory under ``directory``, which only this user may read and which goes when the
    connection closes: never into ``.tmp`` of the working directory, DuckDB's default.
    What a killed process spilled there before is swept first (:func:`workdirs.sweep`; never
    the spill of a process working now)."""
    workdirs.sweep(directory)
    with workdirs.private_directory(directory) as spill:
        con = duckdb.connect(config={"temp_directory": str(spill)})
        try:
            yield con
        finally:
            con.close()


class Vault:
    """Encrypted store of clear identifiers, one sealed chunk per batch.

    A batch (an ingest's new identifiers of one kind) is written as a Parquet
    table of (token, clear value), sealed with AES-GCM bound to
    the chunk's id and kind, plus a plain index file of its tokens (tokens are
    pseudonyms, as in the lake). Storing a million identifiers is one encryption;
    revealing one reads the index, then opens one chunk. What the engine spills while
    doing so stays in the vault's directory (``.spill``), and what a killed process spilled
    there is swept by the next one that opens the vault.
    """

    def __init__(self, directory: Path, key: bytes) -> None:
        self._dir = directory
        self._sealer = Sealer(key)

    @classmethod
    def of(cls, settings: Settings) -> Vault:
        return cls(settings.vault_dir, settings.secret("vault_key"))

    @property
    def _index_glob(self) -> str:
        return str(self._dir / "index" / "*.parquet")

    def _has_index(self) -> bool:
        return any((self._dir / "index").glob("*.parquet"))

    @property
    def _spill(self) -> Path:
        return self._dir / workdirs.VAULT_SPILL

    def store(self, pairs: pa.Table, kind: IdentifierKind) -> int:
        """Store the (token, clear) pairs whose token is not stored yet; returns how many."""
        seen = (
            f"AND token NOT IN (SELECT token FROM read_parquet('{self._index_glob}'))"
            if self._has_index()
            else ""
        )
        with private_duckdb(self._spill) as con:
            con.register("pairs", pairs)
            fresh = con.execute(
                f"SELECT token, clear FROM pairs WHERE token IS NOT NULL {seen}"
            ).to_arrow_table()
        if fresh.num_rows == 0:
            return 0
        chunk = uuid.uuid4().hex
        sink = pa.BufferOutputStream()
        pq.write_table(fresh, sink, compression="zstd")
        sealed = self._sealer.seal(f"{kind.value}:{chunk}", sink.getvalue().to_pybytes())
        (self._dir / "index").mkdir(parents=True, exist_ok=True)
        # The chunk lands before its index, so an indexed token always has its chunk.
        _write_atomically(self._dir / f"{chunk}.{kind.value}.sealed", sealed)
        index = pa.table({"token": fresh.column("token"), "chunk": [chunk] * fresh.num_rows})
        staged = self._dir / "index" / f".{chunk}.tmp"
        pq.write_table(index, staged, compression="zstd")
        staged.replace(self._dir / "index" / f"{chunk}.parquet")
        return int(fresh.num_rows)

    def reveal(self, token: str) -> str:
        if not self._has_index():
            raise NotFoundError(f"no vault entry for token {token}")
        with private_duckdb(self._spill) as con:
            found = con.execute(
                f"SELECT chunk FROM read_parquet('{self._index_glob}') WHERE token = ? LIMIT 1",
                [token],
            ).fetchone()
        if found is None:
            raise NotFoundError(f"no vault entry for token {token}")
        chunk = str(found[0])
        path = next(self._dir.glob(f"{chunk}.*.sealed"), None)
        if path is None:
            raise NotFoundError(f"vault chunk {chunk} of token {token} is missing")
        kind = path.name.split(".")[1]
        table = pq.read_table(
            pa.BufferReader(self._sealer.open(f"{kind}:{chunk}", path.read_bytes()))
        )
        lookup = dict(
            zip(table.column("token").to_pylist(), table.column("clear").to_pylist(), strict=True)
        )
        return str(lookup[token])


def _write_atomically(path: Path, data: bytes) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    staged.replace(path)


#: The audit actions of a clear value revealed, and of a reveal refused (or failed).
REIDENTIFIED = "privacy.reidentify"
REFUSED = "privacy.reidentify_refused"
#: How much a reason must say: distinct letters, a Chinese character counting as two.
_MIN_REASON_WIDTH = 6
#: Words that say nothing as a reason, however often repeated (compared in lower case).
_PLACEHOLDER_WORDS = frozenset(
    {
        "test", "tests", "testing", "asdf", "asdfgh", "qwer", "qwerty", "abc", "abcd",
        "abcdef", "xxx", "foo", "bar", "foobar", "dummy", "sample", "none", "nothing",
        "reason", "todo", "tbd",
    }
)  # fmt: skip
#: The same in Chinese, which writes no spaces between words: taken out wherever they stand.
_PLACEHOLDER_PHRASES = ("测试", "试试", "随便", "看看", "不知道")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
#: What is kept of a refused attempt's reason (a form takes 500 characters, the API 1000).
_KEPT_REASON_CHARS = 500
REASON_SAYS_NOTHING = N_(
    "say why you re-identify: a reason needs at least {n} different letters ({m} different "
    "Chinese characters), not counting digits, punctuation or words such as test, 测试 or asdf"
)
CASE_REQUIRED = N_(
    "name the case this re-identification is for: every re-identification here must belong "
    "to a case about the value"
)
#: Why a reveal that needs another user's approval (``settings.reidentify_needs_approval``)
#: is refused, by the state of the user's latest request for the case.
APPROVAL_MISSING = N_(
    "re-identifying the values of case {id} needs another user's approval, and you have "
    "none: ask for it on the case's page"
)
APPROVAL_PENDING = N_(
    "your request to re-identify the values of case {id} awaits an approver's decision"
)
APPROVAL_REFUSED = N_(
    "your request to re-identify the values of case {id} was refused by {by}: ask again on "
    "the case's page if there is a new reason"
)
APPROVAL_WITHDRAWN = N_(
    "your approval to re-identify the values of case {id} was withdrawn by {by}: ask again "
    "on the case's page"
)
APPROVAL_EXPIRED = N_(
    "your approval to re-identify the values of case {id} expired at {at} UTC: ask again on "
    "the case's page"
)
DAILY_LIMIT_REACHED = N_(
    "daily re-identification limit reached: {used} clear values revealed in the last 24 "
    "hours, at most {limit} allowed, {asked} more asked"
)


def note_as_stored(text: str) -> str:
    """A note or reason typed by a user as it is kept (audit log, case history, package
    manifest): stripped, with every number in it long enough to identify someone masked
    (:func:`mask_digits`), as the log is kept for good."""
    return mask_digits(text.strip())


def reidentification_reason(reason: str) -> str:
    """``reason`` as kept (:func:`note_as_stored`), if it says why; an InputError if not.

    It says why when its letters, besides placeholder words (test, 测试, asdf …), hold at
    least 3 different Chinese characters or 6 different other letters (a mix: a Chinese
    character counts as two). Digits and punctuation do not count: ``aaaaa``, ``test1``,
    ``.....`` and ``测试测`` say nothing; ``案件核查`` and ``police case 12`` do.
    """
    said = reason.casefold()
    for phrase in _PLACEHOLDER_PHRASES:
        said = said.replace(phrase, " ")
    letters = {
        ch for word in _LETTER_RUNS.findall(said) if word not in _PLACEHOLDER_WORDS for ch in word
    }
    if _width(letters) < _MIN_REASON_WIDTH:
        raise InputError(
            REASON_SAYS_NOTHING.format(n=_MIN_REASON_WIDTH, m=-(-_MIN_REASON_WIDTH // 2))
        )
    return note_as_stored(reason)


def _width(letters: Iterable[str]) -> int:
    """Characters, a Chinese one counting as two: 案件核查 says as much as a short English
    phrase, and "test" no more than 测试."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in letters)


def take_turn(session: Session, *, actor: str) -> None:
    """Lock ``actor``'s row of ``reidentify_turns`` until ``session``'s transaction ends.

    An upsert, which waits while another transaction holds the row (PostgreSQL: its row
    lock, a first row's unique key included; SQLite: the database's write lock), so the
    reveals a transaction counts after it (:func:`revealed_in_a_day`) include those of every
    transaction of the same user that committed before, and none that is still running can
    count the same.
    """
    dialect = session.get_bind().dialect.name
    upsert = _UPSERTS.get(dialect)
    if upsert is None:
        raise ConfigurationError(f"re-identification needs SQLite or PostgreSQL, not {dialect}")
    taken = upsert(ReidentifyTurn).values(actor=actor, at=datetime.now(UTC))
    session.execute(
        taken.on_conflict_do_update(index_elements=["actor"], set_={"at": taken.excluded.at})
    )


#: Each state DB's ``INSERT … ON CONFLICT`` (the two dialects' constructs spell it alike).
_UPSERTS: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def revealed_in_a_day(session: Session, *, actor: str) -> int:
    """Clear values ``actor`` revealed in the last 24 hours, as the audit log counts them."""
    since = datetime.now(UTC) - timedelta(days=1)
    counted = select(func.count()).where(
        AuditEntry.actor == actor, AuditEntry.action == REIDENTIFIED, AuditEntry.at >= since
    )
    return session.scalar(counted) or 0


@contextmanager
def refusal_audited(
    session: Session,
    *,
    principal: Principal,
    objects: Sequence[str],
    reason: str,
    context: dict[str, Any] | None = None,
    action: str = REFUSED,
) -> Iterator[None]:
    """Audit any telereg error the block raises, then let it go on, as a re-identification
    refused (``action``: ``privacy.reidentify_refused``, or a step of the four-eyes rule
    refused): who, which ``objects`` (the token, or the cases of a hand-over; a list the
    block fills in is read when it fails), the reason or note given and why it was refused.
    The entry is kept though the error rolls the transaction back
    (:func:`audit.record_refusal`)."""
    try:
        yield
    except TeleregError as err:
        audit.record_refusal(
            session,
            actor=principal.name,
            action=action,
            objects=objects,
            reason=note_as_stored(reason)[:_KEPT_REASON_CHARS],
            detail={**(context or {}), "refused": err.code, "why": err.message[:300]},
        )
        raise


def may_reidentify(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    reason: str,
    values: int = 1,
    objects: Sequence[str] = (),
    context: dict[str, Any] | None = None,
) -> str:
    """The reason as kept, if ``principal`` may reveal ``values`` clear values with it now:
    it holds the permission, ``objects`` name a case when the installation requires one,
    the principal holds an approval for each case they name when it requires that
    (:func:`require_approval`), the reason says why (:func:`reidentification_reason`), and
    the values stay within ``settings.reidentify_daily_limit`` for the last 24 hours. A
    refusal is audited, naming ``objects`` (:func:`refusal_audited`), and raised."""
    with refusal_audited(
        session, principal=principal, objects=objects, reason=reason, context=context
    ):
        return _allowed(
            session,
            settings=settings,
            principal=principal,
            reason=reason,
            values=values,
            objects=objects,
        )


def _allowed(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    reason: str,
    values: int,
    objects: Sequence[str],
) -> str:
    principal.require(Permission.PRIVACY_REIDENTIFY)
    case_ids = [int(o.partition(":")[2]) for o in objects if o.startswith("case:")]
    needs_approval = settings.reidentify_needs_approval
    if (settings.reidentify_requires_case or needs_approval) and not case_ids:
        raise InputError(CASE_REQUIRED)
    if needs_approval:
        for case_id in case_ids:
            require_approval(session, actor=principal.name, case_id=case_id)
    kept = reidentification_reason(reason)
    # Counted and revealed in the user's turn: a reveal of theirs running alongside counts
    # after this one commits (or rolls back), so two cannot pass on the same count.
    take_turn(session, actor=principal.name)
    used = revealed_in_a_day(session, actor=principal.name)
    if used + values > settings.reidentify_daily_limit:
        raise LimitReachedError(
            DAILY_LIMIT_REACHED.format(
                used=used, limit=settings.reidentify_daily_limit, asked=values
            )
        )
    return kept


def approval_in_force(
    session: Session, *, actor: str, case_id: int, now: datetime | None = None
) -> ReidentifyApproval | None:
    """An approval that lets ``actor`` reveal the values of case ``case_id`` now (granted,
    neither withdrawn nor expired), the one lasting longest; None if there is none."""
    found = select(ReidentifyApproval).where(
        ReidentifyApproval.case_id == case_id,
        ReidentifyApproval.requested_by == actor,
        ReidentifyApproval.status == ApprovalStatus.APPROVED.value,
        ReidentifyApproval.expires_at > (now or datetime.now(UTC)),
    )
    return session.scalars(found.order_by(ReidentifyApproval.expires_at.desc()).limit(1)).first()


def latest_request(session: Session, *, actor: str, case_id: int) -> ReidentifyApproval | None:
    """``actor``'s latest request to re-identify the values of case ``case_id``, if any."""
    found = select(ReidentifyApproval).where(
        ReidentifyApproval.case_id == case_id, ReidentifyApproval.requested_by == actor
    )
    return session.scalars(found.order_by(ReidentifyApproval.id.desc()).limit(1)).first()


def require_approval(session: Session, *, actor: str, case_id: int) -> None:
    """Nothing if ``actor`` holds an approval in force for case ``case_id``
    (:func:`approval_in_force`); an ApprovalRequiredError that says what became of their
    latest request if not."""
    if approval_in_force(session, actor=actor, case_id=case_id) is not None:
        return
    latest = latest_request(session, actor=actor, case_id=case_id)
    if latest is None:
        raise ApprovalRequiredError(APPROVAL_MISSING.format(id=case_id))
    if latest.status == ApprovalStatus.PENDING.value:
        raise ApprovalRequiredError(APPROVAL_PENDING.format(id=case_id))
    if latest.status == ApprovalStatus.REFUSED.value:
        raise ApprovalRequiredError(APPROVAL_REFUSED.format(id=case_id, by=latest.decided_by))
    if latest.status == ApprovalStatus.WITHDRAWN.value:
        raise ApprovalRequiredError(APPROVAL_WITHDRAWN.format(id=case_id, by=latest.withdrawn_by))
    expired = latest.expires_at or datetime.now(UTC)
    raise ApprovalRequiredError(
        APPROVAL_EXPIRED.format(id=case_id, at=expired.strftime("%Y-%m-%d %H:%M"))
    )


def reidentify(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    token: str,
    reason: str,
    context: dict[str, Any] | None = None,
    case_id: int | None = None,
) -> str:
    """The clear value behind ``token``, for a principal allowed to see it, audited.

    ``reason`` is the user's own words (kept with numbers masked); ``context`` (what the
    value is revealed for) goes into the audit record's detail beside it. ``case_id``: the
    case the value is revealed for, named in the audit record (so the case's history shows
    the look); the caller has checked that the case is about the value and that the
    principal may read it. Without one, ``settings.reidentify_requires_case`` (and
    ``settings.reidentify_needs_approval``) refuses; with
    ``settings.reidentify_needs_approval``, so does a case the principal holds no approval
    for (:func:`require_approval`). A refusal (the permission, the case, the approval, the
    reason, the daily limit, a token the vault does not hold) is audited too, and raised.
    """
    named = [f"token:{token}"] + ([f"case:{case_id}"] if case_id is not None else [])
    with refusal_audited(
        session, principal=principal, objects=named, reason=reason, context=context
    ):
        kept = _allowed(
            session,
            settings=settings,
            principal=principal,
            reason=reason,
            values=1,
            objects=named,
        )
        clear = Vault.of(settings).reveal(token)
    audit.record(
        session,
        actor=principal.name,
        action=REIDENTIFIED,
        objects=named,
        reason=kept,
        detail=context,
    )
    return clear
