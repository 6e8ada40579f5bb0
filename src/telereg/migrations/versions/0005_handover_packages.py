"""handover_packages: what each kept hand-over package holds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00

The list of packages read every package (decrypting it) to name its cases; it reads this
table now. Packages kept before it are not recorded here (that would take the vault key
and the hand-over's own reader in a migration): the list reads those from the packages
themselves, as it did.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    op.drop_table("handover_packages")
