"""bot.telegram.ratelimit.MessageRateLimiter, driven directly with fake callbacks.

The limiter reads `time.monotonic()` through its module; these tests give it a clock that only
moves when a test says so, so which calls went and in what order is deterministic. Negative
checks ("nothing more went") wait a little real time: with the clock frozen, nothing more
may ever go, so a slow machine can only make them less sensitive, never flaky.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import RetryAfter, TelegramError

from bot.telegram import ratelimit
from bot.telegram.ratelimit import GROUP_PER_MINUTE, PROGRESS, MessageRateLimiter, ProgressSkipped
from tests.unit.fakeclock import Clock, install

# PTB's own RetryAfter warns about its retry_after's future type when constructed.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, ratelimit, 1000.0)


class _Asyncio:
    """The asyncio module as the limiter sees it, with retry sleeps recorded and made instant."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fast_sleep(monkeypatch: pytest.MonkeyPatch) -> _Asyncio:
    fake = _Asyncio()
    monkeypatch.setattr(ratelimit, "asyncio", fake)
    return fake


async def until(cond: Callable[[], bool]) -> None:
    """Wait (real time) until cond() holds; fail after two seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


async def done(task: Awaitable[Any]) -> Any:
    """The task's result; fail instead of hanging."""
    return await asyncio.wait_for(task, 2.0)


async def quiet(seconds: float = 0.05) -> None:
    """Let the loop (and the limiter's pacer) run for a while."""
    await asyncio.sleep(seconds)


class Harness:
    """Starts Bot API calls through the limiter; records which callbacks ran, in order."""

    def __init__(self, limiter: MessageRateLimiter) -> None:
        self.limiter = limiter
        self.started: list[str] = []
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def call(
        self,
        name: str,
        endpoint: str = "sendMessage",
        chat: int | str | None = 1,
        *,
        progress: bool = False,
        gate: asyncio.Event | None = None,
        failures: Iterator[BaseException] | None = None,
        data: dict[str, Any] | None = None,
    ) -> asyncio.Task[Any]:
        async def callback() -> dict[str, Any]:
            self.started.append(name)
            if failures is not None:
                exc = next(failures, None)
                if exc is not None:
                    raise exc
            if gate is not None:
                await gate.wait()
            return {"name": name}

        payload = {"chat_id": chat} if data is None else data
        coro: Awaitable[Any] = self.limiter.process_request(
            callback, (), {}, endpoint, payload, PROGRESS if progress else None
        )
        task = asyncio.ensure_future(coro)
        self.tasks[name] = task
        return task

    def kick(self) -> None:
        self.limiter._kick()

    def advance(self, clock: Clock, seconds: float) -> None:
        clock.now += seconds
        self.kick()


@pytest.fixture
async def limiter() -> Any:
    """A factory of initialized limiters, each wrapped in a Harness; all shut down after the
    test, and the calls it left behind collected."""
    made: list[Harness] = []

    async def make(*args: Any, **kwargs: Any) -> Harness:
        lim = MessageRateLimiter(*args, **kwargs)
        await lim.initialize()
        made.append(Harness(lim))
        return made[-1]

    yield make
    for h in made:
        await h.limiter.shutdown()
        for task in h.tasks.values():
            task.cancel()
        await asyncio.gather(*h.tasks.values(), return_exceptions=True)


async def test_messages_go_at_most_per_second_in_a_window(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=3, window=1.0)
    tasks = [h.call(f"m{i}", chat=100 + i) for i in range(7)]
    await until(lambda: len(h.started) == 3)
    await quiet()
    assert h.started == ["m0", "m1", "m2"]  # first come, first served; the rest wait
    clock.now += 0.5
    h.kick()
    await quiet()
    assert len(h.started) == 3  # the window has not passed since their answers
    h.advance(clock, 0.5)
    await until(lambda: len(h.started) == 6)
    await quiet()
    assert h.started == [f"m{i}" for i in range(6)]
    h.advance(clock, 1.0)
    results = await done(asyncio.gather(*tasks))
    assert [r["name"] for r in results] == [f"m{i}" for i in range(7)]


async def test_a_message_in_flight_holds_its_slot_until_window_after_its_answer(
    clock: Clock, limiter: Any
) -> None:
    h = await limiter(per_second=2, window=1.0)
    gate = asyncio.Event()
    slow = [h.call("slow1", gate=gate), h.call("slow2", gate=gate)]
    third = h.call("third")
    await until(lambda: len(h.started) == 2)
    h.advance(clock, 10.0)  # long past any window: the two uploads still count
    await quiet()
    assert h.started == ["slow1", "slow2"]
    gate.set()
    await done(asyncio.gather(*slow))
    await quiet()
    assert "third" not in h.started  # counted until `window` after the answer
    h.advance(clock, 1.0)
    assert (await done(third))["name"] == "third"


@pytest.mark.parametrize(
    "endpoint",
    ["sendChatAction", "deleteMessage", "getFile", "answerCallbackQuery", "setMessageReaction"],
)
async def test_other_calls_are_not_paced(clock: Clock, limiter: Any, endpoint: str) -> None:
    h = await limiter(per_second=1, window=1.0)
    gate = asyncio.Event()
    upload = h.call("upload", gate=gate)
    waiting = h.call("waiting-message")
    await until(lambda: h.started == ["upload"])
    others = [h.call(f"other{i}", endpoint) for i in range(5)]
    results = await asyncio.wait_for(asyncio.gather(*others), 2.0)
    assert [r["name"] for r in results] == [f"other{i}" for i in range(5)]
    assert "waiting-message" not in h.started
    gate.set()
    await done(upload)
    h.advance(clock, 1.0)
    await done(waiting)


@pytest.mark.parametrize(
    "endpoint",
    ["sendPhoto", "sendDocument", "editMessageText", "editMessageCaption", "copyMessage"],
)
async def test_every_kind_of_message_is_paced(clock: Clock, limiter: Any, endpoint: str) -> None:
    h = await limiter(per_second=1, window=1.0)
    await done(h.call("first", endpoint))
    h.call("second", endpoint)
    await quiet()
    assert h.started == ["first"]
    h.advance(clock, 1.0)
    await done(h.tasks["second"])


async def test_results_go_before_waiting_progress_messages(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=1, window=1.0, progress_patience=100.0)
    await done(h.call("first"))
    h.call("status", progress=True)
    h.call("edit", "editMessageText", progress=True)
    h.call("photo1", "sendPhoto")
    h.call("photo2", "sendPhoto")
    await quiet()
    for n in range(2, 6):
        h.advance(clock, 1.0)
        await until(lambda n=n: len(h.started) == n)
    assert h.started == ["first", "photo1", "photo2", "status", "edit"]
    await done(asyncio.gather(*h.tasks.values()))
    assert h.limiter.skipped == 0


async def test_a_progress_message_goes_at_once_when_budget_allows(
    clock: Clock, limiter: Any
) -> None:
    h = await limiter(per_second=5, window=1.0, progress_patience=0.5)
    assert (await done(h.call("status", progress=True)))["name"] == "status"
    assert h.limiter.skipped == 0


async def test_a_progress_message_that_cannot_go_in_time_is_skipped(
    clock: Clock, limiter: Any
) -> None:
    h = await limiter(per_second=1, window=1.0, progress_patience=0.5)
    await done(h.call("first"))
    status = h.call("status", progress=True)
    result = h.call("photo", "sendPhoto")
    await quiet()
    h.advance(clock, 0.5)
    with pytest.raises(ProgressSkipped):
        await done(status)
    assert isinstance(ProgressSkipped("x"), TelegramError)  # progress calls swallow these
    assert h.limiter.skipped == 1
    h.advance(clock, 0.5)
    assert (await done(result))["name"] == "photo"
    assert h.started == ["first", "photo"]  # the skipped one never reached Telegram


async def test_progress_gives_up_after_patience_while_all_slots_are_in_flight(
    limiter: Any,
) -> None:
    """Real time here: nothing else happens (no answer, no new call) to wake the limiter, yet
    the status message must be skipped after its patience, not when an upload ends."""
    h = await limiter(per_second=1, window=60.0, progress_patience=0.02)
    gate = asyncio.Event()
    upload = h.call("upload", "sendPhoto", gate=gate)
    await until(lambda: h.started == ["upload"])
    status = h.call("status", progress=True)
    with pytest.raises(ProgressSkipped):
        await asyncio.wait_for(status, 2.0)
    assert h.started == ["upload"]
    gate.set()
    await done(upload)


async def test_progress_gives_up_after_patience_while_messages_are_held_back(
    fast_sleep: _Asyncio, limiter: Any
) -> None:
    """Real clock, instant retry sleeps: a 429 holds messages back for a minute; a status
    message waiting behind it is skipped after its patience, not after the minute."""
    h = await limiter(per_second=5, window=0.01, progress_patience=0.02, max_retries=1)
    flood = h.call("flooded", failures=iter([RetryAfter(60)]))
    await until(lambda: fast_sleep.sleeps == [60.1])
    status = h.call("status", progress=True)
    with pytest.raises(ProgressSkipped):
        await asyncio.wait_for(status, 2.0)
    assert h.started == ["flooded"]  # its retry waits for the minute too
    flood.cancel()


async def test_groups_get_twenty_messages_a_minute(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=100, window=1.0)
    group = [h.call(f"g{i}", chat=-100) for i in range(GROUP_PER_MINUTE + 3)]
    await until(lambda: len(h.started) == GROUP_PER_MINUTE)
    # other chats are not stuck behind the full group
    others = [h.call("private", chat=7), h.call("other-group", chat=-200)]
    await asyncio.wait_for(asyncio.gather(*others), 2.0)
    h.advance(clock, 30.0)
    await quiet()
    assert [n for n in h.started if n.startswith("g")] == [f"g{i}" for i in range(20)]
    h.advance(clock, 30.0)
    await asyncio.wait_for(asyncio.gather(*group), 2.0)
    assert [n for n in h.started if n.startswith("g")] == [f"g{i}" for i in range(23)]


async def test_channel_usernames_count_as_groups(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=100, window=1.0)
    for i in range(GROUP_PER_MINUTE + 1):
        h.call(f"c{i}", chat="@somechannel")
    await until(lambda: len(h.started) == GROUP_PER_MINUTE)
    await quiet()
    assert len(h.started) == GROUP_PER_MINUTE
    h.advance(clock, 60.0)
    await until(lambda: len(h.started) == GROUP_PER_MINUTE + 1)


async def test_private_chats_have_no_per_minute_limit(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=100, window=1.0)
    calls = [h.call(f"p{i}", chat=42) for i in range(GROUP_PER_MINUTE + 10)]
    await asyncio.wait_for(asyncio.gather(*calls), 2.0)


async def test_a_media_group_counts_each_item(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=5, window=1.0)
    media = [{"type": "photo", "media": f"attach://f{i}"} for i in range(4)]
    await done(h.call("album", "sendMediaGroup", data={"chat_id": 1, "media": media}))
    h.call("m1")
    h.call("m2")
    await until(lambda: len(h.started) == 2)
    await quiet()
    assert h.started == ["album", "m1"]  # 4 + 1 = 5 in the window
    h.advance(clock, 1.0)
    await done(h.tasks["m2"])


async def test_calls_before_initialize_are_not_paced() -> None:
    h = Harness(MessageRateLimiter(per_second=1, window=60.0))
    results = await asyncio.wait_for(asyncio.gather(*(h.call(f"m{i}") for i in range(5))), 2.0)
    assert len(results) == 5


async def test_retry_after_is_retried_and_holds_back_messages(
    clock: Clock, fast_sleep: _Asyncio, limiter: Any
) -> None:
    h = await limiter(per_second=10, window=1.0, max_retries=3)
    failures = iter([RetryAfter(30), RetryAfter(timedelta(seconds=30))])
    flooded = h.call("flooded", failures=failures)
    await until(lambda: fast_sleep.sleeps == [30.1])
    await quiet()
    # held back: neither the retry nor any other message goes for 30 s
    h.call("other")
    action = h.call("action", "sendChatAction")
    assert (await asyncio.wait_for(action, 2.0))["name"] == "action"  # not a message
    clock.now += 29.0
    h.kick()
    await quiet()
    assert h.started == ["flooded", "action"]
    h.advance(clock, 1.0)
    await until(lambda: fast_sleep.sleeps == [30.1, 30.1])  # the retry got a second 429
    await quiet()
    assert h.started == ["flooded", "action", "flooded", "other"]  # the retry was queued first
    h.advance(clock, 30.0)
    assert (await done(flooded))["name"] == "flooded"
    assert h.started.count("flooded") == 3
    await done(h.tasks["other"])


async def test_retry_after_gives_up_after_max_retries(fast_sleep: _Asyncio, limiter: Any) -> None:
    h = await limiter(per_second=10, window=0.01, max_retries=2)
    failures = iter([RetryAfter(0)] * 10)
    with pytest.raises(RetryAfter):
        await asyncio.wait_for(h.call("doomed", failures=failures), 2.0)
    assert h.started == ["doomed"] * 3  # the call and two retries
    # its slots were given back: other messages still go
    assert (await asyncio.wait_for(h.call("next"), 2.0))["name"] == "next"


async def test_the_last_retry_after_still_holds_back_messages(
    clock: Clock, fast_sleep: _Asyncio, limiter: Any
) -> None:
    h = await limiter(per_second=10, window=1.0, max_retries=0)
    with pytest.raises(RetryAfter):
        await done(h.call("flooded", failures=iter([RetryAfter(30)])))
    h.call("next")
    clock.now += 29.0
    h.kick()
    await quiet()
    assert h.started == ["flooded"]  # Telegram would refuse it as well
    h.advance(clock, 1.0)
    await done(h.tasks["next"])


async def test_retry_after_on_other_calls_does_not_hold_messages(
    clock: Clock, fast_sleep: _Asyncio, limiter: Any
) -> None:
    h = await limiter(per_second=10, window=1.0, max_retries=1)
    action = h.call("action", "sendChatAction", failures=iter([RetryAfter(30)]))
    await until(lambda: fast_sleep.sleeps == [30.1])
    assert (await asyncio.wait_for(h.call("message"), 2.0))["name"] == "message"
    assert (await done(action))["name"] == "action"


async def test_other_errors_free_the_slot(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=1, window=1.0)
    with pytest.raises(TelegramError, match="boom"):
        await done(h.call("bad", failures=iter([TelegramError("boom")])))
    h.call("next")
    await quiet()
    assert h.started == ["bad"]  # the failed message still counts in its window
    h.advance(clock, 1.0)
    await done(h.tasks["next"])


async def test_shutdown_fails_waiters(clock: Clock) -> None:
    limiter = MessageRateLimiter(per_second=1, window=1.0, progress_patience=100.0)
    await limiter.initialize()
    h = Harness(limiter)
    await done(h.call("first"))
    waiting = [h.call("result"), h.call("status", progress=True)]
    await quiet()
    await limiter.shutdown()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 2.0)
    assert all(isinstance(o, ProgressSkipped) for o in outcomes)
    assert h.started == ["first"]


async def test_calls_after_shutdown_do_not_hang(clock: Clock) -> None:
    limiter = MessageRateLimiter(per_second=1, window=1.0)
    await limiter.initialize()
    h = Harness(limiter)
    await done(h.call("before"))
    await limiter.shutdown()
    assert (await asyncio.wait_for(h.call("after"), 2.0))["name"] == "after"


async def test_shutdown_and_initialize_again(clock: Clock) -> None:
    limiter = MessageRateLimiter(per_second=1, window=1.0)
    await limiter.initialize()
    await limiter.shutdown()
    await limiter.initialize()
    h = Harness(limiter)
    try:
        await asyncio.wait_for(h.call("a"), 2.0)
        h.call("b")
        await quiet()
        assert h.started == ["a"]
        h.advance(clock, 1.0)
        await asyncio.wait_for(h.tasks["b"], 2.0)
    finally:
        await limiter.shutdown()


async def test_initialize_twice_keeps_one_pacer() -> None:
    # PTB's Application and Updater both initialize the same bot, and so the limiter
    limiter = MessageRateLimiter()
    await limiter.initialize()
    pacer = limiter._pacer
    await limiter.initialize()
    try:
        assert limiter._pacer is pacer
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert names.count("telegram-rate-limiter") == 1
    finally:
        await limiter.shutdown()


async def test_a_cancelled_waiter_leaves_no_budget_behind(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=1, window=1.0)
    await done(h.call("first"))
    waiting = h.call("cancelled")
    await quiet()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await done(waiting)
    h.call("next")
    h.advance(clock, 1.0)
    await until(lambda: h.started == ["first", "next"])
    h.call("after")
    await quiet()
    assert h.started == ["first", "next"]  # one a window: no slot was lost or gained
    h.advance(clock, 1.0)
    await done(h.tasks["after"])


async def test_a_waiter_cancelled_right_after_its_grant_counts_as_sent(
    clock: Clock, limiter: Any
) -> None:
    h = await limiter(per_second=1, window=1.0)
    await done(h.call("first"))
    granted = h.call("granted")
    await quiet()
    clock.now += 1.0
    h.limiter._grant()  # the pacer lets it go ...
    granted.cancel()  # ... and its caller is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await done(granted)
    assert h.limiter._in_flight == 0
    h.call("next")
    await quiet()
    assert h.started == ["first"]  # the granted slot was used up (counted, conservatively)
    h.advance(clock, 1.0)
    await done(h.tasks["next"])


async def test_a_progress_waiter_cancelled_as_it_is_skipped_gives_back_nothing(
    clock: Clock, limiter: Any
) -> None:
    """Skipped and cancelled in the same turn of the loop: it was never granted, so it must
    not be counted as answered (that would free a slot that was never taken)."""
    h = await limiter(per_second=1, window=1.0, progress_patience=0.5)
    await done(h.call("first"))
    status = h.call("status", progress=True)
    await quiet()
    clock.now += 0.5
    h.limiter._grant()  # the pacer skips it ...
    status.cancel()  # ... while its job is being cancelled
    with pytest.raises((asyncio.CancelledError, ProgressSkipped)):
        await done(status)
    assert h.limiter._in_flight == 0
    h.advance(clock, 0.5)
    h.call("a")
    h.call("b")
    await until(lambda: "a" in h.started)
    await quiet()
    assert h.started == ["first", "a"]  # still one a window
    h.advance(clock, 1.0)
    await done(h.tasks["b"])


async def test_progress_leaves_its_private_chat_room_for_a_result(
    clock: Clock, limiter: Any
) -> None:
    """About one message a second per chat with bursts of three: a status message or edit
    goes only while its chat could still take a result right after it."""
    h = await limiter(per_second=100, window=1.0, progress_patience=100.0)
    await done(asyncio.gather(h.call("note", chat=5), h.call("photo1", "sendPhoto", chat=5)))
    waiting = h.call("edit", "editMessageText", chat=5, progress=True)
    elsewhere = h.call("status", chat=6, progress=True)
    assert (await done(elsewhere))["name"] == "status"  # another chat is not held back
    await quiet()
    assert "edit" not in h.started  # one message's room left in chat 5: kept for a result
    # a result is never held back for its chat's sake
    assert (await done(h.call("photo2", "sendPhoto", chat=5)))["name"] == "photo2"
    h.advance(clock, 1.0)
    await quiet()
    assert "edit" not in h.started  # still only one message's room (0 + 1 a second)
    h.advance(clock, 1.0)
    assert (await done(waiting))["name"] == "edit"
    assert h.limiter.skipped == 0


async def test_a_progress_message_its_chat_cannot_take_in_time_is_skipped(
    clock: Clock, limiter: Any
) -> None:
    h = await limiter(per_second=100, window=1.0, progress_patience=0.5)
    for i in range(3):
        await done(h.call(f"photo{i}", "sendPhoto", chat=5))
    edit = h.call("edit", "editMessageText", chat=5, progress=True)
    await quiet()
    h.advance(clock, 0.6)
    with pytest.raises(ProgressSkipped):
        await done(edit)
    assert h.started == ["photo0", "photo1", "photo2"]


async def test_replicas_share_the_bots_budget_evenly(clock: Clock, limiter: Any) -> None:
    h = await limiter(per_second=30, window=1.0)
    h.limiter.share(2)  # two replicas send as the bot: 15 a second each
    [h.call(f"m{i}", chat=100 + i) for i in range(20)]
    await until(lambda: len(h.started) == 15)
    await quiet()
    assert len(h.started) == 15
    h.limiter.share(1)  # the other one left: the whole budget again
    await until(lambda: len(h.started) == 20)
    h.limiter.share(100)
    assert h.limiter.per_second == 1  # never nothing at all


async def test_a_flood_pause_seen_by_one_replica_holds_them_all(
    clock: Clock, limiter: Any, fast_sleep: _Asyncio
) -> None:
    seen, other = await limiter(), await limiter()
    told: list[float] = []
    seen.limiter.on_flood = told.append
    seen.call("flooded", failures=iter([RetryAfter(12)]))
    await until(lambda: told == [12.0])
    other.limiter.hold(told[0])  # what the heartbeat carries to the other replica
    other.call("held", chat=2)
    await quiet()
    assert other.started == []
    other.advance(clock, 12.5)
    await until(lambda: other.started == ["held"])
