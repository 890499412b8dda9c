"""chat styles and the style waiting for a chat's next text

`chat_styles` holds each chat's own prompt templates (/style add), named by gallery buttons by
id; `pending_styles` holds a style chosen for the next text of a chat or topic.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_styles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_chat_styles_chat_id_chats")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_styles")),
        sa.UniqueConstraint("chat_id", "name", name=op.f("uq_chat_styles_chat_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("chat_styles") as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_styles_chat_id"), ["chat_id"], unique=False)
    op.create_table(
        "pending_styles",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_pending_styles_chat_id_chats")
        ),
        sa.PrimaryKeyConstraint("chat_id", "thread_id", name=op.f("pk_pending_styles")),
    )


def downgrade() -> None:
    op.drop_table("pending_styles")
    with op.batch_alter_table("chat_styles") as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_styles_chat_id"))
    op.drop_table("chat_styles")
