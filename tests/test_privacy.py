from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core.errors import (
    ConfigurationError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from telereg.core.models import AuditEntry
from telereg.core.permissions import Role
from telereg.core.privacy import (
    IdentifierKind,
    Pseudonymiser,
    Sealer,
    Vault,
    mask,
    mask_digits,
    pseudonymise,
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


def test_reidentify_needs_permission_reason_and_is_audited(
    session: Session, db_settings: Settings
) -> None:
    vault = Vault.of(db_settings)
    token = pseudonymise("13812341234", db_settings.secret("pseudonym_key"))
    vault.store(pa.table({"token": [token], "clear": ["13812341234"]}), IdentifierKind.PHONE)
    analyst = principal_of_role(Role.ANALYST)
    with pytest.raises(PermissionDeniedError):
        reidentify(
            session,
            principal=principal_of_role(Role.VIEWER),
            vault=vault,
            token=token,
            reason="curious about it",
        )
    for too_short in ("  ", "test", "测试"):
        with pytest.raises(InputError, match="reason"):
            reidentify(session, principal=analyst, vault=vault, token=token, reason=too_short)
    with pytest.raises(NotFoundError):
        reidentify(session, principal=analyst, vault=vault, token="00" * 16, reason="case 42")
    assert session.scalars(select(AuditEntry)).all() == []
    value = reidentify(
        session, principal=analyst, vault=vault, token=token, reason="police case 2021-17"
    )
    assert value == "13812341234"
    entry = session.scalars(select(AuditEntry)).one()
    assert entry.action == "privacy.reidentify"
    assert entry.actor == analyst.name
    assert entry.reason == "police case 2021-17"
    assert entry.objects == [f"token:{token}"]
    # Four Chinese characters are a reason (they say as much as a short English phrase).
    assert reidentify(session, principal=analyst, vault=vault, token=token, reason="案件核查")


@given(values=st.lists(st.text(max_size=30), max_size=20), key=st.binary(min_size=1, max_size=100))
def test_batch_pseudonymiser_gives_the_same_tokens(values: list[str], key: bytes) -> None:
    assert Pseudonymiser(key).tokens(values) == [pseudonymise(v, key) for v in values]
