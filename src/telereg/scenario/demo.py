"""Prepare a demo installation: migrated state DB, directory, an admin login."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from telereg.core import accounts
from telereg.core.db import session_scope
from telereg.core.models import User
from telereg.core.permissions import Role
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.reference.directory import add_standard_agencies, add_standard_operators
from telereg.system.migrate import upgrade

DEMO_ADMIN = "admin"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str


def seed_directory(session: Session, *, principal: Principal) -> int:
    """Add the standard operators and agencies that are missing; returns how many were added."""
    operators = add_standard_operators(session, principal=principal)
    return len(operators) + len(add_standard_agencies(session, principal=principal))


def prepare(settings: Settings, *, principal: Principal) -> DemoLogin:
    """Migrate, seed the directory and (re)issue the admin's one-time password."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings)
    with session_scope(settings) as session:
        seed_directory(session, principal=principal)
        session.flush()
        if session.scalar(select(User.id).where(User.username == DEMO_ADMIN)) is None:
            _, password = accounts.create_user(
                session,
                principal=principal,
                username=DEMO_ADMIN,
                role=Role.ADMIN,
                display_name="Demo administrator",
            )
        else:
            password = accounts.set_password(session, principal=principal, username=DEMO_ADMIN)
    assert password is not None  # both calls generate one when none is given
    return DemoLogin(username=DEMO_ADMIN, password=password)
