"""Thought lines in the status message: the header of the latest summary, escaped and short,
and a burst of thoughts costs a bounded number of edits, the latest one shown."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from bot.providers.base import Started, Thinking
from bot.telegram.progress import (
    THOUGHT_CHARS,
    Progress,
    ProgressBudget,
    ProgressTimings,
    note_for,
    thought_line,
)


class RecordingBot:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.sent = asyncio.Event()
        self.edited = asyncio.Event()

    async def send_chat_action(self, chat_id: int, action: str, **_: Any) -> bool:
        self.calls.append(("action", action))
        return True

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        self.calls.append(("send", text))
        self.sent.set()
        return SimpleNamespace(message_id=77)

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, **_: Any) -> bool:
        self.calls.append(("edit", text))
        self.edited.set()
        return True

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        self.calls.append(("delete", str(message_id)))
        return True


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("**Planning the layout**\n\nI'm placing the fox left of centre.", "Planning the layout…"),
        ("**Header cut\nacross lines** and more", "Header cut across lines…"),
        ("## Choosing the light:\nLow sun.", "Choosing the light…"),
        ("\n\n  - Checking the text is legible.\nmore", "Checking the text is legible…"),
        ("****", ""),
        ("   \n\n", ""),
    ],
)
def test_the_line_a_thought_shows(text: str, line: str) -> None:
    assert thought_line(text) == line


def test_a_long_thought_line_is_cut() -> None:
    line = thought_line("**" + "word " * 100 + "**")
    assert len(line) <= THOUGHT_CHARS and line.endswith("…")


def test_a_thought_is_escaped_into_the_note_in_both_languages() -> None:
    event = Thinking("**Placing <b>the</b> fox & the hen**\n\nmore")
    for lang in ("en", "zh"):
        note = note_for(lang, event)
        assert "Placing &lt;b&gt;the&lt;/b&gt; fox &amp; the hen…" in note
        assert "<b>" not in note and "more" not in note
    assert note_for("en", Thinking("****")) == ""


def progress(bot: RecordingBot, *, edit_interval: float) -> Progress:
    timings = ProgressTimings(status_delay=100, action_interval=100, edit_interval=edit_interval)
    return Progress(
        bot,  # type: ignore[arg-type]
        1,
        0,
        lang="en",
        key="status_working",
        timings=timings,
        budget=ProgressBudget(),
    )


async def test_a_burst_of_thoughts_costs_one_message_and_one_edit_the_latest_shown() -> None:
    bot = RecordingBot()
    async with progress(bot, edit_interval=1.0) as p:
        await p.report(Started())
        await p.report(Thinking("**Planning the layout**\n\nfirst"))
        await asyncio.wait_for(bot.sent.wait(), 5)
        for i in range(200):  # far more thoughts than edits could follow, within one interval
            await p.report(Thinking(f"**Step {i}**\n\nbody"))
            await asyncio.sleep(0)
        await asyncio.wait_for(bot.edited.wait(), 10)
    shown = [(kind, text) for kind, text in bot.calls if kind != "action"]
    assert [kind for kind, _ in shown] == ["send", "edit", "delete"], bot.calls
    assert "Planning the layout…" in shown[0][1]
    assert "Step 199…" in shown[1][1]


async def test_a_thought_without_words_keeps_the_line_before() -> None:
    bot = RecordingBot()
    async with progress(bot, edit_interval=100) as p:
        await p.report(Started())
        await p.report(Thinking("**Planning the layout**"))
        await p.report(Thinking("  "))
        assert "Planning the layout…" in p.note
