"""Queries of the replicas sharing one database: heartbeats, chat leases, and the jobs of
replicas that died (bot/services/replicas.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)

from bot.storage.jobs import UNANSWERED
from bot.storage.models import ChatLease, Job, JobStatus, Replica, WebhookUpdate, utcnow
from bot.storage.queries import Queries, table_of
from bot.storage.rows import InboxUpdate, from_row

_REPLICAS = table_of(Replica)
_LEASES = table_of(ChatLease)
_JOBS = table_of(Job)
_INBOX = table_of(WebhookUpdate)

_LIVE: Select[tuple[str]] = select(_REPLICAS.c.id).where(
    _REPLICAS.c.seen_at >= bindparam("_alive_since")
)
_BEAT = update(_REPLICAS).where(_REPLICAS.c.id == bindparam("_me")).values(seen_at=bindparam("_at"))
_LIVE_ROWS = select(_REPLICAS.c.id, _REPLICAS.c.flood_until).where(
    _REPLICAS.c.seen_at >= bindparam("_alive_since")
)
_PAUSE = (
    update(_REPLICAS)
    .where(
        _REPLICAS.c.id == bindparam("_me"),
        or_(_REPLICAS.c.flood_until.is_(None), _REPLICAS.c.flood_until < bindparam("_until")),
    )
    .values(flood_until=bindparam("_until"))
)
_GONE = delete(_REPLICAS).where(_REPLICAS.c.id == bindparam("_me"))
_OTHERS_GONE = delete(_REPLICAS).where(_REPLICAS.c.id != bindparam("_me"))
_DEAD_FOR_LONG = delete(_REPLICAS).where(_REPLICAS.c.seen_at < bindparam("_before"))


def _dead(owner: ColumnElement[str | None]) -> ColumnElement[bool]:
    """The owner column names no live replica (NULL: made before replicas were recorded)."""
    return or_(owner.is_(None), owner.not_in(_LIVE.scalar_subquery()))


_UNSTARTED = _INBOX.c.started_at.is_(None)
_TAKE_LEASE = (
    update(_LEASES)
    .where(
        _LEASES.c.chat_id == bindparam("_chat"),
        or_(_LEASES.c.owner == bindparam("_me"), _dead(_LEASES.c.owner)),
    )
    .values(owner=bindparam("_me"), taken_at=bindparam("_at"))
)
# Released only with nothing of the chat left to start: an update another replica recorded
# while this one held the chat keeps it here, so it is never left without a taker.
_RELEASE = delete(_LEASES).where(
    _LEASES.c.chat_id == bindparam("_chat"),
    _LEASES.c.owner == bindparam("_me"),
    ~exists().where(_INBOX.c.chat_id == bindparam("_chat"), _UNSTARTED),
)
_MY_PENDING = (
    select(_INBOX.c.update_id, _INBOX.c.payload, _INBOX.c.chat_id)
    .join(_LEASES, _LEASES.c.chat_id == _INBOX.c.chat_id)
    .where(_LEASES.c.owner == bindparam("_me"), _UNSTARTED)
    .order_by(_INBOX.c.update_id)
)
_HELD = select(_LEASES.c.chat_id).where(_LEASES.c.owner == bindparam("_me"))
# Chats with updates to start whose lease is free or lapsed, and updates of no chat that were
# recorded a while ago and never started (their replica died before it took them).
_ORPHANED_CHATS = (
    select(_INBOX.c.chat_id)
    .outerjoin(_LEASES, _LEASES.c.chat_id == _INBOX.c.chat_id)
    .where(
        _UNSTARTED,
        _INBOX.c.chat_id.is_not(None),
        or_(_LEASES.c.chat_id.is_(None), _dead(_LEASES.c.owner)),
    )
    .group_by(_INBOX.c.chat_id)
    .order_by(func.min(_INBOX.c.update_id))
)
_ORPHANED_CHATLESS = (
    select(_INBOX.c.update_id, _INBOX.c.payload, _INBOX.c.chat_id)
    .where(_UNSTARTED, _INBOX.c.chat_id.is_(None), _INBOX.c.received_at < bindparam("_before"))
    .order_by(_INBOX.c.update_id)
)
_LEFT_BEHIND = (_JOBS.c.status == JobStatus.RUNNING) | UNANSWERED


class ReplicaQueries(Queries):
    # -- heartbeats ------------------------------------------------------------------------
    async def add_replica(self, me: str) -> None:
        now = utcnow()
        await self._insert_ignore(_REPLICAS, id=me, started_at=now, seen_at=now)

    async def beat(self, me: str) -> bool:
        """This replica is alive now; False if its row is gone (another thought it dead)."""
        return bool((await self.core(_BEAT, {"_me": me, "_at": utcnow()})).rowcount)

    async def live_replicas(self, alive_since: datetime) -> list[tuple[str, datetime | None]]:
        """(id, end of the flood pause it saw) of every replica seen since `alive_since`."""
        rows = await self.core(_LIVE_ROWS, {"_alive_since": alive_since})
        return [(str(r.id), r.flood_until) for r in rows]

    async def pause_flood(self, me: str, until: datetime) -> None:
        """Telegram asked this bot to wait until `until`: every replica will."""
        await self.core(_PAUSE, {"_me": me, "_until": until})

    async def remove_replica(self, me: str) -> None:
        await self.core(_GONE, {"_me": me})

    async def remove_other_replicas(self, me: str) -> None:
        """Only this process uses the database (SQLite): any other row is a dead process's."""
        await self.core(_OTHERS_GONE, {"_me": me})

    async def forget_replicas_seen_before(self, before: datetime) -> None:
        await self.core(_DEAD_FOR_LONG, {"_before": before})

    # -- chat leases -----------------------------------------------------------------------
    async def take_chat(self, chat_id: int, me: str, alive_since: datetime) -> bool:
        """The chat's lease for this replica, unless a live one holds it; whether it is ours."""
        if (
            await self._insert_ignore(_LEASES, chat_id=chat_id, owner=me, taken_at=utcnow())
        ).rowcount:
            return True
        params = {"_chat": chat_id, "_me": me, "_at": utcnow(), "_alive_since": alive_since}
        return bool((await self.core(_TAKE_LEASE, params)).rowcount)

    async def release_chat(self, chat_id: int, me: str) -> bool:
        """Give the chat's lease back if none of its updates waits; whether it was given back."""
        return bool((await self.core(_RELEASE, {"_chat": chat_id, "_me": me})).rowcount)

    async def held_chats(self, me: str) -> set[int]:
        return set((await self.core(_HELD, {"_me": me})).scalars().all())

    async def pending_of_held_chats(self, me: str) -> list[InboxUpdate]:
        """Updates to start of the chats this replica holds, in update_id order."""
        return [from_row(InboxUpdate, r) for r in await self.core(_MY_PENDING, {"_me": me})]

    async def orphaned_chats(self, alive_since: datetime) -> list[int]:
        """Chats with updates still to start and no live holder, oldest update first."""
        params = {"_alive_since": alive_since}
        return list((await self.core(_ORPHANED_CHATS, params)).scalars().all())

    async def orphaned_chatless(self, before: datetime) -> list[InboxUpdate]:
        rows = await self.core(_ORPHANED_CHATLESS, {"_before": before})
        return [from_row(InboxUpdate, r) for r in rows]

    # -- jobs ------------------------------------------------------------------------------
    async def upstream_jobs_elsewhere(self, user_id: int, me: str) -> int:
        """The user's running jobs whose request is upstream in another replica."""
        stmt = select(func.count(_JOBS.c.id)).where(
            _JOBS.c.user_id == user_id,
            _JOBS.c.status == JobStatus.RUNNING,
            _JOBS.c.upstream_at.is_not(None),
            _JOBS.c.owner != me,
        )
        return int((await self.core(stmt)).scalar_one())

    # -- jobs of dead replicas -------------------------------------------------------------
    async def claim_left_jobs(self, me: str, alive_since: datetime) -> list[int]:
        """Make this replica the owner of every job a dead replica left running or unanswered
        (one statement, so two replicas never both take one); their ids."""
        stmt = (
            update(_JOBS)
            .where(_LEFT_BEHIND, _dead(_JOBS.c.owner))
            .values(owner=me)
            .returning(_JOBS.c.id)
        )
        rows = await self.core(stmt, {"_alive_since": alive_since})
        return sorted(int(i) for i in rows.scalars().all())
