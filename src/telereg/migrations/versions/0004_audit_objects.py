"""audit_objects: the audit log's object index (append-only), filled from the log's entries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:40:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Entries read and indexed at a time when an existing log is filled in.
_BATCH = 5_000

_SQLITE_GUARDS = [
    f"""CREATE TRIGGER audit_objects_no_{verb} BEFORE {verb.upper()} ON audit_objects
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"""
    for verb in ("update", "delete")
]
# The function audit_log_append_only() is the one revision 0001 made for the log itself.
_POSTGRES_GUARDS = [
    """CREATE TRIGGER audit_objects_append_only BEFORE UPDATE OR DELETE ON audit_objects
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_objects_no_truncate BEFORE TRUNCATE ON audit_objects
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]

_log = sa.table("audit_log", sa.column("id", sa.Integer()), sa.column("objects", sa.JSON()))
_index = sa.table("audit_objects", sa.column("object", sa.Text()), sa.column("entry_id"))


def _named(rows: Sequence[Any]) -> Iterator[dict[str, object]]:
    for row in rows:
        entry_id, objects = row.id, row.objects
        for obj in dict.fromkeys(objects or []):
            yield {"object": str(obj), "entry_id": entry_id}


def upgrade() -> None:
    op.create_table(
        "audit_objects",
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["audit_log.id"], name=op.f("fk_audit_objects_entry_id_audit_log")
        ),
        sa.PrimaryKeyConstraint("object", "entry_id", name=op.f("pk_audit_objects")),
    )
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_log.c.id, _log.c.objects)
            .where(_log.c.id > last)
            .order_by(_log.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        named = list(_named(rows))
        if named:
            bind.execute(_index.insert(), named)
        last = rows[-1][0]
    dialect = bind.dialect.name
    for statement in {"sqlite": _SQLITE_GUARDS, "postgresql": _POSTGRES_GUARDS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_objects_no_truncate ON audit_objects")
        op.execute("DROP TRIGGER IF EXISTS audit_objects_append_only ON audit_objects")
    op.drop_table("audit_objects")
