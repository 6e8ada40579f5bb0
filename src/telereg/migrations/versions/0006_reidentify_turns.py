"""reidentify_turns: a row per user that a reveal locks while it counts and reveals

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa
from alembic import op

import telereg.core.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reidentify_turns",
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", telereg.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("actor", name=op.f("pk_reidentify_turns")),
    )


def downgrade() -> None:
    op.drop_table("reidentify_turns")
