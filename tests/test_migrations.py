from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Engine, column, func, inspect, table, text

from telereg.core import audit
from telereg.core.db import session_scope, state_engine
from telereg.core.settings import Settings
from telereg.system.migrate import alembic_config, current_revision, head_revision, upgrade
from telereg.system.models import Base


def test_upgrade_reaches_head_and_is_idempotent(db_settings: Settings) -> None:
    assert current_revision(db_settings) == head_revision()
    assert upgrade(db_settings) == head_revision()


def test_models_match_the_migrations(db_settings: Settings) -> None:
    with state_engine(db_settings).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def _downgrade(settings: Settings, revision: str) -> Engine:
    engine = state_engine(settings)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        downgrade(config, revision)
    return engine


def test_downgrade_to_base_and_back(db_settings: Settings) -> None:
    engine = _downgrade(db_settings, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(db_settings)
    assert {"users", "audit_log", "api_tokens", "submissions", "cases"} <= set(
        inspect(engine).get_table_names()
    )


def test_an_installation_at_the_first_revision_is_brought_forward(db_settings: Settings) -> None:
    # A state DB made before the login limits: its users keep their rows and get epoch 0.
    engine = _downgrade(db_settings, "0001")
    assert "login_failures" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, display_name, role, active, failed_logins, lockouts,"
                " created_at)"
                " VALUES ('old', 'Old', 'viewer', true, 0, 0, CURRENT_TIMESTAMP)"
            )
        )
    assert upgrade(db_settings) == head_revision()
    with engine.connect() as connection:
        epoch = connection.execute(
            text("SELECT session_epoch FROM users WHERE username = 'old'")
        ).scalar_one()
    assert epoch == 0
    assert "login_failures" in inspect(engine).get_table_names()


def test_an_existing_audit_log_is_indexed_by_object(db_settings: Settings) -> None:
    # A log written before the object index: its entries are found by object afterwards.
    engine = _downgrade(db_settings, "0003")
    assert "audit_objects" not in inspect(engine).get_table_names()
    log = table(
        "audit_log",
        *(column(name) for name in ("at", "actor", "action", "reason", "detail", "client")),
        column("objects", JSON()),
    )
    fields = {"actor": "ann", "action": "cases.x", "reason": "", "detail": "{}", "client": ""}
    with engine.begin() as connection:
        for objects in (["case:4", "agency:AF"], ["case:40"], [], ["case:4", "case:4"]):
            connection.execute(
                log.insert().values(at=func.current_timestamp(), objects=objects, **fields)
            )
    assert upgrade(db_settings) == head_revision()
    with session_scope(db_settings) as session:
        assert [e.objects for e in audit.about(session, "case:4")] == [
            ["case:4", "agency:AF"],
            ["case:4", "case:4"],
        ]
        assert [e.objects for e in audit.about(session, "agency:AF")] == [["case:4", "agency:AF"]]
        assert audit.about(session, "case:400") == []


def test_hand_over_packages_kept_before_their_records_are_still_listed(
    db_settings: Settings,
) -> None:
    # The table is made empty: packages kept before it are listed as they were, read from
    # the packages themselves; those made after it from their records.
    from telereg.cases.models import HandoverPackage
    from telereg.domains.fraud import handover
    from telereg.scenario.demo import prepare
    from tests.conftest import ROOT, handed_over

    prepare(db_settings, principal=ROOT)
    first = handed_over(db_settings, "first.example")
    second = handed_over(db_settings, "second.example", "third.example")
    with session_scope(db_settings) as session:
        listed = handover.packages(session, db_settings, principal=ROOT)
    assert {p["name"] for p in listed} == {first.path.name, second.path.name}
    engine = _downgrade(db_settings, "0004")
    assert "handover_packages" not in inspect(engine).get_table_names()
    assert upgrade(db_settings) == head_revision()
    with session_scope(db_settings) as session:
        assert session.query(HandoverPackage).count() == 0
        assert handover.packages(session, db_settings, principal=ROOT) == listed


def test_a_purge_outlives_a_downgrade_and_upgrade_of_its_revision(db_settings: Settings) -> None:
    # Revision 0007 adds when a package was purged and its manifest's facts; going back to
    # 0006 drops them and keeps the records, going forward again adds them empty.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from telereg.cases.models import HandoverPackage
    from telereg.domains.fraud import handover, retention
    from telereg.scenario.demo import prepare
    from tests.conftest import ROOT, handed_over

    prepare(db_settings, principal=ROOT)
    made = handed_over(db_settings, "purged.example")
    with session_scope(db_settings) as session:
        session.execute(
            update(HandoverPackage).values(created_at=datetime.now(UTC) - timedelta(days=400))
        )
        (case,) = made.manifest["cases"]
        handover.record_disposal(
            session, principal=ROOT, case_id=case, disposal="no_action", note="done"
        )
    assert [p.name for p in retention.purge(db_settings, principal=ROOT).purged] == [made.path.name]
    engine = _downgrade(db_settings, "0006")
    columns = {c["name"] for c in inspect(engine).get_columns("handover_packages")}
    assert not columns & {"purged_at", "manifest_sha256", "signature"}
    assert upgrade(db_settings) == head_revision()
    with session_scope(db_settings) as session:
        (record,) = session.query(HandoverPackage).all()
        assert (record.name, record.cases, record.purged_at) == (made.path.name, [case], None)
