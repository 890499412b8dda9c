"""Conversation end to end: refinement, albums, buttons, ratio, history, undo, settings, order.

The fake image API gives every output a colour of its own, so a test checks *by pixels* that a
request carried an earlier result, without trusting the bot's own records.
"""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows, jpeg, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


def _image_config(req) -> dict:  # type: ignore[no-untyped-def]
    return req.json.get("extra_body", {}).get("google", {}).get("image_config", {})


async def test_album_split_across_batches_becomes_one_composition(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_photo(CHAT, png(RED), media_group_id="alb1", caption="put them side by side")
    await asyncio.sleep(0.4)  # the long poll has returned: the next item is another batch
    tg.send_photo(CHAT, png(GREEN), media_group_id="alb1")
    await tg.wait_for("sendPhoto")
    [req] = upstream.requests
    colors = [i.color for i in req.input_images]
    assert len(colors) == 2 and close(colors[0], RED) and close(colors[1], GREEN)
    assert db_rows(bot.settings, "select kind from jobs") == [("compose",)]


async def test_album_without_caption_waits_for_the_next_text(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_photo(CHAT, png(RED), media_group_id="alb2")
    tg.send_photo(CHAT, png(BLUE), media_group_id="alb2")
    [kept] = await tg.wait_for("sendMessage")
    assert "2 pictures" in kept.params["text"]
    assert upstream.requests == []
    tg.send_text(CHAT, "merge these")
    await tg.wait_for("sendPhoto")
    assert len(upstream.requests[0].input_images) == 2


async def test_album_over_the_models_input_limit_is_refused_clearly(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    for color in (RED, GREEN, BLUE, (9, 9, 9)):
        tg.send_photo(CHAT, png(color), media_group_id="alb3", caption="combine")
    [msg] = await tg.wait_for("sendMessage")
    assert "at most 3" in msg.params["text"]
    assert upstream.requests == []


async def test_regenerate_after_restart_repeats_prompt_and_inputs(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_photo(CHAT, jpeg(RED), caption="make it a painting")
    [photo] = await tg.wait_for("sendPhoto")
    await bot.restart()
    tg.press_button(CHAT, photo.result["message_id"], button(photo, "regen:"))
    await tg.wait_for("sendPhoto", count=2)
    _, second = upstream.requests
    assert second.json["messages"][0]["content"][0]["text"] == "make it a painting"
    assert close(second.input_images[0].color, RED)
    assert db_rows(bot.settings, "select count(*) from jobs") == [(2,)]


async def test_new_button_and_setting_for_plain_text(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "a fox")
    [photo] = await tg.wait_for("sendPhoto")
    tg.press_button(CHAT, photo.result["message_id"], "new")
    await tg.wait_for("answerCallbackQuery")
    tg.send_text(CHAT, "a wolf")
    await tg.wait_for("sendPhoto", count=2)
    assert upstream.requests[1].input_images == []
    # /settings: plain text after a result starts a new picture
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage", lambda c: "Settings" in c.params.get("text", ""))
    tg.press_button(CHAT, menu.result["message_id"], "set:refine:toggle")
    await tg.wait_for("editMessageText", lambda c: "draws a new picture" in c.params["text"])
    tg.send_text(CHAT, "a bear")
    await tg.wait_for("sendPhoto", count=3)
    assert upstream.requests[2].input_images == []


async def test_ratio_choice_is_kept_and_a_prompt_flag_overrides_it(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "/ratio")
    [menu] = await tg.wait_for("sendMessage")
    labels = [
        b["callback_data"] for row in menu.params["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert {"ratio:1:1", "ratio:21:9", "ratio:9:16", "ratio:match", "ratio:auto"} <= set(labels)
    tg.press_button(CHAT, menu.result["message_id"], "ratio:16:9")
    await tg.wait_for("editMessageReplyMarkup")
    await bot.restart()  # kept in the database
    tg.send_text(CHAT, "a wide landscape")
    await tg.wait_for("sendPhoto")
    assert _image_config(upstream.requests[0]) == {"aspect_ratio": "16:9"}
    tg.send_text(CHAT, "/new")
    await tg.wait_for("sendMessage", lambda c: "fresh" in c.params.get("text", ""))
    tg.send_text(CHAT, "a tall tower --ar 9:16")
    await tg.wait_for("sendPhoto", count=2)
    assert _image_config(upstream.requests[1]) == {"aspect_ratio": "9:16"}
    assert upstream.requests[1].json["messages"][0]["content"] == "a tall tower"


async def test_match_input_ratio_follows_the_photo(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "/ratio")
    [menu] = await tg.wait_for("sendMessage")
    tg.press_button(CHAT, menu.result["message_id"], "ratio:match")
    await tg.wait_for("editMessageReplyMarkup")
    tg.send_photo(CHAT, png(RED, (400, 300)), caption="make it autumn")
    await tg.wait_for("sendPhoto")
    assert _image_config(upstream.requests[0]) == {"aspect_ratio": "4:3"}


async def test_bad_flag_is_explained(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    tg.send_text(CHAT, "a cat --ar 7:3")
    [msg] = await tg.wait_for("sendMessage")
    assert "Unknown aspect ratio" in msg.params["text"] and upstream.requests == []


async def test_history_pages_and_bringing_an_image_back(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    for i in range(8):
        tg.send_text(CHAT, f"picture {i}")
        await tg.wait_for("sendPhoto", count=i + 1)
        tg.send_text(CHAT, "/new")
        await tg.wait_for("sendMessage", lambda c: "fresh" in c.params.get("text", ""), count=i + 1)
    tg.send_text(CHAT, "/history")
    [hist] = await tg.wait_for(
        "sendMessage", lambda c: "Pictures of this chat" in c.params.get("text", "")
    )
    rows = hist.params["reply_markup"]["inline_keyboard"]
    assert rows[0][0]["text"].startswith("#8") and "picture 7" in rows[0][0]["text"]
    assert rows[-1][0]["callback_data"] == "histp:1"
    tg.press_button(CHAT, hist.result["message_id"], "histp:1")
    [page2] = await tg.wait_for("editMessageText")
    oldest = page2.params["reply_markup"]["inline_keyboard"][-2][0]["callback_data"]
    assert oldest == "hist:1"
    tg.press_button(CHAT, hist.result["message_id"], oldest)
    await tg.wait_for("sendPhoto", count=9)
    tg.send_text(CHAT, "add snow")
    await tg.wait_for("sendPhoto", count=10)
    assert close(upstream.requests[-1].input_images[0].color, upstream.outputs[0])


async def test_undo_steps_back_one_result(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "a castle")
    await tg.wait_for("sendPhoto")
    tg.send_text(CHAT, "add a dragon")
    await tg.wait_for("sendPhoto", count=2)
    tg.send_text(CHAT, "/undo")
    await tg.wait_for("sendPhoto", count=3)
    tg.send_text(CHAT, "add a moat")
    await tg.wait_for("sendPhoto", count=4)
    assert close(upstream.requests[2].input_images[0].color, upstream.outputs[0])


async def test_reply_mode_document_and_language_setting(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    mid = menu.result["message_id"]
    tg.press_button(CHAT, mid, "set:open:reply")
    await tg.wait_for("editMessageText")
    tg.press_button(CHAT, mid, "set:reply:document")
    tg.press_button(CHAT, mid, "set:language:zh")
    await tg.wait_for("editMessageText", lambda c: "本聊天的设置" in c.params["text"])
    tg.send_text(CHAT, "a kite")
    [doc] = await tg.wait_for("sendDocument")
    assert doc.files["document"] == upstream.output_bytes[0]
    assert button(doc, "regen:")
    assert tg.calls_of("sendPhoto") == []
    tg.send_sticker(CHAT)
    await tg.wait_for("sendMessage", lambda c: "只能理解" in c.params.get("text", ""))


async def test_messages_of_one_chat_run_in_order_with_a_queue_note(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.latency = 0.8
    tg.send_text(CHAT, "a city")
    await asyncio.sleep(0.2)
    tg.send_text(CHAT, "at night")
    await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""))
    await tg.wait_for("sendPhoto", count=2, timeout=15)
    first, second = upstream.requests
    assert second.at > first.at
    # the second message refined the first one's result: it was not raced
    assert close(second.input_images[0].color, upstream.outputs[0])
