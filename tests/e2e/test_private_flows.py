"""Private chat, end to end: the real bot against fake Telegram and a fake openai-chat relay."""

from __future__ import annotations

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows, jpeg, mean, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001


async def test_text_becomes_a_photo(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    tg.send_text(CHAT, "a red panda reading a newspaper")
    [photo] = await tg.wait_for("sendPhoto")
    assert "a red panda reading a newspaper" in photo.params["caption"]
    assert "gemini-2.5-flash-image" in photo.params["caption"]
    assert mean(photo.files["photo"]) == upstream.outputs[0]
    assert button(photo, "orig:") and button(photo, "regen:") and button(photo, "new")
    [req] = upstream.requests
    assert req.json["messages"][0]["content"] == "a red panda reading a newspaper"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert tg.calls_of("sendChatAction")[0].params["action"] == "upload_photo"
    jobs = db_rows(bot.settings, "select status, kind, prompt, dialect from jobs")
    assert jobs == [("succeeded", "generate", "a red panda reading a newspaper", "openai-chat")]
    [(source, mime, w, h)] = db_rows(bot.settings, "select source, mime, width, height from images")
    assert (source, mime, w, h) == ("bot", "image/png", 1024, 1024)


async def test_captioned_photo_is_edited_with_its_pixels(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_photo(CHAT, jpeg((200, 30, 30)), caption="make it night")
    [photo] = await tg.wait_for("sendPhoto")
    [req] = upstream.requests
    content = req.json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "make it night"}
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert close(req.input_images[0].color, (200, 30, 30))
    assert mean(photo.files["photo"]) == upstream.outputs[0]
    rows = db_rows(bot.settings, "select kind, status from jobs")
    assert rows == [("edit", "succeeded")]
    parents = db_rows(
        bot.settings, "select i.source from job_inputs j join images i on i.id=j.image_id"
    )
    assert parents == [("user",)]


async def test_photo_without_caption_waits_then_text_edits_it(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_photo(CHAT, png((10, 200, 10)))
    [ask] = await tg.wait_for("sendMessage")
    assert "What should I do with it" in ask.params["text"]
    assert upstream.requests == []
    tg.send_text(CHAT, "add a hat")
    await tg.wait_for("sendPhoto")
    assert close(upstream.requests[0].input_images[0].color, (10, 200, 10))


async def test_next_text_refines_the_last_result_and_new_starts_over(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "a cat")
    await tg.wait_for("sendPhoto")
    tg.send_text(CHAT, "now make it blue")
    await tg.wait_for("sendPhoto", count=2)
    assert close(upstream.requests[1].input_images[0].color, upstream.outputs[0])
    tg.send_text(CHAT, "/new")
    await tg.wait_for("sendMessage", lambda c: "fresh" in c.params.get("text", ""))
    tg.send_text(CHAT, "a dog")
    await tg.wait_for("sendPhoto", count=3)
    assert upstream.requests[2].input_images == []


async def test_refinement_survives_a_restart(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "a lighthouse")
    await tg.wait_for("sendPhoto")
    await bot.restart()
    tg.send_text(CHAT, "add a storm")
    await tg.wait_for("sendPhoto", count=2)
    assert close(upstream.requests[1].input_images[0].color, upstream.outputs[0])


async def test_reply_to_an_earlier_image_edits_that_image(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "first")
    [first] = await tg.wait_for("sendPhoto")
    tg.send_text(CHAT, "second")
    await tg.wait_for("sendPhoto", count=2)
    first_id = first.result["message_id"]
    tg.send_text(CHAT, "edit the first one", reply_to_message_id=first_id)
    await tg.wait_for("sendPhoto", count=3)
    assert close(upstream.requests[2].input_images[0].color, upstream.outputs[0])


async def test_original_button_sends_the_exact_file(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "a tree")
    [photo] = await tg.wait_for("sendPhoto")
    data = button(photo, "orig:")
    await bot.restart()  # buttons keep working after a restart
    tg.press_button(CHAT, photo.result["message_id"], data)
    [doc] = await tg.wait_for("sendDocument")
    await tg.wait_for("answerCallbackQuery")
    assert doc.files["document"] == upstream.output_bytes[0]


async def test_status_message_while_slow_then_removed(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.latency = 1.5
    tg.send_text(CHAT, "slow one")
    [status] = await tg.wait_for("sendMessage", lambda c: "⏳" in c.params.get("text", ""))
    await tg.wait_for("sendPhoto", timeout=15)
    await tg.wait_for("deleteMessage")
    assert (CHAT, status.result["message_id"]) not in tg.messages
    # the chat action is the first feedback; once the status message shows, it alone speaks
    actions = tg.calls_of("sendChatAction")
    assert len(actions) == 1
    assert actions[0].at < status.at


async def test_a_4k_answer_goes_as_document_with_preview(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.big_output_bytes = 16_000_000
    tg.send_text(CHAT, "a huge poster")
    [photo] = await tg.wait_for("sendPhoto", timeout=60)
    [doc] = await tg.wait_for("sendDocument", timeout=60)
    assert len(photo.files["photo"]) < 10_000_000
    assert doc.files["document"] == upstream.output_bytes[0]
    assert len(doc.files["document"]) >= 16_000_000


async def test_start_and_help_speak_the_users_language(tg: FakeTelegram, bot: RunningBot):
    tg.send_text(CHAT, "/start", user=tg.user(CHAT, language_code="zh-hans"))
    [zh] = await tg.wait_for("sendMessage")
    assert "你好" in zh.params["text"]
    tg.send_text(CHAT, "/help", user=tg.user(CHAT, language_code="en"))
    [_, en] = await tg.wait_for("sendMessage", count=2)
    assert "How to use me" in en.params["text"]
    commands = tg.commands
    assert any(c["command"] == "new" for c in commands[("all_private_chats", "")])
    assert any("开始" in c["description"] for c in commands[("all_private_chats", "zh")])


async def test_upstream_failure_is_explained_recorded_and_the_next_works(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.fail_next("500", times=3)  # every attempt the pool makes
    tg.send_text(CHAT, "a boat")
    [err] = await tg.wait_for("sendMessage", lambda c: "internal error" in c.params.get("text", ""))
    rows = db_rows(bot.settings, "select status, error_code, error_detail from jobs")
    assert rows[0][0] == "failed" and rows[0][1] == "server"
    assert "sk-test" not in (rows[0][2] or "")
    tg.send_text(CHAT, "a boat again")
    await tg.wait_for("sendPhoto")
    assert "sk-test" not in err.params["text"]


async def test_text_only_answer_shows_the_models_words(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.answer_shape = "text-only"
    tg.send_text(CHAT, "describe a cat")
    [msg] = await tg.wait_for(
        "sendMessage", lambda c: "without a picture" in c.params.get("text", "")
    )
    assert db_rows(bot.settings, "select status from jobs") == [("text_only",)]
    upstream.answer_shape = "markdown-data"
    tg.send_text(CHAT, "draw a cat")
    await tg.wait_for("sendPhoto")
    assert msg.params["parse_mode"] == "HTML"


async def test_chats_run_in_parallel(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    upstream.latency = 1.0
    for chat in (2001, 2002, 2003):
        tg.send_text(chat, f"picture for {chat}", user=tg.user(chat))
    photos = await tg.wait_for("sendPhoto", count=3, timeout=15)
    assert {int(c.params["chat_id"]) for c in photos} == {2001, 2002, 2003}
    # every chat's request reached upstream before the first answer came back: they overlapped
    assert max(r.at for r in upstream.requests) < min(p.at for p in photos)
