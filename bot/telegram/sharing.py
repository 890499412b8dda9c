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
from collections.abc import Awaitable, Callable

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
        self._loops: list[asyncio.Task[None]] = []
        self._pauses: set[asyncio.Task[None]] = set()
        self._taking = True

    async def start(self) -> None:
        if self._limiter is not None:
            self._limiter.on_flood = self._flooded
        await self.beat()
        await self.sweep()
        self._loops = [
            asyncio.create_task(self._beating(), name="replica-heartbeat"),
            # apart from the beats, which must not wait behind a busy pool's claims
            asyncio.create_task(self._sweeping(), name="replica-sweep"),
        ]

    def stop_taking(self) -> None:
        """Stopping: keep beating (this replica's running jobs are still its own) but take
        nothing more from dead replicas."""
        self._taking = False

    async def stop(self) -> None:
        """Once this replica's jobs are done: stop beating and leave, so what it still held
        is free for the others at once."""
        self._taking = False
        await finish_recovery(self._recovering)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        await asyncio.gather(*self._pauses, return_exceptions=True)
        if self._limiter is not None:
            self._limiter.on_flood = None
        with contextlib.suppress(Exception):
            await self._replicas.leave()

    async def _beating(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self._replicas.beat_every)
            if loop.time() - last > self._replicas.lease / 2:  # soon taken for dead
                log.warning(
                    "heartbeat %.1f s after the last one: the loop is late", loop.time() - last
                )
            last = loop.time()
            await _tried(self.beat, "heartbeat")

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(self._replicas.beat_every)
            await _tried(self.sweep, "sweep")

    async def beat(self) -> None:
        """Say this replica is alive; take its part of the flood budget and any pause."""
        pulse = await self._replicas.beat()
        if self._limiter is not None:
            self._limiter.share(pulse.replicas)
            if pulse.flood_seconds > 0:
                self._limiter.hold(pulse.flood_seconds)

    async def sweep(self) -> None:
        """Take over what dead replicas left: their jobs, and their chats' waiting updates."""
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


async def _tried(step: Callable[[], Awaitable[None]], what: str) -> None:
    try:
        await step()
    except Exception as exc:  # the database is away for a moment: the next one tries
        log.warning("%s failed: %s", what, exc)
