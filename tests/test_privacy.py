from __future__ import annotations

import re
import stat
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.db import session_scope
from telereg.core.errors import (
    ConfigurationError,
    InputError,
    LimitReachedError,
    NotFoundError,
    PermissionDeniedError,
)
from telereg.core.models import AuditEntry
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.privacy import (
    WRITTEN_NUMBER,
    IdentifierKind,
    Pseudonymiser,
    Sealer,
    Vault,
    mask,
    mask_digits,
    may_reidentify,
    private_duckdb,
    pseudonymise,
    reidentification_reason,
    reidentify,
)
from telereg.core.settings import Settings
from tests.conftest import principal_of_role

keys = st.binary(min_size=16, max_size=64)
identifiers = st.text(alphabet="0123456789", min_size=1, max_size=20)


@given(value=identifiers, key=keys)
def test_same_input_and_key_give_the_same_token(value: str, key: bytes) -> None:
    token = pseudonymise(value, key)
    assert token == pseudonymise(value, key)
    assert re.fullmatch(r"[0-9a-f]{32}", token)


@given(value=identifiers, key=keys, other=keys)
def test_another_key_gives_another_token(value: str, key: bytes, other: bytes) -> None:
    if key != other:
        assert pseudonymise(value, key) != pseudonymise(value, other)


@given(value=identifiers, other=identifiers, key=keys)
def test_different_values_give_different_tokens(value: str, other: str, key: bytes) -> None:
    if value != other:
        assert pseudonymise(value, key) != pseudonymise(other, key)


@given(value=st.text(alphabet="0123456789X", max_size=30))
def test_masks_never_show_more_than_first_3_and_last_4(value: str) -> None:
    masked = mask(value)
    assert len(masked) == len(value)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    n = len(value)
    assert all(i < 3 or i >= n - 4 for i in shown)
    if n < 11:
        assert len(shown) <= n // 2, "short values keep at least half hidden"
    for i in shown:
        assert masked[i] == value[i]


def test_mask_of_a_mobile_number() -> None:
    assert mask("13812341234") == "138****1234"
    assert mask("110101199003071234") == "110***********1234"


def test_identifiers_in_free_text_are_masked_where_they_stand() -> None:
    line = "13812341234,abc,11010119900307123X;1234567890;page=13800138000abc"
    assert mask_digits(line) == (
        "138****1234,abc,110***********123X;1234567890;page=138****8000abc"
    ), "runs of 11 digits or more (and an ID's final X) are masked; shorter ones are kept"


#: A mobile number as people write it, in groups split otherwise than by single spaces,
#: hyphens or brackets.
WRITTEN_FORMS = (
    "138.1234.5678",
    "138/1234/5678",
    "138_1234_5678",
    "138—1234—5678",
    "138‐1234‒5678",
    "138―1234–5678",
    "138 - 1234 - 5678",
    "138  1234  5678",
    "138 / 1234 / 5678",
    "１３８．１２３４．５６７８",
    "１３８／１２３４＿５６７８",
)


@pytest.mark.parametrize("written", WRITTEN_FORMS)
def test_a_number_written_in_groups_is_masked_in_python_and_in_the_engine(written: str) -> None:
    line = f"联系人 {written} 张三"
    masked_here = mask_digits(line)
    masked_there = duckdb.execute(
        "SELECT regexp_replace(?, ?, '\\1****\\2', 'g')", [line, WRITTEN_NUMBER]
    ).fetchone()
    assert masked_there is not None
    for masked in (masked_here, masked_there[0]):
        assert masked.startswith("联系人 "), masked
        assert masked.endswith(" 张三"), masked
        shown = re.sub(r"\D", "", unicodedata.normalize("NFKC", masked))
        assert shown == "1385678", f"only the first 3 and last 4 digits are shown: {masked}"


def test_vault_round_trip(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault", b"k" * 32)
    clear = ["13812341234", "13900001111"]
    pairs = pa.table({"token": [pseudonymise(v, b"p" * 32) for v in clear], "clear": clear})
    assert vault.store(pairs, IdentifierKind.PHONE) == 2
    assert vault.store(pairs, IdentifierKind.PHONE) == 0, "storing twice adds nothing"
    more = pa.table({"token": [pseudonymise("13700000000", b"p" * 32)], "clear": ["13700000000"]})
    assert vault.store(more, IdentifierKind.PHONE) == 1
    for token, value in zip(pairs["token"].to_pylist(), clear, strict=True):
        assert vault.reveal(token) == value
    assert vault.reveal(more["token"][0].as_py()) == "13700000000"
    for path in (tmp_path / "vault").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"1381234" not in data
            assert b"13900001111" not in data
    with pytest.raises(NotFoundError):
        vault.reveal("00" * 16)
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        Vault(tmp_path / "vault", b"j" * 32).reveal(pairs["token"][0].as_py())


def test_the_vault_spills_into_its_own_directory_never_the_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    working = tmp_path / "cwd"
    working.mkdir()
    monkeypatch.chdir(working)
    vault = Vault(tmp_path / "vault", b"k" * 32)
    pairs = pa.table({"token": [pseudonymise("13812341234", b"p" * 32)], "clear": ["13812341234"]})
    assert vault.store(pairs, IdentifierKind.PHONE) == 1
    assert vault.reveal(pairs["token"][0].as_py()) == "13812341234"
    spill = tmp_path / "vault" / ".spill"
    assert stat.S_IMODE(spill.stat().st_mode) == 0o700, "only the vault's user reads a spill"
    assert list(spill.iterdir()) == [], "a spill goes with its connection"
    # Clear values that outgrow the engine's memory are spilled there, not to ./.tmp.
    with private_duckdb(spill) as con:
        con.execute("SET memory_limit = '16MB'")
        con.execute("SET threads = 1")
        con.execute("CREATE TEMP TABLE t AS SELECT '13812341234' clear, i FROM range(999999) r(i)")
        assert list(spill.rglob("*.tmp")), "the table outgrew memory"
    assert list(spill.iterdir()) == []
    assert list(working.iterdir()) == []


@given(value=st.binary(max_size=200), label=st.text(max_size=40))
def test_sealing_round_trip(value: bytes, label: str) -> None:
    sealer = Sealer(b"x" * 32)
    assert sealer.open(label, sealer.seal(label, value)) == value


def test_a_ciphertext_moved_to_another_token_does_not_open() -> None:
    sealer = Sealer(b"k" * 32)
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        sealer.open("bbbb", sealer.seal("aaaa", b"13812341234"))


def test_another_vault_key_cannot_open() -> None:
    sealed = Sealer(b"k" * 32).seal("aaaa", b"13812341234")
    with pytest.raises(ConfigurationError):
        Sealer(b"j" * 32).open("aaaa", sealed)


def _stored(settings: Settings, value: str) -> str:
    """The token of ``value``, stored in the vault as an ingest stores it."""
    token = pseudonymise(value, settings.secret("pseudonym_key"))
    pairs = pa.table({"token": [token], "clear": [value]})
    Vault.of(settings).store(pairs, IdentifierKind.PHONE)
    return token


def _entries(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_reidentify_needs_permission_reason_and_is_audited(
    session: Session, db_settings: Settings
) -> None:
    token = _stored(db_settings, "13812341234")
    analyst = principal_of_role(Role.ANALYST)
    viewer = principal_of_role(Role.VIEWER)
    with pytest.raises(PermissionDeniedError):
        reidentify(
            session, settings=db_settings, principal=viewer, token=token, reason="curious about it"
        )
    for says_nothing in ("  ", "test", "测试"):
        with pytest.raises(InputError, match="reason"):
            reidentify(
                session, settings=db_settings, principal=analyst, token=token, reason=says_nothing
            )
    with pytest.raises(NotFoundError):
        reidentify(
            session,
            settings=db_settings,
            principal=analyst,
            token="00" * 16,
            reason="police case 42",
        )
    assert _entries(session, "privacy.reidentify") == []
    refused = _entries(session, "privacy.reidentify_refused")
    assert [(e.actor, e.detail["refused"]) for e in refused] == [
        (viewer.name, "forbidden"),
        (analyst.name, "invalid-input"),
        (analyst.name, "invalid-input"),
        (analyst.name, "invalid-input"),
        (analyst.name, "not-found"),
    ], "every refused look is audited: who, and why"
    assert refused[0].objects == [f"token:{token}"]
    assert refused[0].reason == "curious about it"
    assert refused[-1].objects == [f"token:{'00' * 16}"]
    assert "no vault entry" in refused[-1].detail["why"]
    value = reidentify(
        session,
        settings=db_settings,
        principal=analyst,
        token=token,
        reason="police case 2021-17",
    )
    assert value == "13812341234"
    (entry,) = _entries(session, "privacy.reidentify")
    assert entry.actor == analyst.name
    assert entry.reason == "police case 2021-17"
    assert entry.objects == [f"token:{token}"]
    # Four Chinese characters are a reason (they say as much as a short English phrase).
    assert reidentify(
        session, settings=db_settings, principal=analyst, token=token, reason="案件核查"
    )


@pytest.mark.parametrize(
    "reason",
    [
        "aaaaa",
        "test1",
        ".....",
        "测试测",
        "asdf",
        "Test test TEST",
        "测试一下",
        "12345678901",
        "ab",
    ],
)
def test_a_reason_that_says_nothing_is_refused(reason: str) -> None:
    with pytest.raises(InputError, match=r"at least 6 different letters \(3 different Chinese"):
        reidentification_reason(reason)


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("案件核查", "案件核查"),
        ("  police case 12 ", "police case 12"),
        ("测试 of the fraud line", "测试 of the fraud line"),
        ("victim called from 13812345678", "victim called from 138****5678"),
    ],
)
def test_a_reason_that_says_why_is_kept_with_numbers_masked(reason: str, kept: str) -> None:
    assert reidentification_reason(reason) == kept


def test_a_refusal_is_kept_though_its_transaction_is_rolled_back(db_settings: Settings) -> None:
    token = _stored(db_settings, "13812341234")
    viewer = principal_of_role(Role.VIEWER)

    def refused_in_a_transaction_that_fails() -> None:
        with session_scope(db_settings) as session:
            audit.record(session, actor="someone", action="x.rolled_back")
            reidentify(
                session,
                settings=db_settings,
                principal=viewer,
                token=token,
                reason="curious about it",
            )

    with pytest.raises(PermissionDeniedError):
        refused_in_a_transaction_that_fails()
    with session_scope(db_settings) as session:
        # A savepoint rolled back (a web form's step) keeps it too, once.
        with pytest.raises(InputError), session.begin_nested():
            reidentify(
                session,
                settings=db_settings,
                principal=principal_of_role(Role.ANALYST),
                token=token,
                reason="aaaaa",
            )
        audit.record(session, actor="someone", action="x.committed")
    with session_scope(db_settings) as session:
        assert _entries(session, "x.rolled_back") == [], "what failed is rolled back"
        assert len(_entries(session, "x.committed")) == 1
        kept = _entries(session, "privacy.reidentify_refused")
        assert [e.detail["refused"] for e in kept] == ["forbidden", "invalid-input"]
        assert kept[1].reason == "aaaaa"


def test_reveals_beyond_the_daily_limit_are_refused_and_audited(db_settings: Settings) -> None:
    limited = db_settings.model_copy(update={"reidentify_daily_limit": 3})
    token = _stored(limited, "13812341234")
    analyst = principal_of_role(Role.ANALYST)

    def reveal(principal: Principal = analyst) -> str:
        return reidentify(
            session, settings=limited, principal=principal, token=token, reason="police case 12"
        )

    with session_scope(limited) as session:
        # A reveal of two days ago no longer counts.
        session.add(
            AuditEntry(
                at=datetime.now(UTC) - timedelta(days=2),
                actor=analyst.name,
                action="privacy.reidentify",
                objects=[f"token:{token}"],
            )
        )
        for _ in range(3):
            assert reveal() == "13812341234"
        with pytest.raises(LimitReachedError, match="3 clear values revealed in the last 24 hours"):
            reveal()
        other = Principal(name="another-analyst", role=Role.ANALYST, user_id=None)
        assert reveal(other) == "13812341234", "the limit is each user's own"
    with session_scope(limited) as session:
        assert len(_entries(session, "privacy.reidentify")) == 5
        (refused,) = _entries(session, "privacy.reidentify_refused")
        assert (refused.actor, refused.detail["refused"]) == (analyst.name, "limit-reached")
        assert may_reidentify(
            session, settings=limited, principal=other, reason="police case 12", values=2
        )
        with pytest.raises(LimitReachedError, match="3 more asked"):
            may_reidentify(
                session, settings=limited, principal=other, reason="police case 12", values=3
            )


def test_reveals_at_the_same_moment_never_pass_the_daily_limit_together(
    db_settings: Settings,
) -> None:
    """Each reveal counts the user's reveals of the day, then reveals: without taking turns,
    reveals at once would all count the same past and all pass."""
    import threading

    limit = 5
    limited = db_settings.model_copy(update={"reidentify_daily_limit": limit})
    tokens = [_stored(limited, f"1381234{n:04d}") for n in range(3)]
    analyst = principal_of_role(Role.ANALYST)
    attempts = 12
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def reveal(n: int) -> None:
        try:
            with session_scope(limited) as session:
                start.wait()
                if n % 3 == 0:  # as a hand-over does: two values checked at once, then revealed
                    may_reidentify(
                        session,
                        settings=limited,
                        principal=analyst,
                        reason="police case 12",
                        values=2,
                    )
                    for token in tokens[:2]:
                        reidentify(
                            session,
                            settings=limited,
                            principal=analyst,
                            token=token,
                            reason="police case 12",
                        )
                    outcomes.append("two")
                else:
                    reidentify(
                        session,
                        settings=limited,
                        principal=analyst,
                        token=tokens[n % 3],
                        reason="police case 12",
                    )
                    outcomes.append("one")
        except LimitReachedError:
            outcomes.append("refused")
        except Exception as err:  # noqa: BLE001 - any other failure fails the test below
            outcomes.append(repr(err))

    threads = [threading.Thread(target=reveal, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(outcomes) <= {"one", "two", "refused"}, outcomes
    revealed = outcomes.count("one") + 2 * outcomes.count("two")
    assert limit - 1 <= revealed <= limit, outcomes
    with session_scope(limited) as session:
        assert len(_entries(session, "privacy.reidentify")) == revealed, "as the log counts"
        refused = _entries(session, "privacy.reidentify_refused")
        assert len(refused) == outcomes.count("refused")
        assert {r.detail["refused"] for r in refused} == {"limit-reached"}


@given(values=st.lists(st.text(max_size=30), max_size=20), key=st.binary(min_size=1, max_size=100))
def test_batch_pseudonymiser_gives_the_same_tokens(values: list[str], key: bytes) -> None:
    assert Pseudonymiser(key).tokens(values) == [pseudonymise(v, key) for v in values]
