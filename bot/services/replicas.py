"""This process as one replica of several sharing a database (PostgreSQL), or the only one.

Each replica has a random id and a heartbeat row (`replicas`); one whose heartbeat is older
than `lease` seconds is dead. What a replica owns -- its running jobs (`jobs.owner`) and the
chats whose webhook updates it handles (`chat_leases`) -- lapses with it and is taken over by
another, claimed in one statement so two never take the same. On SQLite one process owns the
file, so at start every other replica row is a dead process's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.storage.database import Database
from bot.storage.models import utcnow
from bot.storage.rows import InboxUpdate

#: Replica rows not seen for this long are deleted (their jobs were taken over long ago).
FORGET_AFTER = timedelta(days=1)
#: An update of no chat recorded this long ago and not started lost its replica.
CHATLESS_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class Pulse:
    """What a heartbeat learns: how many replicas share the bot, and for how many seconds more
    Telegram asked it to stop sending (0: it did not)."""

    replicas: int
    flood_seconds: float = 0.0


class Replicas:
    def __init__(
        self,
        database: Database,
        lease: float,
        *,
        exclusive: bool,
        heartbeat: Database | None = None,
    ) -> None:
        self._db = database
        # Beats on a connection of their own: behind a busy pool's queue a live replica's beat
        # would come late, and the others would take its jobs for a dead one's.
        self._heart = heartbeat or database
        self.lease = lease
        self.exclusive = exclusive
        self.id = uuid.uuid4().hex

    @property
    def beat_every(self) -> float:
        """Seconds between heartbeats: several fit in a lease, so one late beat is no death."""
        return self.lease / 4

    def _alive_since(self) -> datetime:
        return utcnow() - timedelta(seconds=self.lease)

    async def join(self) -> None:
        async with self._db.write() as repo:
            await repo.add_replica(self.id)
            if self.exclusive:
                await repo.remove_other_replicas(self.id)
            await repo.forget_replicas_seen_before(utcnow() - FORGET_AFTER)

    async def leave(self) -> None:
        """A clean stop: what this replica still owns is free for the others at once."""
        async with self._heart.write() as repo:
            await repo.remove_replica(self.id)

    async def beat(self) -> Pulse:
        async with self._heart.write() as repo:
            if not await repo.beat(self.id):  # taken for dead (a long pause): alive again
                await repo.add_replica(self.id)
            live = await repo.live_replicas(self._alive_since())
        now = utcnow()
        pauses = [(until - now).total_seconds() for _, until in live if until is not None]
        return Pulse(max(1, len(live)), max([0.0, *pauses]))

    async def pause_flood(self, seconds: float) -> None:
        async with self._heart.write() as repo:
            await repo.pause_flood(self.id, utcnow() + timedelta(seconds=seconds))

    # -- jobs ------------------------------------------------------------------------------
    async def upstream_elsewhere(self, user_id: int) -> int:
        """How many of the user's requests other replicas have upstream now."""
        async with self._db.read() as repo:
            return await repo.upstream_jobs_elsewhere(user_id, self.id)

    async def claim_left_jobs(self) -> list[int]:
        """Jobs dead replicas left running or unanswered, now this one's; their ids."""
        async with self._db.write() as repo:
            return await repo.claim_left_jobs(self.id, self._alive_since())

    # -- chat leases -----------------------------------------------------------------------
    async def take_chat(self, chat_id: int) -> bool:
        async with self._db.write() as repo:
            return await repo.take_chat(chat_id, self.id, self._alive_since())

    async def release_chat(self, chat_id: int) -> bool:
        async with self._db.write() as repo:
            return await repo.release_chat(chat_id, self.id)

    async def held_chats(self) -> set[int]:
        async with self._db.read() as repo:
            return await repo.held_chats(self.id)

    async def pending_of_held_chats(self) -> list[InboxUpdate]:
        async with self._db.read() as repo:
            return await repo.pending_of_held_chats(self.id)

    async def orphaned_chats(self) -> list[int]:
        """Chats with updates waiting whose holder died (or that nobody took)."""
        async with self._db.read() as repo:
            return await repo.orphaned_chats(self._alive_since())

    async def orphaned_chatless(self) -> list[InboxUpdate]:
        async with self._db.read() as repo:
            return await repo.orphaned_chatless(utcnow() - CHATLESS_GRACE)
