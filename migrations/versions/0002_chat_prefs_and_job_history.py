"""chat prefs and job history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:49:14.865954
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_prefs",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("refine", sa.Boolean(), nullable=False),
        sa.Column("aspect_ratio", sa.String(length=8), nullable=True),
        sa.Column("image_size", sa.String(length=4), nullable=True),
        sa.Column("reply_mode", sa.String(length=8), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_chat_prefs_chat_id_chats")
        ),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_chat_prefs")),
    )
    with op.batch_alter_table("chat_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_album", sa.Text(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("n", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("model_parts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("model_parts")
        batch_op.drop_column("n")
    with op.batch_alter_table("chat_states", schema=None) as batch_op:
        batch_op.drop_column("pending_album")

    op.drop_table("chat_prefs")
