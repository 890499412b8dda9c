"""While a job runs: the upload_photo chat action kept alive, one status message with seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.i18n import t
from bot.telegram.context import ProgressTimings

log = logging.getLogger(__name__)
T = TypeVar("T")


class Progress:
    """Async context manager; progress calls never fail the job they accompany."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        thread_id: int,
        *,
        lang: str,
        key: str,
        timings: ProgressTimings,
        reply_to: int | None = None,
    ) -> None:
        self._bot, self._chat_id, self._thread_id = bot, chat_id, thread_id or None
        self._lang, self._key, self._timings, self._reply_to = lang, key, timings, reply_to
        self._status_id: int | None = None
        self._shown = ""
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self.note = ""

    async def __aenter__(self) -> Progress:
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"progress-{self._chat_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._status_id is not None:
            await self._quietly(self._bot.delete_message(self._chat_id, self._status_id))

    def _text(self) -> str:
        text = t(self._lang, self._key, seconds=int(time.monotonic() - self._started))
        return f"{text}\n{self.note}" if self.note else text

    async def _run(self) -> None:
        tm = self._timings
        next_action = 0.0
        next_edit = tm.status_delay
        while True:
            elapsed = time.monotonic() - self._started
            if elapsed >= next_action:
                await self._quietly(
                    self._bot.send_chat_action(
                        self._chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=self._thread_id
                    )
                )
                next_action = elapsed + tm.action_interval
            if elapsed >= next_edit:
                await self._show_status()
                next_edit = elapsed + tm.edit_interval
            await asyncio.sleep(max(0.05, min(next_action, next_edit) - elapsed))

    async def _show_status(self) -> None:
        text = self._text()
        if text == self._shown:
            return
        self._shown = text
        if self._status_id is None:
            msg = await self._quietly(
                self._bot.send_message(
                    self._chat_id,
                    text,
                    message_thread_id=self._thread_id,
                    reply_to_message_id=self._reply_to,
                    allow_sending_without_reply=True,
                )
            )
            if msg is not None:
                self._status_id = msg.message_id
        else:
            await self._quietly(self._bot.edit_message_text(text, self._chat_id, self._status_id))

    @staticmethod
    async def _quietly(call: Awaitable[T]) -> T | None:
        try:
            return await call
        except TelegramError as exc:
            log.debug("progress call failed: %s", exc)
            return None


def note_text(lang: str, code: str) -> str:
    """A provider's progress code (`retry:rate_limited`, `task:processing`) in words."""
    kind, _, value = code.partition(":")
    if kind == "task":
        return t(
            lang, "note_task", status=t(lang, f"task_{value}") if value in TASK_STATES else value
        )
    if kind == "retry":
        return t(lang, "note_retry")
    if kind == "queue" and value.isdigit():
        return t(lang, "note_queue", position=int(value))
    return ""


TASK_STATES = ("submitted", "processing", "succeed", "failed")
