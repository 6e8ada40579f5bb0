"""handover_packages: when a package's file was purged, and its manifest's digest and signature

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00

A package's file is removed once it is older than ``handover_retention_days``; its record
stays, marked with when, and keeps the manifest's SHA-256 and signature so that a copy
brought back later is still recognised. Records made before this revision have neither
fact until the purge reads them from the package, before it removes it.
"""

import sqlalchemy as sa
from alembic import op

import telereg.core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handover_packages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purged_at", telereg.core.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("manifest_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # (the records stay, without the purge date: the code of revision 0006 takes a purged
    # package for a kept one whose file is missing, and a fetch of it answers 404, not 410)
    with op.batch_alter_table("handover_packages", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("manifest_sha256")
        batch_op.drop_column("purged_at")
