"""State of ingest: one row per submitted file."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telereg.core.db import Base, UtcDateTime, utcnow
from telereg.core.models import Operator


class SubmissionStatus(StrEnum):
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"


class Submission(Base):
    """A file an operator sent for one dataset and period, and what became of it."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_slot", "dataset", "operator_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    period: Mapped[str] = mapped_column(String(7))
    filename: Mapped[str] = mapped_column(String(255))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str] = mapped_column(String(16))
    encoding: Mapped[str] = mapped_column(String(16), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    message: Mapped[str] = mapped_column(String(1000), default="")
    errors_by_reason: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: names the submission's files in the lake (accepted, quarantine, errors)
    file_id: Mapped[str] = mapped_column(String(32), default="")
    #: accepted rows, relative to the lake dir; empty when nothing was accepted
    lake_path: Mapped[str] = mapped_column(String(500), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    current: Mapped[bool] = mapped_column(default=False)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), default=None)
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)

    operator: Mapped[Operator] = relationship(lazy="joined")
