"""The status message waits for `status_delay`, unless the job has something to say."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from bot.providers.base import Done, ProgressEvent, Queued, Retrying, Started, TaskPolling
from bot.providers.errors import ProviderErrorKind
from bot.telegram.progress import Progress, ProgressBudget, ProgressTimings, note_for


class RecordingBot:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.sent = asyncio.Event()

    async def send_chat_action(self, chat_id: int, action: str, **_: Any) -> bool:
        self.calls.append(("action", action))
        return True

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        self.calls.append(("send", text))
        self.sent.set()
        return SimpleNamespace(message_id=77)

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, **_: Any) -> bool:
        self.calls.append(("edit", text))
        return True

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        self.calls.append(("delete", message_id))
        return True


def progress(bot: RecordingBot, delay: float) -> Progress:
    timings = ProgressTimings(
        status_delay=delay, action_delay=0.0, action_interval=100, edit_interval=100
    )
    return Progress(
        bot,  # type: ignore[arg-type]
        1,
        0,
        lang="en",
        key="status_working",
        timings=timings,
        budget=ProgressBudget(),
    )


async def test_quick_job_sends_only_the_chat_action() -> None:
    bot = RecordingBot()
    async with progress(bot, delay=100) as p:
        await p.report(Started())
        await asyncio.sleep(0.2)
    assert [kind for kind, _ in bot.calls] == ["action"]


async def test_a_note_shows_the_status_at_once() -> None:
    bot = RecordingBot()
    async with progress(bot, delay=100) as p:
        await asyncio.sleep(0.1)
        await p.report(Queued(3))
        await asyncio.wait_for(bot.sent.wait(), 5)
    kinds = [kind for kind, _ in bot.calls]
    assert kinds == ["send", "delete"]  # a waiting job is not "sending a photo"
    assert "#3 in line" in bot.calls[0][1]


async def test_started_names_an_edit_and_clears_the_queue_note() -> None:
    bot = RecordingBot()
    async with progress(bot, delay=100) as p:
        await p.report(Queued(2))
        await p.report(Started(editing=True))
        assert p.note == ""
        p.note = "x"  # shows the status now, in the wording Started chose
        await asyncio.wait_for(bot.sent.wait(), 5)
    assert bot.calls[1][1].startswith("⏳ Editing")


@pytest.mark.parametrize(
    ("event", "en", "zh"),
    [
        (Queued(4), "Waiting for a free slot: you are #4 in line.", "4"),
        (Retrying(ProviderErrorKind.RATE_LIMITED), "trying again", "重试"),
        (TaskPolling("submitted"), "Task: submitted, waiting for a worker", "任务"),
        (TaskPolling("processing", 40), "Task: processing, 40%", "40%"),
        (Started(), "", ""),
        (Done(), "", ""),
    ],
)
def test_each_progress_event_has_its_words(event: ProgressEvent, en: str, zh: str) -> None:
    assert (en in note_for("en", event)) and (bool(en) == bool(note_for("en", event)))
    assert (zh in note_for("zh", event)) and (bool(zh) == bool(note_for("zh", event)))


async def test_default_timings_leave_quick_results_without_a_status_message() -> None:
    tm = ProgressTimings()
    # Telegram shows a chat action for ~5 s: renewed before it lapses, and the status message
    # only after it, so a result within ~6 s costs two actions and the photo.
    assert tm.action_interval < 5 < tm.status_delay


async def test_the_first_chat_action_waits_until_the_request_has_left() -> None:
    timings = ProgressTimings(
        status_delay=100, action_delay=0.15, action_interval=100, edit_interval=100
    )
    quick, slow = RecordingBot(), RecordingBot()
    for bot, drawing in ((quick, 0.05), (slow, 0.4)):
        async with Progress(
            bot,  # type: ignore[arg-type]
            7,
            None,
            lang="en",
            key="status_working",
            timings=timings,
            budget=ProgressBudget(),
        ) as p:
            await p.report(Started())
            await asyncio.sleep(drawing)
    assert quick.calls == []  # answered before the action was due: nothing to show
    assert [kind for kind, _ in slow.calls] == ["action"]
