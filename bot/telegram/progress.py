"""While a job runs: the upload_photo chat action while it draws, or one status message with
seconds and its place in line, edited sparingly. In a private chat the status can be a live
draft instead (sendMessageDraft, Bot API 9.5): the same text, animated in place, and replaced
by the result when it is sent, so it needs no deletion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError

from bot.i18n import t
from bot.services.types import (
    Done,
    ProgressEvent,
    Queued,
    Retrying,
    Started,
    TaskPolling,
    Thinking,
)
from bot.telegram.ratelimit import PROGRESS

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ProgressTimings:
    """Seconds. The chat action ("sending a photo…"), renewed while the job draws, is the
    feedback of a job that draws; the status message follows only when a job takes longer than
    a usual upstream answer (5-15 s) or has something to say (place in line, a retry, a thought),
    and from then on it alone speaks: a shown status makes chat actions redundant. Usual
    results then cost no message but the photo (chat actions are not messages to Telegram's
    flood limits). Edits come at most every `edit_interval`, the
    gap doubling after each edit up to `max_edit_interval`, so a long job or a long wait costs
    a few edits, not one every few seconds.
    """

    status_delay: float = 15.0
    # the first chat action waits this long once drawing starts: the upstream request leaves
    # first, and a job that answers at once needs none
    action_delay: float = 0.2
    action_interval: float = 4.0
    edit_interval: float = 5.0
    max_edit_interval: float = 60.0
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
        # False once the Bot API server said it has no sendMessageDraft (an older one).
        self.drafts = True

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
# Telegram shows a draft for about 30 s: it is sent again before then, even unchanged.
DRAFT_REFRESH = 25.0


class Progress:
    """Async context manager; progress calls never fail the job they accompany.

    `stop()` ends the chat actions and edits; the status message is removed on exit, so a
    caller that sends the result inside the block shows it before the status goes away.
    Chat actions ("sending a photo…") are sent only while the job is drawing (after `Started`)
    and no status message is shown; a place in line is edited in only when it has halved.
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
        status_id: int | None = None,
        draft_id: int | None = None,
    ) -> None:
        self._bot, self._chat_id, self._thread_id = bot, chat_id, thread_id or None
        self._lang, self._key, self._timings, self._reply_to = lang, key, timings, reply_to
        # The app passes one budget for all its chats (Services.progress_budget).
        self._budget = budget if budget is not None else ProgressBudget()
        # Progress messages yield to results in the rate limiter (see bot.telegram.ratelimit).
        self._rl: dict[str, Any] = (
            {"rate_limit_args": PROGRESS} if getattr(bot, "rate_limiter", None) else {}
        )
        # A message already in the chat (the chat's "queued" note) becomes the status message.
        self._status_id = status_id
        # A live draft (private chats) stands in for the status message; None: a message.
        self._draft_id = draft_id if status_id is None and self._budget.drafts else None
        self._draft_at: float | None = None  # when the draft was last sent
        self._shown = ""
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._note = ""
        self._drawing = False
        self._place: int | None = None  # the latest place in line, while waiting
        self._shown_place: int | None = None  # the place the status message shows
        self._shown_note: str | None = None  # None: not shown by this object yet
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def note(self) -> str:
        """A line under the status (place in line, a retry); the first one shows the status
        message at once instead of after `status_delay`."""
        return self._note

    @note.setter
    def note(self, value: str) -> None:
        self._note = value
        self._wake.set()

    async def report(self, event: ProgressEvent) -> None:
        """The job's ProgressCallback: each event becomes the note (or the status's wording)."""
        match event:
            case Queued(position=position):
                self._place, self._drawing = position, False
                self._key = "status_waiting"
            case Started(editing=editing):
                self._key = "status_working_edit" if editing else "status_working"
                self._place, self._drawing = None, True
            case Retrying() | TaskPolling():
                self._place, self._drawing = None, True
            case Thinking():
                self._place, self._drawing = None, True
                if not thought_line(event.text):
                    return  # nothing to show: the line before stays
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
            # The flag ends the loop even if wait_for swallows the cancellation, which it can
            # when the wake event fires at the same moment (Python 3.11).
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _text(self) -> str:
        text = t(self._lang, self._key, seconds=int(time.monotonic() - self._started))
        return f"{text}\n{self._note}" if self._note else text

    @property
    def _showing(self) -> bool:
        """A status is shown: the status message, or a live draft."""
        return self._status_id is not None or self._draft_at is not None

    def _worth_an_edit(self) -> bool:
        """A wait is edited only when its place has halved (the seconds alone don't matter
        while waiting); anything else that changed the text is worth showing. A draft is
        also sent again before Telegram lets it fade."""
        if self._draft_at is not None and time.monotonic() - self._draft_at >= DRAFT_REFRESH:
            return True
        if self._text() == self._shown:
            return False
        if self._waiting_on():
            assert self._place is not None and self._shown_place is not None
            return self._place <= self._shown_place // 2
        return True

    def _waiting_on(self) -> bool:
        """Still waiting, and the status shows the wait: only the place has changed."""
        return self._place is not None and self._shown_place is not None

    def _acting(self) -> bool:
        return self._drawing and not self._showing

    async def _run(self) -> None:
        tm = self._timings
        next_action = 0.0
        next_edit = tm.status_delay
        gap = tm.edit_interval
        actions = 0
        drawing_seen = False
        while not self._stopping:
            elapsed = time.monotonic() - self._started
            if self._wake.is_set():
                self._wake.clear()
                if not self._showing:
                    if self._note:
                        next_edit = min(next_edit, elapsed)
                elif self._note != self._shown_note and not self._waiting_on():
                    # a new stage (drawing after a wait, a retry): said within edit_interval,
                    # unless the result comes first
                    next_edit = min(next_edit, elapsed + tm.edit_interval)
            if self._acting() and not drawing_seen:
                drawing_seen = True
                next_action = max(next_action, elapsed + tm.action_delay)
            if self._acting() and elapsed >= next_action:
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
            if elapsed >= next_edit:
                if self._showing and not self._worth_an_edit():
                    next_edit = elapsed + gap
                elif self._budget.take(first=not self._showing):
                    if self._showing:
                        top = tm.max_edit_interval
                        gap = min(gap * 2, top if self._draft_at is None else DRAFT_REFRESH)
                    await self._show_status()
                    next_edit = elapsed + gap
                else:
                    next_edit = elapsed + RETRY_SKIPPED
            due = min(next_edit, next_action) if self._acting() else next_edit
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, due - elapsed))

    async def _show_status(self) -> None:
        text = self._text()
        if self._draft_id is not None:
            try:
                await self._bot.send_message_draft(
                    self._chat_id,
                    self._draft_id,
                    text,
                    message_thread_id=self._thread_id,
                    **self._rl,
                )
            except (BadRequest, Forbidden, InvalidToken) as exc:
                # Refused, not just late: this job shows a status message instead, and a
                # server without the method (404) is not asked again.
                log.debug("draft refused: %s", exc)
                if isinstance(exc, InvalidToken):
                    self._budget.drafts = False
                if self._draft_at is None:
                    self._draft_id = None
                    await self._show_status()
            except TelegramError as exc:
                log.debug("progress call failed: %s", exc)  # skipped or late: tried again
            else:
                self._draft_at = time.monotonic()
                self._shown, self._shown_place, self._shown_note = text, self._place, self._note
            return
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
                self._shown_place, self._shown_note = self._place, self._note
        elif await self._quietly(
            self._bot.edit_message_text(text, self._chat_id, self._status_id, **self._rl)
        ):
            self._shown, self._shown_place, self._shown_note = text, self._place, self._note

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
        case Thinking(text=text):
            line = thought_line(text)
            return t(lang, "note_thinking", thought=line) if line else ""
        case Started() | Done():
            return ""
    return ""


THOUGHT_CHARS = 80  # a thought line longer than this is cut: the status stays a few lines
# A thought summary starts with its header in bold ("**Planning the layout**"), often alone.
_THOUGHT_HEADER = re.compile(r"\s*(?:#+\s*)?\*\*(.+?)\*\*", re.DOTALL)
_MARKUP = " \t*_`#>-"


def thought_line(text: str) -> str:
    """The line of a thought summary the status shows: its bold header, else its first line,
    without markdown, cut to THOUGHT_CHARS, ending in "…" (the model is still at it)."""
    found = _THOUGHT_HEADER.match(text)
    lines = [found.group(1)] if found else text.splitlines()
    line = next((ln.strip(_MARKUP) for ln in lines if ln.strip(_MARKUP)), "")
    line = " ".join(line.split()).rstrip(".…:;,")
    if not line:
        return ""
    if len(line) > THOUGHT_CHARS - 1:
        line = line[: THOUGHT_CHARS - 1].rstrip()
    return f"{line}…"
