"""Pacing what Telegram counts -- messages -- with results ahead of progress messages.

PTB's AIORateLimiter puts every call that names a chat through one 30-a-second limiter: chat
actions, deletions and status edits queue with the results. With a few hundred jobs at once
(five calls per image) the last result waited over a minute, while Telegram's documented
limits are about messages: ~30 a second per bot, about one a second per chat, 20 a minute
per group (core.telegram.org/bots/faq). Here:

* messages (sends, copies, forwards, edits) go out at most `per_second` in any `window`
  seconds and at most 20 a minute per group. A message counts from the moment it may go
  until `window` after its answer: Telegram counts it somewhere in between (for an upload,
  after the upload), so counting early lets a slow upload and its followers collide;
* a message marked `rate_limit_args=PROGRESS` (status message, its edits) waits only while
  no other message waits and while its private chat has room for one more message after
  it (about one a second per chat, short bursts), and is dropped with `ProgressSkipped`
  (a TelegramError, which progress calls swallow) when it could not go within
  `progress_patience` seconds;
* other calls (chat actions, deletions, getFile, callback answers) are not paced;
* a 429 is retried after its retry_after, up to `max_retries` times; a 429 on a message
  also holds back all messages for that long;
* replicas of one bot split its budget evenly (`share`) and hold back together after a 429
  one of them saw (`on_flood`, `hold`; bot/telegram/sharing.py carries it between them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

PROGRESS = "progress"
MESSAGE_METHODS = frozenset(
    {
        "sendMessage", "sendMessageDraft", "sendPhoto", "sendDocument", "sendMediaGroup",
        "sendAnimation", "sendVideo", "sendAudio", "sendVoice", "sendVideoNote", "sendSticker",
        "sendLocation",
        "sendVenue", "sendContact", "sendPoll", "sendDice", "sendInvoice", "sendGame",
        "copyMessage", "copyMessages", "forwardMessage", "forwardMessages",
        "editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",
    }
)  # fmt: skip
GROUP_PER_MINUTE = 20
PRIVATE_RATE, PRIVATE_BURST = 1.0, 3.0  # about one message a second per chat, short bursts

Result = bool | dict[str, Any] | list[dict[str, Any]]


class ProgressSkipped(TelegramError):
    """A progress message gave way to results and was not sent."""


@dataclass(eq=False)
class _Waiter:
    chat: int | str | None
    count: int
    future: asyncio.Future[None]
    deadline: float | None  # progress messages only
    created: float = field(default_factory=time.monotonic)


class MessageRateLimiter(BaseRateLimiter[str]):
    def __init__(
        self,
        per_second: int = 30,
        window: float = 1.0,
        *,
        progress_patience: float = 1.0,
        max_retries: int = 3,
    ) -> None:
        self.per_second, self.window = per_second, window
        self._bot_per_second = per_second  # the bot's whole budget, shared by its replicas
        #: Told the seconds of every 429 on a message (the other replicas hold back too).
        self.on_flood: Callable[[float], None] | None = None
        self.progress_patience = progress_patience
        self.max_retries = max_retries
        self._sent: deque[float] = deque()  # when recent messages were answered
        self._in_flight = 0  # messages granted and not yet answered
        self._groups: dict[int | str, deque[float]] = {}
        self._private: dict[int, tuple[float, float]] = {}  # chat -> (tokens, when)
        self._results: deque[_Waiter] = deque()
        self._progress: deque[_Waiter] = deque()
        self._held_until = 0.0
        self._wake: asyncio.Event | None = None
        self._pacer: asyncio.Task[None] | None = None
        self.skipped = 0

    async def initialize(self) -> None:
        """Start the pacer. PTB calls this once per `Bot.initialize()`, which the Application
        and its Updater both call: a second call finds the pacer running and leaves it."""
        if self._pacer is not None and not self._pacer.done():
            return
        self._wake = asyncio.Event()
        self._pacer = asyncio.create_task(self._pace(), name="telegram-rate-limiter")

    async def shutdown(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None
        for waiter in (*self._results, *self._progress):
            if not waiter.future.done():
                waiter.future.set_exception(ProgressSkipped("the bot is stopping"))
        self._results.clear()
        self._progress.clear()
        self._wake = None  # later calls go unpaced, as before initialize(), instead of hanging

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> Result:
        message = endpoint in MESSAGE_METHODS
        chat = data.get("chat_id")
        count = len(data.get("media") or ()) or 1 if endpoint == "sendMediaGroup" else 1
        for attempt in range(self.max_retries + 1):
            paced = message and await self._turn(chat, count, progress=rate_limit_args == PROGRESS)
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                if paced:
                    self._answered(count)
                seconds = _seconds(exc)
                if message:  # also after the last attempt: Telegram refuses messages as long
                    self.hold(seconds)
                    if self.on_flood is not None:
                        self.on_flood(seconds)
                if attempt == self.max_retries:
                    raise
                log.info("429 on %s: retrying in %.1f s", endpoint, seconds)
                await asyncio.sleep(seconds + 0.1)
                continue
            except BaseException:
                if paced:
                    self._answered(count)
                raise
            if paced:
                self._answered(count)
            return result
        raise AssertionError("unreachable")

    def share(self, replicas: int) -> None:
        """This process is one of `replicas` sending as the bot: it takes an even part of the
        bot's messages a second (at least one)."""
        self.per_second = max(1, self._bot_per_second // max(1, replicas))
        self._kick()

    def hold(self, seconds: float) -> None:
        """No message goes for `seconds` (Telegram said so, to this process or another)."""
        self._held_until = max(self._held_until, time.monotonic() + seconds)
        self._kick()

    def _answered(self, count: int) -> None:
        self._in_flight -= count
        self._sent.extend([time.monotonic()] * count)
        self._kick()

    # -- pacing --------------------------------------------------------------------------------

    async def _turn(self, chat: Any, count: int, *, progress: bool) -> bool:
        """Wait for this message's turn; False if nothing is paced (before initialize())."""
        if self._wake is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.progress_patience if progress else None
        waiter = _Waiter(_chat_key(chat), count, loop.create_future(), deadline)
        (self._progress if progress else self._results).append(waiter)
        self._kick()
        try:
            await waiter.future
        except ProgressSkipped:
            self.skipped += 1
            raise
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self._answered(count)  # granted, but the caller will not send it
            else:
                self._discard(waiter)
            raise
        return True

    def _discard(self, waiter: _Waiter) -> None:
        for queue in (self._results, self._progress):
            with contextlib.suppress(ValueError):
                queue.remove(waiter)

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _pace(self) -> None:
        assert self._wake is not None
        while True:
            delay = self._grant()
            if self._progress and self._progress[0].deadline is not None:
                # wake to skip the first progress message on time, even while nothing else
                # happens (all slots in flight, messages held back after a 429)
                due = max(0.001, self._progress[0].deadline - time.monotonic())
                delay = due if delay is None else min(delay, due)
            self._wake.clear()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _grant(self) -> float | None:
        """Let waiters go while the budget allows; seconds until the next chance (None: idle)."""
        while True:
            now = time.monotonic()
            self._expire_progress(now)
            if not self._results and not self._progress:
                return None
            if now < self._held_until:
                return self._held_until - now
            while self._sent and now - self._sent[0] >= self.window:
                self._sent.popleft()
            waiter, wait = self._next(now)
            if waiter is None:
                return wait
            if len(self._sent) + self._in_flight + waiter.count > self.per_second:
                # the next slot frees when the oldest answer leaves the window (None: when a
                # message in flight is answered, which kicks the pacer)
                return max(0.001, self._sent[0] + self.window - now) if self._sent else None
            self._discard(waiter)
            if waiter.future.done():  # cancelled while waiting
                continue
            self._in_flight += waiter.count
            if isinstance(waiter.chat, str) or (waiter.chat is not None and waiter.chat < 0):
                if len(self._groups) > 1000:
                    self._groups = {k: v for k, v in self._groups.items() if v and now - v[-1] < 60}
                self._groups.setdefault(waiter.chat, deque()).extend([now] * waiter.count)
            elif isinstance(waiter.chat, int):
                if len(self._private) > 1000:
                    self._private = {
                        k: v for k, v in self._private.items() if now - v[1] < PRIVATE_BURST
                    }
                tokens = self._private_tokens(waiter.chat, now)
                self._private[waiter.chat] = (tokens - min(waiter.count, PRIVATE_BURST), now)
            waiter.future.set_result(None)

    def _next(self, now: float) -> tuple[_Waiter | None, float | None]:
        """The first waiter (results before progress) whose group may send now."""
        soonest: float | None = None
        for queue in (self._results, self._progress):
            for waiter in queue:
                wait = self._group_wait(waiter, now)
                if wait <= 0:
                    return waiter, None
                soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    def _private_tokens(self, chat: int, now: float) -> float:
        tokens, when = self._private.get(chat, (PRIVATE_BURST, now))
        return min(PRIVATE_BURST, tokens + (now - when) * PRIVATE_RATE)

    def _chat_wait(self, waiter: _Waiter, now: float) -> float:
        """Seconds until a progress message may go to this private chat: it leaves room for
        one more message of the chat's ~1 a second with bursts of three, so the chat's result
        never draws a 429 for it. Results are not held back here, only counted."""
        assert isinstance(waiter.chat, int)
        if waiter.deadline is None:
            return 0.0
        need = min(waiter.count + 1.0, PRIVATE_BURST)
        return max(0.0, need - self._private_tokens(waiter.chat, now)) / PRIVATE_RATE

    def _group_wait(self, waiter: _Waiter, now: float) -> float:
        chat = waiter.chat
        if chat is None:
            return 0.0
        if isinstance(chat, int) and chat > 0:
            return self._chat_wait(waiter, now)
        sends = self._groups.get(chat)
        if not sends:
            return 0.0
        while sends and now - sends[0] >= 60.0:
            sends.popleft()
        if len(sends) + waiter.count <= GROUP_PER_MINUTE:
            return 0.0
        return sends[0] + 60.0 - now

    def _expire_progress(self, now: float) -> None:
        while self._progress and self._progress[0].deadline is not None:
            first = self._progress[0]
            if first.deadline is not None and first.deadline > now and not first.future.done():
                break
            self._progress.popleft()
            if not first.future.done():
                first.future.set_exception(ProgressSkipped("progress message skipped"))


def _chat_key(chat: Any) -> int | str | None:
    if chat is None:
        return None
    try:
        return int(chat)
    except (TypeError, ValueError):
        return str(chat)


def _seconds(exc: RetryAfter) -> float:
    value: Any = getattr(exc, "_retry_after", None)  # a timedelta in PTB 22 (the property warns)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(exc.retry_after)  # type: ignore[arg-type]
