"""Shared fixtures: settings in a temporary data dir, state DBs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from telereg.app import create_app
from telereg.core import accounts
from telereg.core.db import dispose_engines, session_factory, session_scope
from telereg.core.permissions import Role
from telereg.core.principal import Principal, cli_principal
from telereg.core.settings import Settings, load_settings
from telereg.scenario.demo import prepare
from telereg.system.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "TELEREG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ROOT = cli_principal("pytest")
PASSWORD = "correct horse battery staple"


def _postgres_reason() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # noqa: BLE001 - any failure means "no server here"
        return f"no PostgreSQL server answers at {PG_ADMIN_URL}: {err.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    return _postgres_reason()


@pytest.fixture
def pg_database(postgres_available: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if postgres_available:
        pytest.skip(postgres_available)
    name = f"telereg_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Embedded defaults in a temporary data dir (SQLite state DB, DuckDB engine)."""
    yield load_settings(data_dir=tmp_path / "var")
    dispose_engines()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings with a migrated state DB, once on SQLite and once on PostgreSQL."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
    settings = load_settings(data_dir=tmp_path / "var", database_url=url)
    upgrade(settings)
    yield settings
    dispose_engines()


@pytest.fixture
def session(db_settings: Settings) -> Iterator[Session]:
    with session_scope(db_settings) as s:
        yield s


@dataclass
class Site:
    """A running app with a user per role and an API token for each."""

    settings: Settings
    client: TestClient
    tokens: dict[str, str]
    admin_password: str

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def login(self, client: TestClient, username: str, password: str) -> None:
        page = client.get("/login")
        csrf = csrf_of(page.text)
        response = client.post(
            "/login", data={"username": username, "password": password, "csrf_token": csrf}
        )
        assert response.status_code == 200, response.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


ROLE_USERS = {
    Role.ADMIN: ("ada", {}),
    Role.ANALYST: ("ann", {}),
    Role.OPERATOR: ("olu", {"operator": "CMCC"}),
    Role.LIAISON: ("lee", {"agency": "POLICE-AF"}),
    Role.VIEWER: ("vic", {}),
}


def make_site(settings: Settings) -> Site:
    login = prepare(settings, principal=ROOT)
    tokens: dict[str, str] = {}
    with session_scope(settings) as s:
        for role, (name, binding) in ROLE_USERS.items():
            accounts.create_user(
                s, principal=ROOT, username=name, role=role, password=PASSWORD, **binding
            )
            tokens[role.value] = accounts.issue_token(s, principal=ROOT, username=name).token
    client = TestClient(create_app(settings), follow_redirects=True)
    return Site(settings=settings, client=client, tokens=tokens, admin_password=login.password)


@pytest.fixture
def site(settings: Settings) -> Site:
    return make_site(settings)


def principal_of_role(role: Role, **binding: str) -> Principal:
    return Principal(name=f"test-{role.value}", role=role, user_id=None, **binding)


@pytest.fixture
def db_session_factory(db_settings: Settings):
    return session_factory(db_settings)


def handed_over(settings: Settings, *domains: str, agency: str = "POLICE-AF"):
    """A hand-over package to ``agency`` of a case in review for each of ``domains``
    (lookalike domains: no lake data is needed), made by the tests' CLI principal in a
    prepared installation (:func:`telereg.scenario.demo.prepare`)."""
    from telereg.cases import service as cases
    from telereg.domains.fraud import casework, handover

    with session_scope(settings) as s:
        new = [
            cases.NewCase(f"domain:{d}", "lookalike domain", {"type": "domain", "domain": d})
            for d in domains
        ]
        ids = [
            c.id for c in cases.open_cases(s, principal=ROOT, workflow=casework.WORKFLOW, new=new)
        ]
        casework.move_cases(s, principal=ROOT, case_ids=ids, to="in_review", note="to hand over")
        return handover.export(
            s, settings=settings, principal=ROOT, case_ids=ids, agency_code=agency, note="for you"
        )
