"""The webhook inbox: an update is recorded, on disk, before Telegram hears it arrived.

Telegram redelivers an update until it gets a 2xx answer, so the answer waits for the record;
the update_id makes a redelivery a no-op; an update recorded but never started (the process
stopped between the answer and the hand-over) is still there at the next start.
"""

from __future__ import annotations

from bot.storage.database import Database
from bot.storage.rows import InboxUpdate

__all__ = ["Inbox", "InboxUpdate"]


class Inbox:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, update_id: int, payload: str) -> bool:
        """Record the update, committed and on disk; False if it was recorded before (a
        redelivery: it must not be processed again)."""
        async with self._db.write() as repo:
            fresh = await repo.record_update(update_id, payload)
        if fresh:
            await self._db.to_disk()  # acknowledged only once it survives a power loss
        return fresh

    async def start(self, update_id: int) -> bool:
        """Mark the update as handed to the handlers; False if it was started already."""
        async with self._db.write() as repo:
            return await repo.start_update(update_id)

    async def pending(self) -> list[InboxUpdate]:
        """Updates recorded but never started, in update_id order."""
        async with self._db.read() as repo:
            return await repo.pending_updates()
