"""This replica's heartbeat, and what the replicas of one bot share through it.

Every `beat_every` seconds (bot/services/replicas.py) a replica says it is alive and learns:
how many replicas send as the bot (each takes an even part of Telegram's ~30 messages a
second), whether Telegram told any of them to wait (a 429: all hold back until then), which
jobs a dead replica left (claimed here and answered, bot/telegram/recovery.py) and, in
webhook mode, which chats' updates wait with nobody to take them (bot/dispatch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram.ext import Application

from bot.dispatch import Dispatcher
from bot.services.replicas import Replicas
from bot.telegram.ratelimit import MessageRateLimiter
from bot.telegram.recovery import answer_left_jobs, finish_recovery

log = logging.getLogger(__name__)


class Sharing:
    def __init__(
        self,
        app: Application,
        replicas: Replicas,
        recovering: list[asyncio.Task[None]],
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._app, self._replicas, self._dispatcher = app, replicas, dispatcher
        self._recovering = recovering  # the start's answers, and every sweep's after them
        limiter = getattr(app.bot, "rate_limiter", None)
        self._limiter = limiter if isinstance(limiter, MessageRateLimiter) else None
        self._loop: asyncio.Task[None] | None = None
        self._pauses: set[asyncio.Task[None]] = set()
        self._taking = True

    async def start(self) -> None:
        if self._limiter is not None:
            self._limiter.on_flood = self._flooded
        await self.beat()
        self._loop = asyncio.create_task(self._beating(), name="replica-heartbeat")

    def stop_taking(self) -> None:
        """Stopping: keep beating (this replica's running jobs are still its own) but take
        nothing more from dead replicas."""
        self._taking = False

    async def stop(self) -> None:
        """Once this replica's jobs are done: stop beating and leave, so what it still held
        is free for the others at once."""
        self._taking = False
        await finish_recovery(self._recovering)
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await asyncio.gather(*self._pauses, return_exceptions=True)
        if self._limiter is not None:
            self._limiter.on_flood = None
        with contextlib.suppress(Exception):
            await self._replicas.leave()

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(self._replicas.beat_every)
            try:
                await self.beat()
            except Exception as exc:  # the database is away for a moment: the next beat tries
                log.warning("heartbeat failed: %s", exc)

    async def beat(self) -> None:
        pulse = await self._replicas.beat()
        if self._limiter is not None:
            self._limiter.share(pulse.replicas)
            if pulse.flood_seconds > 0:
                self._limiter.hold(pulse.flood_seconds)
        if not self._taking:
            return
        claimed = await self._replicas.claim_left_jobs()
        if claimed:
            log.info("took over %d job(s) a stopped replica left", len(claimed))
            self._recovering[:] = [t for t in self._recovering if not t.done()]
            self._recovering.extend(await answer_left_jobs(self._app, claimed))
        if self._dispatcher is not None:
            await self._dispatcher.sweep()

    def _flooded(self, seconds: float) -> None:
        task = asyncio.create_task(self._replicas.pause_flood(seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)
