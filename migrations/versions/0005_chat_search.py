"""chat search

Google Search grounding: a chat can keep it on (/settings), and a job records whether it was
grounded, so Regenerate asks for the same.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN, not a batch: SQLite's table rebuild would drop AUTOINCREMENT (0004).
def upgrade() -> None:
    for table in ("chat_prefs", "jobs"):
        op.add_column(
            table, sa.Column("search", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    for table in ("jobs", "chat_prefs"):
        op.drop_column(table, "search")
