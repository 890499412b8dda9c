"""access rules and quotas

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:58:24.931946
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_rules",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id", name=op.f("pk_subject_rules")),
    )


def downgrade() -> None:
    op.drop_table("subject_rules")
