"""Pseudonymisation, display masking, the identity vault and re-identification.

Personal identifiers (phone numbers, IMSI, IMEI, ID-card numbers) are replaced
at ingest by keyed tokens, HMAC-SHA256 truncated to 128 bits, so analyses join
on tokens without seeing the clear value. The clear value is kept only in the
vault, encrypted with AES-GCM and bound to its token; reading it back needs a
permission and a reason and leaves an audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from telereg.core import audit
from telereg.core.errors import ConfigurationError, InputError, NotFoundError
from telereg.core.models import VaultEntry
from telereg.core.permissions import Permission
from telereg.core.principal import Principal

TOKEN_HEX_CHARS = 32
_NONCE_BYTES = 12
_MIN_REASON_CHARS = 5


class IdentifierKind(StrEnum):
    PHONE = "phone"
    IMSI = "imsi"
    IMEI = "imei"
    ID_NUMBER = "id_number"


def pseudonymise(value: str, key: bytes) -> str:
    """The token of ``value`` under ``key``: 32 lowercase hex characters."""
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_HEX_CHARS]


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


class Sealer:
    """AES-GCM encryption of a clear identifier, bound to its token as associated data.

    A ciphertext copied onto another token's row does not decrypt.
    """

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ConfigurationError("the vault key is empty", where="settings")
        self._aead = AESGCM(hashlib.sha256(b"telereg-vault\0" + key).digest())

    def seal(self, token: str, clear: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, clear.encode(), token.encode())

    def open(self, token: str, sealed: bytes) -> str:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, token.encode()).decode()
        except InvalidTag as err:
            raise ConfigurationError(
                f"vault entry {token} does not decrypt with the configured vault key"
            ) from err


class Vault:
    """Encrypted store of clear identifiers keyed by their pseudonym token."""

    def __init__(self, session: Session, key: bytes) -> None:
        self._session = session
        self._sealer = Sealer(key)

    def store(self, items: dict[str, str], kind: IdentifierKind) -> int:
        """Store token → clear pairs not yet in the vault; returns how many were new."""
        if not items:
            return 0
        rows = [
            {"token": token, "kind": kind.value, "ciphertext": self._sealer.seal(token, clear)}
            for token, clear in items.items()
        ]
        dialect = self._session.get_bind().dialect.name
        if dialect not in {"postgresql", "sqlite"}:
            existing = set(
                self._session.scalars(select(VaultEntry.token).where(VaultEntry.token.in_(items)))
            )
            fresh = [VaultEntry(**row) for row in rows if row["token"] not in existing]
            self._session.add_all(fresh)
            return len(fresh)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(VaultEntry)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["token"])
            .returning(VaultEntry.token)
        )
        return len(self._session.execute(statement).all())

    def reveal(self, token: str) -> str:
        entry = self._session.get(VaultEntry, token)
        if entry is None:
            raise NotFoundError(f"no vault entry for token {token}")
        return self._sealer.open(token, entry.ciphertext)


def reidentify(
    session: Session,
    *,
    principal: Principal,
    vault_key: bytes,
    token: str,
    reason: str,
) -> str:
    """The clear value behind ``token``, for a principal allowed to see it, audited."""
    principal.require(Permission.PRIVACY_REIDENTIFY)
    if len(reason.strip()) < _MIN_REASON_CHARS:
        raise InputError(
            f"a reason of at least {_MIN_REASON_CHARS} characters is required to re-identify"
        )
    clear = Vault(session, vault_key).reveal(token)
    audit.record(
        session,
        actor=principal.name,
        action="privacy.reidentify",
        objects=[f"token:{token}"],
        reason=reason.strip(),
    )
    return clear
