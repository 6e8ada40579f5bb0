"""Apply the Alembic migrations of the state DB (``telereg db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from telereg import __version__
from telereg.core.db import state_engine
from telereg.core.errors import ConfigurationError
from telereg.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(settings: Settings, revision: str = "head") -> str:
    """Migrate the state DB to ``revision``; returns the revision it is at afterwards.

    A DB at a revision this telereg does not know (a newer telereg migrated it, and this
    one is older: a rollback, or two versions sharing one DB) is refused with what to do.
    """
    config = alembic_config()
    at = current_revision(settings)
    if at is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(at)
        except CommandError as err:
            raise _newer(at) from err
    with state_engine(settings).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(settings) or ""


def _newer(at: str) -> ConfigurationError:
    return ConfigurationError(
        f"the state DB is at revision {at}, which this telereg ({__version__}, revisions up "
        f"to {head_revision()}) does not know: a newer telereg has upgraded it. Run that "
        "version, or restore the DB from the backup taken before the upgrade",
        where="state DB",
    )


def current_revision(settings: Settings) -> str | None:
    with state_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return head or ""


def autogenerate(settings: Settings, message: str) -> None:
    """Write a new revision from the difference between the models and the DB (developers)."""
    config = alembic_config()
    with state_engine(settings).begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
