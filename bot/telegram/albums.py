"""Albums arrive as separate updates sharing a media_group_id, maybe in separate getUpdates
batches: gather them per (chat, topic, group) and hand them over after a short quiet period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Update
from telegram.ext import ContextTypes

AlbumKey = tuple[int, int, str]
AlbumHandler = Callable[[list[Update], ContextTypes.DEFAULT_TYPE], Awaitable[None]]


@dataclass
class _Pending:
    updates: list[Update] = field(default_factory=list)
    timer: asyncio.Task[None] | None = None


class AlbumCollector:
    def __init__(self, quiet: float, handler: AlbumHandler) -> None:
        self._quiet = quiet
        self._handler = handler
        self._pending: dict[AlbumKey, _Pending] = {}
        self._handing: dict[int, int] = {}  # chat id -> albums being handed to the handler

    def holds(self, chat_id: int) -> bool:
        """Whether an album of this chat is still being gathered."""
        return chat_id in self._handing or any(key[0] == chat_id for key in self._pending)

    def add(self, key: AlbumKey, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        pending = self._pending.setdefault(key, _Pending())
        pending.updates.append(update)
        if pending.timer is not None:
            pending.timer.cancel()
        pending.timer = asyncio.create_task(self._flush_later(key, context))

    async def _flush_later(self, key: AlbumKey, context: ContextTypes.DEFAULT_TYPE) -> None:
        await asyncio.sleep(self._quiet)
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        updates = sorted(pending.updates, key=lambda u: u.update_id)
        chat = key[0]
        self._handing[chat] = self._handing.get(chat, 0) + 1
        try:
            await self._handler(updates, context)
        except Exception as exc:  # outside PTB's dispatch: handed to its error handler by hand
            await context.application.process_error(updates[0], exc)
        finally:
            self._handing[chat] -= 1
            if not self._handing[chat]:
                del self._handing[chat]
