"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from telereg.core.accounts import MAX_TOKEN_DAYS
from telereg.core.jobs import JobStatus
from telereg.core.models import ApiToken, User
from telereg.core.permissions import Role


class UserOut(BaseModel):
    username: str
    display_name: str
    role: Role
    operator: str | None
    agency: str | None
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            operator=user.operator.code if user.operator else None,
            agency=user.agency.code if user.agency else None,
            active=user.active,
            locked_until=user.locked_until,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64)
    role: Role
    display_name: str = Field("", max_length=200)
    operator: str | None = None
    agency: str | None = None
    password: str | None = Field(None, min_length=10, max_length=200)


class UserCreated(BaseModel):
    user: UserOut
    password: str | None = Field(None, description="Generated password, shown only once.")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field("", max_length=100)
    valid_days: int | None = Field(None, ge=1, le=MAX_TOKEN_DAYS)


class TokenOut(BaseModel):
    id: int
    label: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            label=token.label,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class TokenIssued(BaseModel):
    id: int
    username: str
    prefix: str
    token: str = Field(description="The token itself: shown once, store it now.")


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    reason: str
    objects: list[str]
    detail: dict[str, Any]
    client: str


class AuditPage(BaseModel):
    total: int
    entries: list[AuditEntryOut]


class ReidentifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # (its form is checked by the route, which says what a re-identifiable token is)
    token: str = Field(max_length=64, description="A lake token: 32 hexadecimal characters.")
    # (what it must say is the service's to judge: core.privacy.reidentification_reason)
    reason: str = Field(max_length=1000)
    case_id: int | None = Field(
        default=None,
        ge=1,
        description="The case the value is revealed for: one that names the token. Required "
        "when the installation ties every re-identification to a case.",
    )


class ReidentifyOut(BaseModel):
    token: str
    value: str


class ApprovalRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: int = Field(ge=1, description="The case whose values are to be re-identified.")
    # (what it must say is the service's to judge, as for a reveal)
    reason: str = Field(max_length=1000)


class ApprovalDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "refused"]
    note: str = Field(max_length=1000, description="Why, for the requester (required).")


class ApprovalWithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(max_length=1000, description="Why it is withdrawn (required).")


class ApprovalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    requested_by: str
    reason: str
    requested_at: datetime
    status: str = Field(description="pending, approved, refused or withdrawn")
    decided_by: str
    decided_at: datetime | None
    note: str
    expires_at: datetime | None
    withdrawn_by: str
    withdrawn_at: datetime | None
    in_force: bool = Field(
        default=False, description="Whether it lets its requester reveal the case's values now."
    )


class DirectoryEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    name_en: str


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    name: str
    name_en: str = ""


class AgencyIn(OperatorIn):
    kind: str = "other"


class MeOut(BaseModel):
    username: str
    role: Role
    operator: str | None
    agency: str | None
    permissions: list[str]


class JobOut(BaseModel):
    """A job: long work that runs in its own process (``GET /api/v1/jobs/{id}`` to follow it)."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str = Field(
        description="queued, running, succeeded, failed, interrupted or cancelled",
        json_schema_extra={"enum": [s.value for s in JobStatus]},
    )
    stage: str = Field(description="The step the work began last; where a failed job stopped")
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    seconds: float | None = Field(description="Running time so far, or in all once finished")
    message: str = Field(description="Why it failed or was interrupted")
    result: dict[str, Any] = Field(description="What the work returned, once it succeeded")
