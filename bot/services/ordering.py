"""Requests from one chat (or forum topic) run in arrival order; different chats in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class ChatQueue:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._count: dict[Hashable, int] = {}

    def ahead(self, key: Hashable) -> int:
        """How many requests of this chat are running or waiting now."""
        return self._count.get(key, 0)

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._count[key] = self._count.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._count[key] -= 1
            if self._count[key] == 0:
                del self._count[key]
                self._locks.pop(key, None)
