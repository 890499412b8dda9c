"""Webhook mode: Telegram POSTs each update to TELEGRAM_WEBHOOK_URL's path on WEBHOOK_LISTEN.

An update is recorded in the inbox (bot/services/inbox.py, on disk) before it is answered, so
an acknowledged update is never lost; a redelivery (same update_id) is answered and not
processed again. Once answered, the update goes to the dispatcher (bot/dispatch.py), which
hands each chat's updates to the PTB `Application` in order, from whichever replica of the
bot recorded them. The same server answers /healthz, /readyz and /metrics (bot/ops.py).
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from telegram.ext import Application

from bot.config import Settings
from bot.dispatch import Dispatcher, chat_of
from bot.ops import Listener, add_ops_routes
from bot.services.inbox import Inbox

log = logging.getLogger(__name__)

#: Where the running bot keeps its inbox once the database is open (`bot.app` puts it there).
INBOX_KEY: Final = "_webhook_inbox"
#: ... and its dispatcher once it takes updates (bot/dispatch.py).
DISPATCHER_KEY: Final = "_webhook_dispatcher"
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
        return cls(settings.telegram_webhook_url, settings.webhook_secret, settings.webhook_listen)

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
        chat_id = chat_of(self._app, payload)
        try:
            fresh = await inbox.record(
                update_id, json.dumps(payload, ensure_ascii=False), chat_id=chat_id
            )
        except Exception:
            log.exception("update %d could not be recorded", update_id)
            return web.Response(status=500, text="not recorded")  # Telegram sends it again
        if not fresh:
            log.info("update %d was delivered again; already recorded", update_id)
        # Not running yet: the start's sweep takes it (see `bot.app`). A redelivery whose first
        # delivery was recorded but never started is taken here.
        dispatcher = self._app.bot_data.get(DISPATCHER_KEY)
        if self._app.running and isinstance(dispatcher, Dispatcher):
            self._app.create_task(
                dispatcher.arrived(update_id, chat_id, payload), name=f"webhook:{update_id}"
            )
        return web.Response(status=200)
