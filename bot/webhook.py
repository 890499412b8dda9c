"""Webhook mode: Telegram POSTs each update to TELEGRAM_WEBHOOK_URL's path on WEBHOOK_LISTEN.

An update is recorded in the inbox (bot/services/inbox.py, on disk) before it is answered, so
an acknowledged update is never lost; a redelivery (same update_id) is answered and not
processed again. Once answered, the update is marked started and processed by the PTB
`Application` as polling's updates are (same concurrency bound, awaited by `Application.stop`).
The same server answers /healthz, /readyz and /metrics (bot/ops.py). One replica at a time:
several replicas sharing one bot's updates are not built.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import Settings
from bot.ops import Listener, add_ops_routes
from bot.services.inbox import Inbox

log = logging.getLogger(__name__)

#: Where the running bot keeps its inbox once the database is open (`bot.app` puts it there).
INBOX_KEY: Final = "_webhook_inbox"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str
    listen: str

    @classmethod
    def of(cls, settings: Settings) -> WebhookConfig | None:
        """Webhook mode's settings; None in long-polling mode (no TELEGRAM_WEBHOOK_URL)."""
        if not settings.telegram_webhook_url:
            return None
        return cls(
            settings.telegram_webhook_url, settings.webhook_secret, settings.webhook_listen
        )

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


def update_id_of(body: bytes) -> tuple[int, dict[str, Any]] | None:
    """The update_id and the object of a body that is a JSON object with an integer
    update_id; None for anything else."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    update_id = payload.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    return update_id, payload


class WebhookServer(Listener):
    """The webhook route and the ops routes on WEBHOOK_LISTEN."""

    def __init__(self, bot_app: Application, config: WebhookConfig) -> None:
        self._app = bot_app
        self._config = config
        self._secret = config.secret.encode()
        web_app = web.Application()
        web_app.router.add_post(config.path, self._take)
        add_ops_routes(web_app, bot_app)
        super().__init__(web_app, config.listen, "WEBHOOK_LISTEN")

    async def start(self) -> None:
        await super().start()
        log.info("webhook on %s:%d%s", self.host, self.port, self._config.path)

    async def _take(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return web.Response(status=403, text="forbidden")
        parsed = update_id_of(await request.read())
        if parsed is None:
            return web.Response(status=400, text="not an update")
        update_id, payload = parsed
        inbox = self._app.bot_data.get(INBOX_KEY)
        if not isinstance(inbox, Inbox):
            return web.Response(status=503, text="starting")  # Telegram sends it again
        try:
            fresh = await inbox.record(update_id, json.dumps(payload, ensure_ascii=False))
        except Exception:
            log.exception("update %d could not be recorded", update_id)
            return web.Response(status=500, text="not recorded")  # Telegram sends it again
        if not fresh:
            log.info("update %d was delivered again; already recorded", update_id)
        # Not running yet: the start's pass over pending updates takes it (see `bot.app`).
        # A redelivery whose first delivery was recorded but never started is claimed here.
        if self._app.running:
            self.hand_over(inbox, update_id, payload)
        return web.Response(status=200)

    def hand_over(self, inbox: Inbox, update_id: int, payload: dict[str, Any]) -> None:
        """Process the update in a task `Application.stop` waits for, unless it was started."""
        self._app.create_task(
            process_recorded(self._app, inbox, update_id, payload),
            name=f"webhook:update:{update_id}",
        )


async def process_recorded(
    bot_app: Application, inbox: Inbox, update_id: int, payload: dict[str, Any]
) -> None:
    """Mark the update started (once, whoever claims it) and process it as polling would."""
    if not await inbox.start(update_id):
        return  # started already: a redelivery, or the pass at start took it
    await process_started(bot_app, update_id, payload)


async def process_started(bot_app: Application, update_id: int, payload: dict[str, Any]) -> None:
    """Process a claimed update within polling's bound of updates at once."""
    update = _read(bot_app, update_id, payload)
    if update is not None:
        await _process(bot_app, update)


def _read(bot_app: Application, update_id: int, payload: dict[str, Any]) -> Update | None:
    try:
        return Update.de_json(payload, bot_app.bot)
    except Exception:
        log.exception("update %d could not be read; skipped", update_id)
        return None


async def _process(bot_app: Application, update: Update) -> None:
    processor = bot_app.update_processor
    await processor.process_update(update, bot_app.process_update(update))


async def process_pending(bot_app: Application, inbox: Inbox) -> int:
    """Hand over the updates a previous process recorded and never started: claimed one by
    one in update_id order; one chat's updates processed one after the other in that order,
    different chats at once, in tasks `Application.stop` waits for. How many were claimed."""
    await inbox.forget_old()
    chains: dict[object, list[Update]] = {}
    for recorded in await inbox.pending():
        if not await inbox.start(recorded.update_id):
            continue  # a redelivery that arrived meanwhile took it
        update = _read(bot_app, recorded.update_id, json.loads(recorded.payload))
        if update is None:
            continue
        chat = update.effective_chat
        key: object = chat.id if chat is not None else ("update", update.update_id)
        chains.setdefault(key, []).append(update)

    async def run(chain: list[Update]) -> None:
        for update in chain:
            await _process(bot_app, update)

    for key, chain in chains.items():
        bot_app.create_task(run(chain), name=f"webhook:pending:{key}")
    claimed = sum(len(chain) for chain in chains.values())
    if claimed:
        log.info("%d recorded update(s) from before the start handed over", claimed)
    return claimed
