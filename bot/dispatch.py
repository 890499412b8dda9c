"""Webhook updates handed to the handlers: each chat's by one replica at a time, in update_id
order, whichever replica Telegram's request reached.

The replica that records an update of a chat nobody holds takes the chat's lease
(`chat_leases`) and handles it; an update of a chat another live replica holds stays in the
inbox for that one, which looks for its chats' updates every `poll` seconds. A chat's
updates go over one after the other: the next once the previous one's request has its place
in the chat's queue (or it is done), so they queue in update_id order as polling's do. The
lease is given back once the chat has nothing running, waiting or being gathered (an album)
here, and only if none of its updates waits in the inbox; a dead replica's chats are taken by
the heartbeat's sweep (bot/telegram/sharing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.services.inbox import Inbox, InboxUpdate
from bot.services.ordering import QUEUED
from bot.services.replicas import Replicas

log = logging.getLogger(__name__)

#: Seconds between two looks for updates other replicas recorded for the chats held here.
POLL = 0.2
#: Seconds a chat with nothing left here is kept before its lease is given back.
LINGER = 0.3


@dataclass
class _Chat:
    queue: deque[InboxUpdate] = field(default_factory=deque)
    seen: set[int] = field(default_factory=set)  # update_ids queued here
    more: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[None] | None = None
    releasing: bool = False  # its lease is being given back
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # ... and that is decided


def chat_of(bot_app: Application, payload: dict[str, Any]) -> int | None:
    """The chat an update belongs to (None: none, e.g. an inline query or a pre-checkout)."""
    update = read(bot_app, payload)
    chat = update.effective_chat if update is not None else None
    return chat.id if chat is not None else None


def read(bot_app: Application, payload: dict[str, Any]) -> Update | None:
    try:
        return Update.de_json(payload, bot_app.bot)
    except Exception:
        log.exception("update %s could not be read; skipped", payload.get("update_id"))
        return None


async def process(bot_app: Application, update: Update) -> None:
    """Process the update as polling would, within its bound of updates at once."""
    processor = bot_app.update_processor
    await processor.process_update(update, bot_app.process_update(update))


class Dispatcher:
    def __init__(
        self,
        bot_app: Application,
        inbox: Inbox,
        replicas: Replicas,
        busy: Callable[[int], bool],
        *,
        on_take: Callable[[int], None] | None = None,
        poll: float = POLL,
        linger: float = LINGER,
    ) -> None:
        self._app, self._inbox, self._replicas = bot_app, inbox, replicas
        self._busy = busy  # whether a chat has requests running, waiting or being gathered
        # Told of each chat taken: what this process remembers of it may be another's past.
        self._on_take = on_take
        self._poll, self._linger = poll, linger
        self._held: dict[int, _Chat] = {}
        self._wake = asyncio.Event()
        self._looker: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._looker = asyncio.create_task(self._look(), name="webhook-chats")

    async def stop(self) -> None:
        """Hand over nothing more (what is left waits in the inbox for the next taker); the
        updates handed over finish with the Application."""
        self._stopping = True
        if self._looker is not None:
            self._looker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._looker
        for chat in self._held.values():
            chat.more.set()

    async def arrived(self, update_id: int, chat_id: int | None, payload: dict[str, Any]) -> None:
        """An update was recorded here: handle it, or leave it to the replica holding its chat."""
        if self._stopping:
            return
        if chat_id is None:
            await self._start_and_process(update_id, payload)
            return
        chat = self._held.get(chat_id)
        while chat is not None and chat.releasing:  # given back or kept: then take or wake
            await chat.settled.wait()
            chat = self._held.get(chat_id)
        if chat is not None or await self._take(chat_id):
            self._wake.set()

    async def sweep(self) -> None:
        """Take the chats whose updates wait with no live holder (their replica died, or it
        recorded them while stopping), and the chatless updates a dead replica left."""
        if self._stopping:
            return
        for chat_id in await self._replicas.orphaned_chats():
            if chat_id not in self._held and await self._take(chat_id):
                self._wake.set()
        for left in await self._replicas.orphaned_chatless():
            self._app.create_task(
                self._start_and_process(left.update_id, json.loads(left.payload)),
                name=f"webhook:update:{left.update_id}",
            )

    async def _take(self, chat_id: int) -> bool:
        if not await self._replicas.take_chat(chat_id):
            return False  # a live replica holds it and will find the update in the inbox
        if chat_id not in self._held and self._on_take is not None:
            self._on_take(chat_id)
        self._held.setdefault(chat_id, _Chat())
        return True

    async def _start_and_process(self, update_id: int, payload: dict[str, Any]) -> None:
        update = await self._claim(update_id, payload)
        if update is not None:
            await process(self._app, update)

    async def _claim(self, update_id: int, payload: dict[str, Any]) -> Update | None:
        """Mark the update started here and read it; None if it was started already (a
        redelivery, or another replica took it) or cannot be read."""
        if not await self._inbox.start(update_id):
            return None
        return read(self._app, payload)

    # -- the chats held here ---------------------------------------------------------------
    async def _look(self) -> None:
        """Queue the held chats' recorded updates (whoever recorded them) in update_id order."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll if self._held else None)
            self._wake.clear()
            if not self._held:
                continue
            try:
                pending = await self._replicas.pending_of_held_chats()
            except Exception:
                log.exception("could not read the inbox; trying again")
                await asyncio.sleep(self._poll)
                continue
            for recorded in pending:
                chat = self._held.get(recorded.chat_id) if recorded.chat_id is not None else None
                if chat is None or recorded.update_id in chat.seen:
                    continue
                chat.seen.add(recorded.update_id)
                chat.queue.append(recorded)
                chat.more.set()
            for chat_id, chat in self._held.items():
                if chat.runner is None:
                    chat.runner = self._app.create_task(
                        self._run(chat_id, chat), name=f"webhook:chat:{chat_id}"
                    )

    async def _run(self, chat_id: int, chat: _Chat) -> None:
        """Hand the chat's updates over in order until it is idle, then give it back."""
        try:
            while not self._stopping:
                try:
                    if await self._drain(chat_id, chat):
                        return
                except Exception:
                    log.exception("chat %d: could not hand its updates over; trying again", chat_id)
                    await asyncio.sleep(self._poll)
        finally:
            if self._held.get(chat_id) is chat:
                del self._held[chat_id]
            chat.settled.set()

    async def _drain(self, chat_id: int, chat: _Chat) -> bool:
        """Hand the queued updates over, wait for more; True once the lease is given back."""
        while chat.queue and not self._stopping:
            recorded = chat.queue[0]
            await self._hand_over(recorded)  # raises: stays queued, tried again
            chat.queue.popleft()
        if self._stopping:
            return True
        chat.more.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chat.more.wait(), self._linger)
        if chat.queue or self._busy(chat_id):
            return False
        chat.releasing = True
        try:
            released = await self._replicas.release_chat(chat_id)
        finally:
            chat.releasing = False
        if not released:
            self._wake.set()  # an update of the chat waits in the inbox: queue it
            chat.settled.set()
            chat.settled.clear()
        return released

    async def _hand_over(self, recorded: InboxUpdate) -> None:
        """Start the update and process it; return once its request queued, or it is done."""
        update = await self._claim(recorded.update_id, json.loads(recorded.payload))
        if update is None:
            return
        queued = asyncio.Event()
        token = QUEUED.set(queued)
        try:  # the task copies the context, so the handler's chat queue sees the event
            task = self._app.create_task(
                process(self._app, update), name=f"webhook:update:{update.update_id}"
            )
        finally:
            QUEUED.reset(token)
        waiter = asyncio.ensure_future(queued.wait())
        try:
            await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
