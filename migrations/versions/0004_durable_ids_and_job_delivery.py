"""durable ids and job delivery

Ids that buttons name (jobs, images, image messages) are never reused: SQLite tables get
AUTOINCREMENT, so a row deleted at the top of a table cannot hand its id to a new row. Jobs
record when their request first went upstream and when their result was delivered, so a
restart can settle what a dead process left unfinished. Images record who stored them, for
the per-user daily storage limit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DURABLE_ID_TABLES = ("jobs", "images", "image_messages")


def _batch(table: str, autoincrement: bool):  # type: ignore[no-untyped-def]
    """SQLite needs the table rebuilt to change AUTOINCREMENT; other databases never reuse
    sequence values, so they only get the column changes."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        )
    return op.batch_alter_table(table)


def upgrade() -> None:
    with _batch("jobs", True) as batch_op:
        batch_op.add_column(sa.Column("upstream_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
    with _batch("images", True) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_images_user_id"), ["user_id"], unique=False)
    with _batch("image_messages", True):
        pass


def downgrade() -> None:
    with _batch("image_messages", False):
        pass
    with _batch("images", False) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_user_id"))
        batch_op.drop_column("user_id")
    with _batch("jobs", False) as batch_op:
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("upstream_at")
