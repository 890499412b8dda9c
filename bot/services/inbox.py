"""The webhook inbox: an update is recorded, on disk, before Telegram hears it arrived.

Telegram redelivers an update until it gets a 2xx answer, so the answer waits for the record;
the update_id makes a redelivery a no-op; an update recorded but never started (the process
stopped between the answer and the hand-over) is still there at the next start.
"""

from __future__ import annotations

from datetime import timedelta

from bot.storage.database import Database
from bot.storage.models import utcnow
from bot.storage.rows import InboxUpdate

__all__ = ["Inbox", "InboxUpdate"]


#: Telegram keeps an undelivered update for 24 hours, so no redelivery comes after this: an
#: update_id older than that need not be remembered for deduping.
KEEP = timedelta(hours=48)
#: Recorded updates between two passes that forget the old ones.
FORGET_EVERY = 1000


class Inbox:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._recorded = 0

    async def record(self, update_id: int, payload: str, chat_id: int | None = None) -> bool:
        """Record the update (of this chat), committed and on disk; False if it was recorded
        before (a redelivery: it must not be processed again)."""
        async with self._db.write() as repo:
            fresh = await repo.record_update(update_id, payload, chat_id)
        if fresh:
            await self._db.to_disk()  # acknowledged only once it survives a power loss
            self._recorded += 1
            if self._recorded % FORGET_EVERY == 0:
                await self.forget_old()
        return fresh

    async def forget_old(self) -> int:
        """Delete started updates older than KEEP (the table would grow forever); how many."""
        async with self._db.write() as repo:
            return await repo.forget_started_updates(utcnow() - KEEP)

    async def start(self, update_id: int) -> bool:
        """Mark the update as handed to the handlers (its payload is dropped: they hold it);
        False if it was started already."""
        async with self._db.write() as repo:
            return await repo.start_update(update_id)

    async def pending(self) -> list[InboxUpdate]:
        """Updates recorded but never started, in update_id order."""
        async with self._db.read() as repo:
            return await repo.pending_updates()
