"""Users and their API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from telereg.api.deps import Authenticated, RowId, SessionDep, require
from telereg.api.schemas import (
    ReasonIn,
    TokenIn,
    TokenIssued,
    TokenOut,
    UserCreated,
    UserIn,
    UserOut,
)
from telereg.core import accounts
from telereg.core.permissions import Permission
from telereg.core.principal import Principal

router = APIRouter(tags=["users"])


@router.get("/users", summary="List users")
def list_users(
    session: SessionDep, principal: Annotated[Principal, require(Permission.USERS_READ)]
) -> list[UserOut]:
    return [UserOut.of(u) for u in accounts.list_users(session, principal=principal)]


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(
    body: UserIn,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
) -> UserCreated:
    user, generated = accounts.create_user(
        session,
        principal=principal,
        username=body.username,
        role=body.role,
        password=body.password,
        operator=body.operator,
        agency=body.agency,
        display_name=body.display_name,
    )
    return UserCreated(user=UserOut.of(user), password=generated)


@router.post("/users/{username}/disable", summary="Disable a user and revoke its tokens")
def disable_user(
    username: str,
    body: ReasonIn,
    session: SessionDep,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
) -> UserOut:
    return UserOut.of(
        accounts.disable_user(session, principal=principal, username=username, reason=body.reason)
    )


@router.get("/users/{username}/tokens", summary="List a user's API tokens (never the tokens)")
def list_tokens(username: str, session: SessionDep, principal: Authenticated) -> list[TokenOut]:
    return [
        TokenOut.of(t)
        for t in accounts.list_tokens(session, principal=principal, username=username)
    ]


@router.post(
    "/users/{username}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API token (shown once)",
)
def issue_token(
    username: str, body: TokenIn, session: SessionDep, principal: Authenticated
) -> TokenIssued:
    issued = accounts.issue_token(
        session,
        principal=principal,
        username=username,
        label=body.label,
        valid_days=body.valid_days,
    )
    return TokenIssued(
        id=issued.id, username=issued.username, prefix=issued.prefix, token=issued.token
    )


@router.delete("/tokens/{token_id}", summary="Revoke an API token")
def revoke_token(token_id: RowId, session: SessionDep, principal: Authenticated) -> TokenOut:
    return TokenOut.of(accounts.revoke_token(session, principal=principal, token_id=token_id))
