"""64-bit row ids on PostgreSQL

The ids of jobs, images, image messages, ledger rows and chat styles (and the columns that
refer to them) become BIGINT on PostgreSQL, with their sequences: SQLite's INTEGER ids are
64-bit already, so every id a SQLite database holds fits when it moves (migrate-db), and a
busy bot's image messages never run out at 2**31. SQLite is left as it is.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable): the ids, then the columns that refer to them
_COLUMNS = (
    ("jobs", "id", False),
    ("images", "id", False),
    ("image_messages", "id", False),
    ("ledger", "id", False),
    ("chat_styles", "id", False),
    ("images", "job_id", True),
    ("image_messages", "image_id", False),
    ("job_inputs", "job_id", False),
    ("job_inputs", "image_id", False),
    ("chat_states", "current_image_id", True),
    ("ledger", "job_id", True),
)
_SEQUENCES = ("jobs", "images", "image_messages", "ledger", "chat_styles")


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int], seq: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: INTEGER is 64-bit, and an INTEGER PRIMARY KEY must stay one
    for table, column, nullable in _COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=nullable)
    for table in _SEQUENCES:
        op.execute(
            "DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS "
            + seq
            + f"', pg_get_serial_sequence('{table}', 'id')); END $$"
        )


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger(), "bigint")


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer(), "integer")
