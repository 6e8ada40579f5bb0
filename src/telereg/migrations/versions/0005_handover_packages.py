"""handover_packages: what each kept hand-over package holds, recorded from the packages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00

The list of packages read every package (decrypting it) to name its cases; it reads this
table now. Packages already kept are recorded here once, each opened with the vault key
(a package that cannot be read is left out: the list reads it itself, as before).
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_packages = sa.table(
    "handover_packages",
    sa.column("agency", sa.String()),
    sa.column("name", sa.String()),
    sa.column("cases", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("created_by", sa.String()),
    sa.column("clear_values", sa.Boolean()),
    sa.column("size", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "handover_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("cases", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("clear_values", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_packages")),
        sa.UniqueConstraint("agency", "name", name=op.f("uq_handover_packages_agency")),
    )
    config = op.get_context().config
    settings = config.attributes.get("settings") if config is not None else None
    if settings is None:
        log.warning("no settings given: kept hand-over packages were not recorded")
        return
    # The one reader of every kind of kept package (encrypted or, from before, plain).
    from telereg.domains.fraud import handover

    root = settings.data_dir / "handovers"
    found = [
        handover.read_kept(settings, path)
        for folder in (sorted(root.iterdir()) if root.is_dir() else [])
        for path in sorted(folder.glob("handover-*.zip"))
        if handover.is_package_name(folder.name, path.name)
    ]
    rows = [
        {
            "agency": kept.agency,
            "name": kept.name,
            "cases": kept.cases,
            "created_at": kept.created_at,
            "created_by": kept.created_by,
            "clear_values": kept.clear_values,
            "size": kept.size,
        }
        for kept in found
        if kept is not None
    ]
    if rows:
        op.get_bind().execute(_packages.insert(), rows)
    if len(rows) < len(found):
        log.warning("%d kept hand-over packages could not be read", len(found) - len(rows))


def downgrade() -> None:
    op.drop_table("handover_packages")
