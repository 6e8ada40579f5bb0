"""reidentify_approvals: requests to re-identify a case's values and another user's decision

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reidentify_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=100), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reidentify_approvals")),
    )
    op.create_index(
        "ix_reidentify_approvals_case_requester",
        "reidentify_approvals",
        ["case_id", "requested_by"],
    )
    op.create_index(
        op.f("ix_reidentify_approvals_status"), "reidentify_approvals", ["status"], unique=False
    )


def downgrade() -> None:
    # (the requests go, approvals in force among them: the audit log keeps each request,
    # decision and withdrawal; after an upgrade again, users ask anew)
    op.drop_index(op.f("ix_reidentify_approvals_status"), table_name="reidentify_approvals")
    op.drop_index("ix_reidentify_approvals_case_requester", table_name="reidentify_approvals")
    op.drop_table("reidentify_approvals")
