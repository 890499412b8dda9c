"""What operators and orchestrators call: /healthz, /readyz and /metrics.

`add_ops_routes` puts them on any aiohttp application (the webhook server mounts them too);
`OpsServer` serves them alone on HTTP_LISTEN in polling mode, started and stopped with the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from aiohttp import web
from telegram.ext import Application

from bot.config import split_listen
from bot.metrics import METRICS, Metrics
from bot.storage.database import Database

log = logging.getLogger(__name__)

#: Where the running bot keeps its database for the readiness check (`bot.app` puts it there).
DATABASE_KEY: Final = "_database"
#: A Bot API answer younger than this, with no failed call since, needs no getMe probe.
BOT_API_FRESH: Final = 60.0
#: How long the database query and the getMe probe may take before the bot counts as not ready.
CHECK_TIMEOUT: Final = 5.0


class Readiness:
    """Ready: the database answers a query and the Bot API answered lately (or a getMe now)."""

    def __init__(
        self,
        bot_app: Application,
        metrics: Metrics = METRICS,
        *,
        fresh: float = BOT_API_FRESH,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self._app = bot_app
        self._metrics = metrics
        self._fresh = fresh
        self._timeout = timeout

    async def problem(self) -> str | None:
        """Why the bot is not ready, in a few words; None when it is."""
        database = self._app.bot_data.get(DATABASE_KEY)
        if not isinstance(database, Database):
            return "starting"
        try:
            async with asyncio.timeout(self._timeout):
                if await database.ping() is None:
                    return "database: not migrated"
        except Exception as exc:  # any failure to answer is the answer
            return f"database: {type(exc).__name__}"
        if self._bot_api_answered_lately():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                await self._app.bot.get_me()
        except Exception as exc:
            return f"bot api: {type(exc).__name__}"
        return None

    def _bot_api_answered_lately(self) -> bool:
        answered, failed = self._metrics.bot_api_answered_at, self._metrics.bot_api_failed_at
        if answered is None or time.monotonic() - answered > self._fresh:
            return False
        return failed is None or failed < answered


def add_ops_routes(
    web_app: web.Application, bot_app: Application, *, readiness: Readiness | None = None
) -> None:
    """GET /healthz, /readyz and /metrics on `web_app`, about the bot `bot_app` runs."""
    ready = readiness or Readiness(bot_app)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        problem = await ready.problem()
        if problem is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": problem}, status=503)

    async def metrics(_request: web.Request) -> web.Response:
        body, content_type = METRICS.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)


class ListenError(Exception):
    """The ops server cannot take its address (in use, or not this machine's)."""


class Listener:
    """An aiohttp application served on ``host:port``; the setting that named the address is
    in the error when it cannot be taken."""

    def __init__(self, web_app: web.Application, listen: str, setting: str) -> None:
        self.host, self.port = split_listen(listen)
        self._setting = setting
        self._runner = web.AppRunner(web_app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ListenError(
                f"cannot listen on {self.host}:{self.port} ({self._setting}): {exc.strerror or exc}"
            ) from None

    async def stop(self) -> None:
        """Stop taking requests (the ones being answered are answered first)."""
        await self._runner.cleanup()


class OpsServer(Listener):
    """The ops routes alone on ``host:port`` (HTTP_LISTEN), for a bot that long-polls."""

    def __init__(self, bot_app: Application, listen: str) -> None:
        web_app = web.Application()
        add_ops_routes(web_app, bot_app)
        super().__init__(web_app, listen, "HTTP_LISTEN")

    async def start(self) -> None:
        await super().start()
        log.info("ops endpoints on %s:%d: /healthz, /readyz, /metrics", self.host, self.port)
