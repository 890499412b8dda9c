"""Buttons act only for who may act on what their data names; commands wait their turn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

GROUP, GROUP2 = -1001234567890, -1009876543210
ALICE, BOB, OWNER, ADMIN = 1001, 1002, 1003, 9999


def _in(tg: FakeTelegram, chat: int, text: str, user: int, **kw: Any) -> dict[str, Any]:
    return tg.send_text(
        chat, text, user=tg.user(user, first_name=f"u{user}"), chat_type="supergroup", **kw
    )


async def _answer_of(tg: FakeTelegram, query: dict[str, Any]) -> Any:
    [answer] = await tg.wait_for(
        "answerCallbackQuery", lambda c: c.params["callback_query_id"] == query["id"]
    )
    return answer


async def test_forged_buttons_across_users_and_chats_are_refused(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.chat_admins[GROUP] = [OWNER]
    _in(tg, GROUP, "/imagine a red car", ALICE)
    [alices] = await tg.wait_for("sendPhoto")
    _in(tg, GROUP, "/imagine a blue bike", BOB)
    bobs = (await tg.wait_for("sendPhoto", count=2))[1]
    _in(tg, GROUP2, "/imagine a green tree", BOB)
    other_chat = (await tg.wait_for("sendPhoto", count=3))[2]
    alice_job, alice_image = button(alices, "regen:"), button(alices, "orig:")
    assert len(upstream.requests) == 3
    # Bob presses buttons under his own picture whose data names Alice's job and image
    image_id = alice_image.partition(":")[2]
    for data in (alice_job, alice_job.replace("regen", "var"), alice_image, f"hist:{image_id}"):
        query = tg.press_button(GROUP, bobs.result["message_id"], data, user=tg.user(BOB))
        answer = await _answer_of(tg, query)
        assert "belong to the person who asked" in answer.params["text"], data
    # Alice names a job and an image of another chat under her own picture
    for data in (button(other_chat, "regen:"), button(other_chat, "orig:")):
        query = tg.press_button(GROUP, alices.result["message_id"], data, user=tg.user(ALICE))
        answer = await _answer_of(tg, query)
        assert "can't find that picture" in answer.params["text"], data
    await asyncio.sleep(0.5)
    assert len(upstream.requests) == 3
    assert len(tg.calls_of("sendPhoto")) == 3 and tg.calls_of("sendDocument") == []
    # the owner of the job, a group admin and a bot admin may
    for user in (ALICE, OWNER, ADMIN):
        tg.press_button(GROUP, bobs.result["message_id"], alice_job, user=tg.user(user))
    await tg.wait_for("sendPhoto", count=6)
    assert len(upstream.requests) == 6
    query = tg.press_button(GROUP, bobs.result["message_id"], alice_image, user=tg.user(ALICE))
    await _answer_of(tg, query)
    await tg.wait_for("sendDocument")


MALFORMED = (
    "ratio:99:1",
    "regen:1234567890123456789012345678901234567890",
    "orig:99999999999999999999",
    "hist:9223372036854775808",
    "histp:1234567890123456789012345678901234567890",
    "set:size:8K",
    "bogus:1",
    "regen:١٢",
    "",
)


@pytest.mark.parametrize("chat_type", ["private", "supergroup"])
async def test_malformed_button_data_gets_one_short_answer(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    bot: RunningBot,
    caplog: pytest.LogCaptureFixture,
    chat_type: str,
):
    chat = ALICE if chat_type == "private" else GROUP
    prompt = "a cat" if chat_type == "private" else "/imagine a cat"
    tg.send_text(chat, prompt, user=tg.user(ALICE), chat_type=chat_type)
    [photo] = await tg.wait_for("sendPhoto")
    caplog.clear()
    queries = [
        tg.press_button(chat, photo.result["message_id"], data, user=tg.user(ALICE))
        for data in MALFORMED
    ]
    queries.append(tg.press_inline_button("regen:1", user=tg.user(ALICE)))
    await tg.wait_for("answerCallbackQuery", count=len(queries))
    await asyncio.sleep(0.5)
    answers = tg.calls_of("answerCallbackQuery")
    assert sorted(a.params["callback_query_id"] for a in answers) == sorted(
        q["id"] for q in queries
    )
    assert all(a.ok for a in answers)
    assert len(upstream.requests) == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    texts = [c.params.get("text", "") for c in tg.calls_of("sendMessage")]
    assert not any("went wrong" in t.lower() for t in texts), texts


async def test_data_the_bot_never_sent_acts_on_nothing(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    """Look-alikes of real buttons (an id with a leading zero, a setting that does not exist)
    decode to nothing: one short answer each, no job, no menu, for the asker and another user."""
    tg.send_text(ALICE, "a red car", user=tg.user(ALICE))
    [alices] = await tg.wait_for("sendPhoto")
    _in(tg, GROUP, "/imagine a blue bike", BOB)
    [bobs] = await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == GROUP)
    job = button(alices, "regen:").partition(":")[2]
    assert button(bobs, "regen:") != f"regen:{job}"
    forged = (f"regen:0{job}", f"var:0{job}", f"orig:0{job}", "set:open:bogus", "set:menu:1")
    presses = [(ALICE, alices), (BOB, bobs), (ALICE, bobs)]  # Alice also under Bob's picture
    queries = [
        tg.press_button(
            photo.params["chat_id"], photo.result["message_id"], data, user=tg.user(user)
        )
        for user, photo in presses
        for data in forged
    ]
    for query in queries:
        answer = await _answer_of(tg, query)
        assert answer.params["text"] == "That button doesn't work any more.", query["data"]
    await asyncio.sleep(0.5)
    assert len(upstream.requests) == 2
    assert tg.calls_of("editMessageText", "editMessageReplyMarkup", "sendDocument") == []
    assert len(tg.calls_of("sendPhoto")) == 2


async def test_new_and_undo_wait_for_the_running_job(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    alice = tg.user(ALICE)
    tg.send_text(ALICE, "a red apple", user=alice)
    await tg.wait_for("sendPhoto")
    # an edit runs while /undo is sent: /undo steps back from the edit's result, after it
    upstream.hold = asyncio.Event()
    tg.send_text(ALICE, "make it blue", user=alice)
    await _until(lambda: len(upstream.requests) == 2)
    tg.send_text(ALICE, "/undo", user=alice)
    await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""))
    upstream.hold.set()
    await tg.wait_for("sendPhoto", lambda c: "Undone" in (c.params.get("caption") or ""))
    photos = tg.calls_of("sendPhoto")
    assert len(photos) == 3 and "Undone" not in (photos[1].params.get("caption") or "")
    # the current picture is the apple again: the next edit starts from it
    tg.send_text(ALICE, "add a leaf", user=alice)
    await tg.wait_for("sendPhoto", count=4)
    assert close(upstream.requests[2].input_images[0].color, upstream.outputs[0])
    # /new while a job runs: the next text draws anew, not from that job's result
    upstream.hold = asyncio.Event()
    tg.send_text(ALICE, "make it gold", user=alice)
    await _until(lambda: len(upstream.requests) == 4)
    tg.send_text(ALICE, "/new", user=alice)
    await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""), count=2)
    upstream.hold.set()
    [fresh] = await tg.wait_for("sendMessage", lambda c: "Starting fresh" in c.params["text"])
    assert tg.calls.index(fresh) > tg.calls.index(tg.calls_of("sendPhoto")[4])
    tg.send_text(ALICE, "a banana", user=alice)
    await tg.wait_for("sendPhoto", count=6)
    assert upstream.requests[4].input_images == []


async def test_new_button_and_history_pick_wait_for_the_running_job(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    alice = tg.user(ALICE)
    tg.send_text(ALICE, "a red apple", user=alice)
    [first] = await tg.wait_for("sendPhoto")
    # picking the apple from /history while an edit runs: the pick applies after the result
    upstream.hold = asyncio.Event()
    tg.send_text(ALICE, "make it blue", user=alice)
    await _until(lambda: len(upstream.requests) == 2)
    image = button(first, "orig:").partition(":")[2]
    tg.press_button(ALICE, first.result["message_id"], f"hist:{image}", user=alice)
    await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""))
    upstream.hold.set()
    await tg.wait_for("sendPhoto", count=3)
    tg.send_text(ALICE, "add a leaf", user=alice)
    await tg.wait_for("sendPhoto", count=4)
    assert close(upstream.requests[2].input_images[0].color, upstream.outputs[0])
    # the ✨ New button while a job runs
    upstream.hold = asyncio.Event()
    tg.send_text(ALICE, "make it gold", user=alice)
    await _until(lambda: len(upstream.requests) == 4)
    tg.press_button(ALICE, first.result["message_id"], button(first, "new"), user=alice)
    await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""), count=2)
    upstream.hold.set()
    await tg.wait_for("sendPhoto", count=5)
    await asyncio.sleep(0.3)
    tg.send_text(ALICE, "a banana", user=alice)
    await tg.wait_for("sendPhoto", count=6)
    assert upstream.requests[4].input_images == []


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_a_button_whose_handler_fails_is_still_answered(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot, monkeypatch: pytest.MonkeyPatch
):
    tg.send_text(ALICE, "a red car", user=tg.user(ALICE))
    [photo] = await tg.wait_for("sendPhoto")
    generation = bot.app.bot_data["services"].generation

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(generation, "job_spec", broken)
    query = tg.press_button(ALICE, photo.result["message_id"], button(photo, "regen:"))
    await _answer_of(tg, query)
    [said] = await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == ALICE)
    assert "went wrong on my side" in said.params["text"]
    assert len(upstream.requests) == 1
