"""bot.telegram.progress: the shared ProgressBudget (on a clock the test moves) and the order
of Progress's calls on a fake bot: the result goes out before the status message is removed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.error import TelegramError

from bot.services.types import Done, Queued, Started
from bot.telegram import progress as progress_module
from bot.telegram.progress import Progress, ProgressBudget, ProgressTimings
from bot.telegram.ratelimit import PROGRESS
from tests.unit.fakeclock import Clock, install


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, progress_module, 500.0)


# --- ProgressBudget -------------------------------------------------------------------------


def takes(budget: ProgressBudget, *, first: bool, tries: int = 1000) -> int:
    """How many calls in a row the budget lets through (stops at the first refusal)."""
    for n in range(tries):
        if not budget.take(first=first):
            return n
    return tries


def test_first_signals_may_use_the_whole_bucket(clock: Clock) -> None:
    budget = ProgressBudget(rate=1.0, burst=10.0)
    assert takes(budget, first=True) == 10
    assert budget.skipped == 1


def test_renewals_use_only_the_upper_half(clock: Clock) -> None:
    budget = ProgressBudget(rate=1.0, burst=10.0)
    assert takes(budget, first=False) == 6  # 10 -> 4 tokens: below half after six
    assert budget.skipped == 1
    assert not budget.take(first=False)
    assert takes(budget, first=True) == 4  # what is left is kept for new jobs' first signal
    assert budget.skipped == 3


def test_the_bucket_refills_at_rate_up_to_burst(clock: Clock) -> None:
    budget = ProgressBudget(rate=2.0, burst=10.0)
    assert takes(budget, first=True) == 10
    clock.now += 1.0  # two tokens
    assert not budget.take(first=False)
    assert takes(budget, first=True) == 2
    clock.now += 0.25  # half a token: not enough
    assert not budget.take(first=True)
    clock.now += 0.25
    assert budget.take(first=True)
    clock.now += 3600.0  # never more than burst
    assert takes(budget, first=True) == 10


def test_renewals_come_back_once_the_bucket_is_half_full(clock: Clock) -> None:
    budget = ProgressBudget(rate=1.0, burst=10.0)
    assert takes(budget, first=True) == 10
    clock.now += 4.0
    assert not budget.take(first=False)
    clock.now += 1.0  # five tokens: half of burst
    assert budget.take(first=False)
    assert not budget.take(first=False)


def test_skipped_counts_every_refusal(clock: Clock) -> None:
    budget = ProgressBudget(rate=1.0, burst=2.0)
    results = [budget.take(first=True) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert budget.skipped == 3


# --- Progress on a fake bot -----------------------------------------------------------------


class FakeBot:
    """Records the Bot API calls Progress makes, in order."""

    def __init__(self, *, rate_limiter: object = None, fail: set[str] | None = None) -> None:
        self.rate_limiter = rate_limiter
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail or set()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise TelegramError(f"{name} failed")

    async def send_chat_action(self, chat_id: int, action: str, **kw: Any) -> bool:
        self._record("send_chat_action", chat_id=chat_id, action=action, **kw)
        return True

    async def send_message(self, chat_id: int, text: str, **kw: Any) -> Any:
        self._record("send_message", chat_id=chat_id, text=text, **kw)
        return SimpleNamespace(message_id=77)

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, **kw: Any) -> Any:
        self._record("edit_message_text", chat_id=chat_id, message_id=message_id, text=text, **kw)
        return True

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        self._record("delete_message", chat_id=chat_id, message_id=message_id)
        return True

    async def send_photo(self, chat_id: int) -> None:
        self._record("send_photo", chat_id=chat_id)


SHOW_AT_ONCE = ProgressTimings(
    status_delay=0.0, action_delay=0.0, action_interval=60.0, edit_interval=60.0
)


async def until(cond: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def make(bot: FakeBot, timings: ProgressTimings = SHOW_AT_ONCE, **kw: Any) -> Progress:
    kw.setdefault("budget", ProgressBudget())
    return Progress(
        bot,  # type: ignore[arg-type]
        -1005,
        0,
        lang="en",
        key="status_working",
        timings=timings,
        reply_to=9,
        **kw,
    )


async def test_the_result_goes_before_the_status_message_is_deleted() -> None:
    bot = FakeBot()
    async with make(bot) as progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
        await progress.stop()
        stopped = len(bot.calls)
        await asyncio.sleep(0.1)
        assert len(bot.calls) == stopped  # no chat actions or edits after stop()
        assert "delete_message" not in bot.names()  # the status stays until the block ends
        await bot.send_photo(-1005)
    assert bot.names() == ["send_chat_action", "send_message", "send_photo", "delete_message"]
    assert bot.calls[-1][1] == {"chat_id": -1005, "message_id": 77}
    status = bot.calls[1][1]
    assert status["reply_to_message_id"] == 9
    assert status["text"].startswith("⏳")
    assert "rate_limit_args" not in status  # this bot has no rate limiter


async def test_exit_without_stop_also_deletes_the_status() -> None:
    bot = FakeBot()
    async with make(bot) as progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
    assert bot.names()[-1] == "delete_message"
    assert bot.names().count("delete_message") == 1


async def test_stop_twice_is_harmless() -> None:
    bot = FakeBot()
    async with make(bot) as progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
        await progress.stop()
        await progress.stop()
    assert bot.names()[-1] == "delete_message"


async def test_no_status_message_no_deletion() -> None:
    bot = FakeBot()
    late = ProgressTimings(status_delay=60.0, action_interval=60.0, edit_interval=60.0)
    async with make(bot, late) as progress:
        await progress.report(Started())
        await until(lambda: "send_chat_action" in bot.names())
        await progress.stop()
        await bot.send_photo(-1005)
    assert bot.names() == ["send_chat_action", "send_photo"]


async def test_a_failed_status_message_is_not_deleted_and_fails_nothing() -> None:
    bot = FakeBot(fail={"send_message", "send_chat_action"})
    async with make(bot) as progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
        await progress.stop()
    assert "delete_message" not in bot.names()


async def test_a_note_shows_the_status_at_once() -> None:
    bot = FakeBot()
    late = ProgressTimings(status_delay=60.0, action_interval=60.0, edit_interval=60.0)
    async with make(bot, late) as progress:
        await progress.report(Started())
        await until(lambda: "send_chat_action" in bot.names())
        progress.note = "third in line"
        await until(lambda: "send_message" in bot.names())
        await progress.stop()
    text = bot.calls[1][1]["text"]
    assert text.endswith("\nthird in line")
    assert bot.names()[-1] == "delete_message"


async def test_progress_messages_are_marked_for_the_rate_limiter() -> None:
    bot = FakeBot(rate_limiter=object())
    timings = ProgressTimings(
        status_delay=0.0, action_delay=0.0, action_interval=60.0, edit_interval=0.0
    )
    progress = make(bot, timings)
    async with progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
        progress.note = "a change to show"
        await until(lambda: "edit_message_text" in bot.names())
        await progress.stop()
    by_name = {name: kw for name, kw in bot.calls}
    assert by_name["send_message"]["rate_limit_args"] == PROGRESS
    assert by_name["edit_message_text"]["rate_limit_args"] == PROGRESS
    assert "rate_limit_args" not in by_name["send_chat_action"]
    assert by_name["edit_message_text"]["text"].endswith("\na change to show")


async def test_an_empty_budget_skips_progress_but_not_the_deletion() -> None:
    bot = FakeBot()
    budget = ProgressBudget(rate=0.0, burst=1.0)  # one first signal, never refilled
    async with make(bot, budget=budget) as progress:
        await progress.report(Started())
        await until(lambda: "send_chat_action" in bot.names())
        await asyncio.sleep(0.05)
        await progress.stop()
    assert bot.names() == ["send_chat_action"]  # no token left for the status message
    assert budget.skipped >= 1


async def test_the_status_message_may_use_the_low_end_of_the_bucket() -> None:
    """Renewals leave the lower half to first signals: a new job still shows up."""
    bot = FakeBot()
    budget = ProgressBudget(rate=0.0, burst=5.0)
    for _ in range(3):
        assert budget.take(first=False)
    assert not budget.take(first=False)  # 2 tokens, under half: no renewals any more
    async with make(bot, budget=budget) as progress:
        await progress.report(Started())
        await until(lambda: "send_message" in bot.names())
        await progress.stop()
    assert bot.names() == ["send_chat_action", "send_message", "delete_message"]


# --- how many calls a job costs, on a clock the test moves ----------------------------------

DEFAULTS = ProgressTimings()


async def settle() -> None:
    """Let the progress task run what is due (the fake bot's calls never wait)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def advance(progress: Progress, clock: Clock, seconds: float, event: Any) -> None:
    """Move the clock one second at a time, reporting `event(second)` at each step."""
    for second in range(int(seconds)):
        clock.now += 1.0
        await progress.report(event(second))
        await settle()


async def test_a_long_wait_costs_one_message_and_a_few_edits_of_its_place(clock: Clock) -> None:
    bot = FakeBot()
    async with make(bot, DEFAULTS) as progress:
        await progress.report(Queued(100))
        await settle()
        # one place a second for 100 seconds: a hundred Queued events
        await advance(progress, clock, 99, lambda s: Queued(99 - s))
        await progress.report(Started())
        await advance(progress, clock, 2, lambda s: Started())
        await progress.stop()
    names = bot.names()
    assert names.count("send_message") == 1
    assert "send_chat_action" not in names  # the status already says it waits
    edits = [kw["text"] for name, kw in bot.calls if name == "edit_message_text"]
    assert 1 <= len(edits) <= 5  # gaps of 5, 10, 20, 40 s: never one per place
    places = [100] + [int(e.split("#")[1].split(" ")[0]) for e in edits if "#" in e]
    assert all(b <= a // 2 for a, b in itertools.pairwise(places))
    assert names[-1] == "delete_message"


async def test_a_long_drawing_job_costs_a_bounded_number_of_calls(clock: Clock) -> None:
    bot = FakeBot()
    async with make(bot, DEFAULTS) as progress:
        await progress.report(Started())
        await settle()
        await advance(progress, clock, 300, lambda s: Started())
        await progress.stop()
    names = bot.names()
    # at 0.2, 4.2, 8.2 and 12.2 s; then the status at 15 s speaks
    assert names.count("send_chat_action") == 4
    assert names.count("send_message") == 1
    # 15 s, then edits 5, 10, 20, 40, 60, 60, 60 s apart: the gap doubles up to a minute
    assert names.count("edit_message_text") == 7
    assert names.index("send_message") > max(
        i for i, name in enumerate(names) if name == "send_chat_action"
    )


async def test_a_quick_wait_and_draw_cost_the_status_and_its_removal_only(clock: Clock) -> None:
    bot = FakeBot()
    async with make(bot, DEFAULTS) as progress:
        await progress.report(Queued(3))
        await advance(progress, clock, 2, lambda s: Queued(2 - s))
        await progress.report(Started())
        await advance(progress, clock, 2, lambda s: Started())
        await progress.stop()
    assert bot.names() == ["send_message", "delete_message"]


async def test_an_adopted_message_is_the_status(clock: Clock) -> None:
    """The chat's "queued" note becomes the job's status: edited, then removed, never doubled."""
    bot = FakeBot()
    async with make(bot, DEFAULTS, status_id=55) as progress:
        await progress.report(Started())
        await advance(progress, clock, 3, lambda s: Started())
        assert bot.names() == []  # a quick job leaves the note as it is
        await advance(progress, clock, 4, lambda s: Started())
        await progress.stop()
    assert bot.names() == ["edit_message_text", "delete_message"]
    assert [kw["message_id"] for _, kw in bot.calls] == [55, 55]
    assert bot.calls[0][1]["text"].startswith("⏳ Drawing")


async def test_drawing_after_a_long_wait_is_said_within_edit_interval(clock: Clock) -> None:
    bot = FakeBot()
    async with make(bot, DEFAULTS) as progress:
        await progress.report(Queued(2))
        await advance(progress, clock, 30, lambda s: Queued(2))
        await progress.report(Started())
        await advance(progress, clock, 5, lambda s: Started())
        await progress.stop()
    assert bot.names() == ["send_message", "edit_message_text", "delete_message"]
    assert "#2 in line" in bot.calls[0][1]["text"]
    assert "in line" not in bot.calls[1][1]["text"]


async def test_stop_right_after_an_event_ends_the_progress_task() -> None:
    """An event wakes the task as stop() cancels it; the task still ends (wait_for can lose
    a cancellation that coincides with its event)."""
    for _ in range(20):
        bot = FakeBot()
        async with make(bot, DEFAULTS) as progress:
            await progress.report(Started())
            await asyncio.sleep(0)
            await progress.report(Done())
            stopping = asyncio.ensure_future(progress.stop())
            await asyncio.wait([stopping], timeout=2.0)
            assert stopping.done()
