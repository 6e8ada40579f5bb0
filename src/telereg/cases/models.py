"""State of cases shared by every domain (site obstacles, fraud suspects, …)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telereg.core.db import Base, UtcDateTime, utcnow
from telereg.core.models import Agency, Operator


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    REFERRED = "referred"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = (CaseStatus.OPEN, CaseStatus.IN_REVIEW, CaseStatus.REFERRED, CaseStatus.RESOLVED)


class Case(Base):
    """One item of work: who it concerns, where it is in its workflow, who holds it."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value, index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"), default=None)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)
    subject: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: who is working on it now: a department the case was referred to, an agency …
    handler: Mapped[str] = mapped_column(String(200), default="")
    #: the id of what the case is about in its domain (an obstacle id, a number token …)
    reference: Mapped[str] = mapped_column(String(100), default="", index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    operator: Mapped[Operator | None] = relationship(lazy="joined")
    agency: Mapped[Agency | None] = relationship(lazy="joined")


class HandoverPackage(Base):
    """What a package of cases handed over to an agency holds, as the list of packages shows
    it. The package itself is kept encrypted (it may hold clear numbers); this record, which
    holds none, lets the list be read without opening every package."""

    __tablename__ = "handover_packages"
    __table_args__ = (UniqueConstraint("agency", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the agency's code, the folder the package is kept in
    agency: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    cases: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    clear_values: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the package's size as the agency receives it (decrypted), in bytes
    size: Mapped[int] = mapped_column(Integer)
    #: the SHA-256 of its ``manifest.json`` and its ``manifest.sig`` (hex): what recognises a
    #: copy brought back once the package itself is purged
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    signature: Mapped[str | None] = mapped_column(String(64), default=None)
    #: when its file was removed under the retention policy (``handover_retention_days``)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
