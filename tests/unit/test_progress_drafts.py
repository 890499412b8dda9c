"""bot.telegram.progress with a live draft: sent again before Telegram lets it fade (even when
only the wait goes on), never deleted, and a status message's wait costs no such renewals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.services.types import Queued, Started
from bot.telegram import progress as progress_module
from bot.telegram.progress import ProgressTimings
from tests.unit.test_progress_budget import FakeBot, make, until

QUICK = ProgressTimings(
    status_delay=0.0,
    action_delay=0.0,
    action_interval=60.0,
    edit_interval=0.02,
    max_edit_interval=60.0,
)


class DraftBot(FakeBot):
    async def send_message_draft(self, chat_id: int, draft_id: int, text: str, **kw: Any) -> bool:
        self._record("send_message_draft", chat_id=chat_id, draft_id=draft_id, text=text, **kw)
        return True


async def test_a_waiting_draft_is_renewed_before_it_fades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "DRAFT_REFRESH", 0.1)
    bot = DraftBot()
    async with make(bot, QUICK, draft_id=5) as progress:
        await progress.report(Queued(position=3))  # the place never changes
        await until(lambda: bot.names().count("send_message_draft") >= 4)
        await progress.stop()
    assert set(bot.names()) == {"send_message_draft"}  # no chat action while waiting, no delete
    assert {kw["draft_id"] for _, kw in bot.calls} == {5}
    assert all("#3 in line" in kw["text"] for _, kw in bot.calls)


async def test_a_waiting_status_message_is_not_edited_for_nothing() -> None:
    bot = DraftBot()
    async with make(bot, QUICK) as progress:
        await progress.report(Queued(position=3))
        await until(lambda: "send_message" in bot.names())
        await asyncio.sleep(0.3)
        await progress.stop()
    assert bot.names() == ["send_message", "delete_message"]


async def test_a_queued_note_already_shown_stays_the_status() -> None:
    """The chat's "queued" message is adopted: edited and deleted, no draft beside it."""
    bot = DraftBot()
    async with make(bot, QUICK, draft_id=5, status_id=41) as progress:
        await progress.report(Started())
        await until(lambda: "edit_message_text" in bot.names())
        await progress.stop()
    assert "send_message_draft" not in bot.names()
    assert bot.names()[-1] == "delete_message"
