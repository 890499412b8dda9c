"""While a job runs: the upload_photo chat action kept alive, one status message with seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.i18n import t
from bot.services.types import Done, ProgressEvent, Queued, Retrying, Started, TaskPolling
from bot.telegram.ratelimit import PROGRESS

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ProgressTimings:
    """Seconds. The chat action ("sending a photo…") is the first feedback; the status
    message follows only when a job takes longer than Telegram shows one action (~5 s) or has
    something to say (place in line, a retry). Quick results then cost three Bot API calls
    (two chat actions and the photo) instead of five (plus the status message and its removal).
    """

    status_delay: float = 6.0
    action_interval: float = 4.0
    edit_interval: float = 5.0
    album_quiet: float = 1.5


class ProgressBudget:
    """One budget for the progress calls of all chats: a token bucket, `rate` calls a second.

    A progress call that finds the bucket empty is skipped, never queued: a late "sending a
    photo" or a late "7 s" is worth nothing, and with hundreds of jobs at once these calls
    would otherwise take most of the bot's CPU (every Bot API call costs some of it) and crowd
    out results. A job's first feedback (the first chat action, the status message) may
    use the whole bucket; renewals and edits only its upper half, so when the bucket runs low,
    new jobs still get their first signal. Results and deletions never touch it.
    """

    def __init__(self, rate: float = 60.0, burst: float = 120.0) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()
        self.skipped = 0

    def take(self, *, first: bool) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= (1.0 if first else self.burst / 2):
            self._tokens -= 1.0
            return True
        self.skipped += 1
        return False


RETRY_SKIPPED = 0.5  # seconds until a skipped progress call is tried again


class Progress:
    """Async context manager; progress calls never fail the job they accompany.

    `stop()` ends the chat actions and edits; the status message is removed on exit, so a
    caller that sends the result inside the block shows it before the status goes away.
    """

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
        budget: ProgressBudget | None = None,
    ) -> None:
        self._bot, self._chat_id, self._thread_id = bot, chat_id, thread_id or None
        self._lang, self._key, self._timings, self._reply_to = lang, key, timings, reply_to
        # The app passes one budget for all its chats (Services.progress_budget).
        self._budget = budget if budget is not None else ProgressBudget()
        # Progress messages yield to results in the rate limiter (see bot.telegram.ratelimit).
        self._rl: dict[str, Any] = (
            {"rate_limit_args": PROGRESS} if getattr(bot, "rate_limiter", None) else {}
        )
        self._status_id: int | None = None
        self._shown = ""
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._note = ""
        self._wake = asyncio.Event()

    @property
    def note(self) -> str:
        """A line under the status (place in line, a retry); the first one shows the status
        message at once instead of after `status_delay`."""
        return self._note

    @note.setter
    def note(self, value: str) -> None:
        self._note = value
        if value and self._status_id is None:
            self._wake.set()

    async def report(self, event: ProgressEvent) -> None:
        """The job's ProgressCallback: each event becomes the note (or the status's wording)."""
        if isinstance(event, Started):
            self._key = "status_working_edit" if event.editing else "status_working"
        self.note = note_for(self._lang, event)

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
        await self.stop()
        if self._status_id is not None:
            await self._quietly(self._bot.delete_message(self._chat_id, self._status_id))

    async def stop(self) -> None:
        """No more chat actions or edits (the status message stays until the block ends)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _text(self) -> str:
        text = t(self._lang, self._key, seconds=int(time.monotonic() - self._started))
        return f"{text}\n{self._note}" if self._note else text

    async def _run(self) -> None:
        tm = self._timings
        next_action = 0.0
        next_edit = tm.status_delay
        actions = 0
        while True:
            elapsed = time.monotonic() - self._started
            if elapsed >= next_action:
                if self._budget.take(first=actions == 0):
                    actions += 1
                    await self._quietly(
                        self._bot.send_chat_action(
                            self._chat_id,
                            ChatAction.UPLOAD_PHOTO,
                            message_thread_id=self._thread_id,
                        )
                    )
                    next_action = elapsed + tm.action_interval
                else:
                    next_action = elapsed + RETRY_SKIPPED
            if self._wake.is_set():
                self._wake.clear()
                next_edit = min(next_edit, elapsed)
            if elapsed >= next_edit:
                if self._text() == self._shown:
                    next_edit = elapsed + tm.edit_interval
                elif self._budget.take(first=self._status_id is None):
                    await self._show_status()
                    next_edit = elapsed + tm.edit_interval
                else:
                    next_edit = elapsed + RETRY_SKIPPED
            with contextlib.suppress(TimeoutError):
                pause = max(0.05, min(next_action, next_edit) - elapsed)
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _show_status(self) -> None:
        text = self._text()
        if self._status_id is None:
            msg = await self._quietly(
                self._bot.send_message(
                    self._chat_id,
                    text,
                    message_thread_id=self._thread_id,
                    reply_to_message_id=self._reply_to,
                    allow_sending_without_reply=True,
                    **self._rl,
                )
            )
            if msg is not None:
                self._status_id, self._shown = msg.message_id, text
        elif await self._quietly(
            self._bot.edit_message_text(text, self._chat_id, self._status_id, **self._rl)
        ):
            self._shown = text

    @staticmethod
    async def _quietly(call: Awaitable[T]) -> T | None:
        try:
            return await call
        except TelegramError as exc:
            log.debug("progress call failed: %s", exc)
            return None


def note_for(lang: str, event: ProgressEvent) -> str:
    """The line a progress event puts under the status ("" clears it)."""
    match event:
        case Queued(position=position):
            return t(lang, "note_queue", position=position)
        case Retrying():
            return t(lang, "note_retry")
        case TaskPolling(status=status, percent=None):
            return t(lang, "note_task", status=t(lang, f"task_{status}"))
        case TaskPolling(status=status, percent=percent):
            return t(lang, "note_task_percent", status=t(lang, f"task_{status}"), percent=percent)
        case Started() | Done():
            return ""
    return ""
