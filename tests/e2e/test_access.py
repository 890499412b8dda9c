"""The access gate fails closed, refuses at most once an hour, and keeps nothing of strangers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, db_rows, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

GROUP = -1001234567890
ALICE, STRANGER, STRANGER2 = 1001, 2002, 2003
StartBot = Callable[..., Awaitable[RunningBot]]
BLOCKED = (403, "Forbidden: bot was blocked by the user")
NO_RIGHTS = (400, "Bad Request: not enough rights to send text messages to the chat")
QUERY_TOO_OLD = (
    400,
    "Bad Request: query is too old and response timeout expired or query ID is invalid",
)


def _nothing_served(tg: FakeTelegram, upstream: FakeImageAPI, running: RunningBot) -> None:
    assert tg.calls_of("getFile") == []
    assert upstream.requests == []
    assert db_rows(running.settings, "SELECT id FROM jobs") == []


@pytest.mark.parametrize("error", [BLOCKED, NO_RIGHTS], ids=["blocked", "no-rights"])
async def test_a_refusal_that_cannot_be_sent_still_refuses(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot, error: tuple[int, str]
):
    running = await start_bot(allowed_user_ids=str(ALICE))
    code, description = error
    tg.fail_next("sendMessage", error_code=code, description=description, retry_after=None)
    tg.send_photo(STRANGER, png((10, 200, 30)), caption="make it red", user=tg.user(STRANGER))
    [refusal] = await tg.wait_for("sendMessage")
    assert refusal.error is not None and description in refusal.error
    # in a group the refusal fails too; nothing of either request is served
    tg.fail_next("sendMessage", error_code=code, description=description, retry_after=None)
    tg.send_text(
        GROUP, "/imagine a dog", user=tg.user(STRANGER2, first_name="Eve"), chat_type="supergroup"
    )
    await tg.wait_for("sendMessage", count=2)
    await asyncio.sleep(1.0)
    _nothing_served(tg, upstream, running)
    assert len(tg.calls_of("sendMessage")) == 2  # no error message follows the refusal


async def test_a_button_refusal_whose_answer_fails_still_refuses(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(allowed_user_ids=str(ALICE))
    tg.send_text(GROUP, "/imagine a red car", user=tg.user(ALICE), chat_type="supergroup")
    [photo] = await tg.wait_for("sendPhoto")
    code, description = QUERY_TOO_OLD
    tg.fail_next("answerCallbackQuery", error_code=code, description=description, retry_after=None)
    tg.press_button(
        GROUP, photo.result["message_id"], button(photo, "regen:"), user=tg.user(STRANGER)
    )
    [answer] = await tg.wait_for("answerCallbackQuery")
    assert answer.error is not None
    await asyncio.sleep(1.0)
    assert len(upstream.requests) == 1 and len(tg.calls_of("sendPhoto")) == 1
    assert len(tg.calls_of("answerCallbackQuery")) == 1


async def test_a_stranger_hears_one_refusal_an_hour_and_leaves_nothing_behind(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    running = await start_bot(allowed_user_ids=str(ALICE))
    for i in range(5):
        tg.send_text(STRANGER, f"draw cat number {i}", user=tg.user(STRANGER, language_code="zh"))
    [refusal] = await tg.wait_for("sendMessage")
    assert "2002" in refusal.params["text"] and "抱歉" in refusal.params["text"]
    # another stranger is refused too: the memory is per person
    tg.send_text(STRANGER2, "hello", user=tg.user(STRANGER2))
    await tg.wait_for("sendMessage", count=2)
    await asyncio.sleep(1.0)
    assert len(tg.calls_of("sendMessage")) == 2
    prefs = running.app.bot_data["services"].prefs
    assert prefs.cached(STRANGER) is None and prefs.cached(STRANGER2) is None
    assert STRANGER not in running.app.user_data and STRANGER not in running.app.chat_data
    assert upstream.requests == []
    tg.send_text(ALICE, "/help", user=tg.user(ALICE))
    await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == ALICE)
    assert prefs.cached(ALICE) is not None


async def test_an_edited_prompt_does_not_run_again(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    sent = tg.send_text(ALICE, "a lighthouse", user=tg.user(ALICE))
    await tg.wait_for("sendPhoto")
    asked = tg.send_text(GROUP, "/imagine a boat", user=tg.user(ALICE), chat_type="supergroup")
    await tg.wait_for("sendPhoto", count=2)
    before = [c.method for c in tg.calls if c.method != "getUpdates"]
    tg.edit_text(ALICE, sent["message_id"], "a lighthouse at night")
    tg.edit_text(GROUP, asked["message_id"], "/imagine a big boat")
    await asyncio.sleep(1.0)
    assert len(upstream.requests) == 2
    assert [c.method for c in tg.calls if c.method != "getUpdates"] == before
    assert len(db_rows(bot.settings, "SELECT id FROM jobs")) == 2


async def test_an_error_while_deciding_refuses(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    running = await start_bot(allowed_user_ids=str(ALICE))
    tg.send_text(GROUP, "/imagine a red car", user=tg.user(ALICE), chat_type="supergroup")
    [photo] = await tg.wait_for("sendPhoto")
    access = running.app.bot_data["services"].access

    async def broken(user_id: int, chat_id: int) -> bool:
        raise RuntimeError("database is locked")

    access.allowed = broken
    tg.send_text(ALICE, "a dog", user=tg.user(ALICE))
    query = tg.press_button(
        GROUP, photo.result["message_id"], button(photo, "regen:"), user=tg.user(ALICE)
    )
    [answer] = await tg.wait_for("answerCallbackQuery")
    assert answer.params["callback_query_id"] == query["id"] and answer.ok
    await asyncio.sleep(1.0)
    assert len(upstream.requests) == 1
    assert len(db_rows(running.settings, "SELECT id FROM jobs")) == 1
