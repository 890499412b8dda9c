"""The repository: every query of one unit of work, grouped by what it reads and writes.

Services get a `Repo` from `Database.read()` or `Database.write()` (bot/storage/database.py)
and call its methods; each returns plain values (bot/storage/rows.py). Add a query to the
module of its table (chats.py, images.py, inbox.py, jobs.py, ledger.py, replicas.py, rules.py,
styles.py).
"""

from __future__ import annotations

from sqlalchemy import text

from bot.storage.chats import ChatQueries
from bot.storage.daily import DailyQueries
from bot.storage.images import IMAGE_COLUMNS, ImageQueries
from bot.storage.inbox import InboxQueries
from bot.storage.jobs import INTERRUPTED, JobQueries
from bot.storage.ledger import LedgerQueries
from bot.storage.locks import LockQueries
from bot.storage.personal import PersonalQueries
from bot.storage.queries import table_of
from bot.storage.replicas import ReplicaQueries
from bot.storage.rules import RuleQueries
from bot.storage.styles import StyleQueries

# IMAGE_COLUMNS, table_of and Repo.core stay reachable only while services/conversation.py
# builds its own two statements; it can use Repo.image() and Repo.job_turn() instead.
__all__ = ["IMAGE_COLUMNS", "INTERRUPTED", "Repo", "table_of"]


class Repo(
    ChatQueries,
    DailyQueries,
    ImageQueries,
    InboxQueries,
    JobQueries,
    LedgerQueries,
    LockQueries,
    PersonalQueries,
    ReplicaQueries,
    RuleQueries,
    StyleQueries,
):
    """All queries of one unit of work, bound to its session."""

    async def schema_version(self) -> str | None:
        """The Alembic revision the database is at (None: never migrated): a query that
        needs a working, migrated database, for readiness checks."""
        result = await self.core(text("SELECT version_num FROM alembic_version"))
        row = result.first()
        return None if row is None else str(row[0])
