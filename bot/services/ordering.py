"""Requests from one chat (or forum topic) run in arrival order; different chats in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from contextvars import ContextVar

#: Set by whoever hands updates over one at a time (bot/dispatch.py): told when the update's
#: request has its place in its chat's queue, so the next update may be handed over.
QUEUED: ContextVar[asyncio.Event | None] = ContextVar("queued", default=None)


class ChatQueue:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._count: dict[Hashable, int] = {}

    def busy(self, chat_id: int) -> bool:
        """Whether a request of this chat (any topic) runs or waits here."""
        return any(_chat_of(key) == chat_id for key in self._count)

    def ahead(self, key: Hashable) -> int:
        """How many requests of this chat are running or waiting now."""
        return self._count.get(key, 0)

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._count[key] = self._count.get(key, 0) + 1
        queued = QUEUED.get()
        if queued is not None:
            queued.set()
        try:
            async with lock:
                yield
        finally:
            self._count[key] -= 1
            if self._count[key] == 0:
                del self._count[key]
                self._locks.pop(key, None)


def _chat_of(key: Hashable) -> object:
    """A queue key is (chat, topic), or a chat alone."""
    return key[0] if isinstance(key, tuple) else key


WaitCallback = Callable[[int], Awaitable[None]]
#: How many of a user's requests are upstream in other replicas of the bot now.
Elsewhere = Callable[[int], Awaitable[int]]


class FairScheduler:
    """Caps upstream calls: at most `total` at once and `per_user` per person.

    Waiters are served first come, first served among those whose user is under the cap, so
    one person's burst cannot starve everyone else; each waiter hears its place in the queue.
    """

    # The total is a safety net above what the endpoints' adaptive limits let through, so
    # normal load never queues here; the per-user cap is fair use and stays small.
    def __init__(
        self,
        total: int = 256,
        per_user: int = 2,
        *,
        elsewhere: Elsewhere | None = None,
        recheck: float = 1.0,
    ) -> None:
        self._total, self._per_user = total, per_user
        # Several replicas: a user's requests upstream in the others count against the cap too
        # (read from the database, again every `recheck` seconds while it is full).
        self._elsewhere, self._recheck = elsewhere, recheck
        self._running = 0
        self._by_user: dict[int, int] = {}
        self._waiting: list[tuple[object, int]] = []
        self._cond = asyncio.Condition()

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot now."""
        return len(self._waiting)

    def _eligible(self, user_id: int) -> bool:
        return self._by_user.get(user_id, 0) < self._per_user

    def _my_turn(self, me: object) -> bool:
        if self._running >= self._total:
            return False
        for token, user_id in self._waiting:
            if self._eligible(user_id):
                return token is me
        return False

    def _position(self, me: object) -> int:
        return next(i for i, (token, _) in enumerate(self._waiting) if token is me) + 1

    async def _room_elsewhere(self, user_id: int, on_wait: WaitCallback | None) -> None:
        assert self._elsewhere is not None
        told = False
        while await self._elsewhere(user_id) + self._by_user.get(user_id, 0) >= self._per_user:
            if on_wait is not None and not told:
                told = True
                await on_wait(1)
            await asyncio.sleep(self._recheck)

    @asynccontextmanager
    async def slot(self, user_id: int, on_wait: WaitCallback | None = None) -> AsyncIterator[None]:
        me = object()
        if self._elsewhere is not None:
            await self._room_elsewhere(user_id, on_wait)
        async with self._cond:
            self._waiting.append((me, user_id))
            try:
                told = 0
                while not self._my_turn(me):
                    position = self._position(me)
                    if on_wait is not None and position != told:
                        told = position
                        await on_wait(position)
                    await self._cond.wait()
            finally:
                self._waiting = [w for w in self._waiting if w[0] is not me]
            self._running += 1
            self._by_user[user_id] = self._by_user.get(user_id, 0) + 1
        try:
            yield
        finally:
            async with self._cond:
                self._running -= 1
                self._by_user[user_id] -= 1
                if not self._by_user[user_id]:
                    del self._by_user[user_id]
                self._cond.notify_all()
