"""stars ledger and group sponsors

Paid mode (PAID_MODE=stars): every purchase, reservation, charge, release and refund of Stars
credits is a row of `ledger` (a balance is the sum of an account's rows); `chat_sponsors`
names the owner who pays for a group's images, with a daily limit in Stars.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("charge_id", sa.String(length=128), nullable=True),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("free_images", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_ledger_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.UniqueConstraint("kind", "charge_id", name="uq_ledger_kind_charge_id"),
        sa.UniqueConstraint("kind", "job_id", name="uq_ledger_kind_job_id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ledger") as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_created_at"), ["created_at"], unique=False)
    op.create_table(
        "chat_sponsors",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sponsor_id", sa.BigInteger(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_chat_sponsors")),
    )


def downgrade() -> None:
    op.drop_table("chat_sponsors")
    with op.batch_alter_table("ledger") as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_created_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_account_id"))
    op.drop_table("ledger")
