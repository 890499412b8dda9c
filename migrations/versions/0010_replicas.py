"""replicas

Several `python -m bot` processes on one PostgreSQL share the work: `replicas` holds each live
one's heartbeat (and the Telegram flood pause it saw), `jobs.owner` the replica running a job
(a dead owner's jobs are taken over), `chat_leases` which replica handles a chat's webhook
updates (one at a time, in update_id order), and `webhook_updates.chat_id` whose they are.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("flood_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.create_table(
        "chat_leases",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=36), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_chat_leases")),
    )
    op.create_index(op.f("ix_chat_leases_owner"), "chat_leases", ["owner"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=36), nullable=True))
    with op.batch_alter_table("webhook_updates") as batch:
        batch.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch.create_index(batch.f("ix_webhook_updates_chat_id"), ["chat_id"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_updates") as batch:
        batch.drop_index(batch.f("ix_webhook_updates_chat_id"))
        batch.drop_column("chat_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
    op.drop_index(op.f("ix_chat_leases_owner"), table_name="chat_leases")
    op.drop_table("chat_leases")
    op.drop_table("replicas")
