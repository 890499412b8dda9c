"""The status message waits for `status_delay`, unless the job has something to say."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bot.telegram.context import ProgressTimings
from bot.telegram.progress import Progress, ProgressBudget


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
    timings = ProgressTimings(status_delay=delay, action_interval=100, edit_interval=100)
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
    async with progress(bot, delay=100):
        await asyncio.sleep(0.2)
    assert [kind for kind, _ in bot.calls] == ["action"]


async def test_a_note_shows_the_status_at_once() -> None:
    bot = RecordingBot()
    async with progress(bot, delay=100) as p:
        await asyncio.sleep(0.1)
        p.note = "You are number 3 in line."
        await asyncio.wait_for(bot.sent.wait(), 5)
    kinds = [kind for kind, _ in bot.calls]
    assert kinds == ["action", "send", "delete"]
    assert "number 3 in line" in bot.calls[1][1]


async def test_default_timings_leave_quick_results_without_a_status_message() -> None:
    tm = ProgressTimings()
    # Telegram shows a chat action for ~5 s: renewed before it lapses, and the status message
    # only after it, so a result within ~6 s costs two actions and the photo.
    assert tm.action_interval < 5 < tm.status_delay
