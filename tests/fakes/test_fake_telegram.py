"""The fake Telegram server works with the real python-telegram-bot, as the real server does."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputMediaPhoto,
    InputTextMessageContent,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.ports import free_port
from tests.fakes.telegram_api import FakeTelegram, _parse_html

CHAT = 1001


def ci(text: str) -> re.Pattern[str]:
    """PTB strips "Bad Request: " and capitalize()s the rest, so match case-insensitively."""
    return re.compile(re.escape(text), re.IGNORECASE)


def png(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    tg = FakeTelegram()
    await tg.start()
    yield tg
    await tg.stop()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    b = Bot(fake.token, base_url=f"{fake.root}/bot", base_file_url=f"{fake.root}/file/bot")
    async with b:
        yield b


@pytest.fixture
async def start_app(
    fake: FakeTelegram,
) -> AsyncIterator[Callable[..., Awaitable[Application[Any, Any, Any, Any, Any, Any]]]]:
    apps: list[Application[Any, Any, Any, Any, Any, Any]] = []
    errors: list[BaseException] = []

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    async def start(
        *handlers: BaseHandler[Any, Any, Any],
    ) -> Application[Any, Any, Any, Any, Any, Any]:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(f"{fake.root}/bot")
            .base_file_url(f"{fake.root}/file/bot")
            .build()
        )
        for handler in handlers:
            app.add_handler(handler)
        app.add_error_handler(on_error)
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        apps.append(app)
        return app

    yield start
    for app in apps:
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert errors == []


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(f"echo: {update.message.text}")


async def photo_back(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.message
    assert message is not None
    largest = max(message.photo, key=lambda s: s.width * s.height)
    data = await (await largest.get_file()).download_as_bytearray()
    await message.reply_photo(bytes(data), caption=f"got {len(data)} bytes")


# ------------------------------------------------------------------ with a polling Application


async def test_text_roundtrip(fake: FakeTelegram, start_app: Any) -> None:
    await start_app(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    sent = fake.send_text(CHAT, "hello there")
    [call] = await fake.wait_for("sendMessage")
    assert call.ok
    assert call.params["chat_id"] == CHAT
    assert call.params["text"] == "echo: hello there"
    reply = call.result
    assert reply["from"]["id"] == fake.bot_id and reply["from"]["is_bot"] is True
    assert reply["chat"]["id"] == CHAT and reply["chat"]["type"] == "private"
    assert reply["message_id"] > sent["message_id"]
    assert fake.messages[(CHAT, reply["message_id"])]["text"] == "echo: hello there"
    assert [c.method for c in fake.calls_of("getMe", "deleteWebhook")] == [
        "getMe",
        "deleteWebhook",
    ]


async def test_photo_roundtrip_downloads_and_sends_back_the_bytes(
    fake: FakeTelegram, start_app: Any
) -> None:
    await start_app(MessageHandler(filters.PHOTO, photo_back))
    image = png((10, 200, 10), (300, 200))
    sent = fake.send_photo(CHAT, image, caption="look")
    sizes = sent["photo"]
    assert len(sizes) == 2
    assert len({s["file_id"] for s in sizes}) == len({s["file_unique_id"] for s in sizes}) == 2
    assert (sizes[-1]["width"], sizes[-1]["height"]) == (300, 200)
    assert max(sizes[0]["width"], sizes[0]["height"]) <= 90

    [call] = await fake.wait_for("sendPhoto")
    assert call.files["photo"] == image
    assert call.params["caption"] == f"got {len(image)} bytes"
    # PTB quotes only in groups by default, so a private reply carries no reply_parameters
    assert "reply_parameters" not in call.params
    result_sizes = call.result["photo"]
    assert fake.file_bytes(result_sizes[-1]["file_id"]) == image
    assert result_sizes[-1]["file_id"] not in {s["file_id"] for s in sizes}
    [get_file] = fake.calls_of("getFile")
    assert get_file.params["file_id"] == sizes[-1]["file_id"]


async def test_callback_button_reaches_callback_query_handler(
    fake: FakeTelegram, start_app: Any
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go:1")]])
        await update.message.reply_text("pick one", reply_markup=keyboard)

    pressed: list[str] = []

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        pressed.append(query.data)
        await query.answer("done")
        await query.edit_message_text(f"pressed {query.data}")

    await start_app(CommandHandler("start", start), CallbackQueryHandler(on_press))
    fake.send_text(CHAT, "/start")
    [menu] = await fake.wait_for("sendMessage")
    assert menu.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "go:1"
    message_id = menu.result["message_id"]
    assert fake.messages[(CHAT, message_id)]["reply_markup"]["inline_keyboard"]

    query = fake.press_button(CHAT, message_id, "go:1")
    [answer] = await fake.wait_for("answerCallbackQuery")
    [edit] = await fake.wait_for("editMessageText")
    assert pressed == ["go:1"]
    assert answer.ok and answer.params["callback_query_id"] == query["id"]
    assert fake.callback_answers[query["id"]]["text"] == "done"
    assert edit.ok
    edited = fake.messages[(CHAT, message_id)]
    assert edited["text"] == "pressed go:1"
    assert "reply_markup" not in edited  # editing without reply_markup drops the keyboard
    assert "edit_date" in edited


async def test_no_update_is_delivered_twice(fake: FakeTelegram, start_app: Any) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)
        assert update.message is not None
        await update.message.reply_text("ok")

    await start_app(MessageHandler(filters.TEXT, record))
    for n in range(5):
        fake.send_text(CHAT, f"message {n}")
    await fake.wait_for("sendMessage", count=5)
    fake.send_text(CHAT, "one more")
    await fake.wait_for("sendMessage", count=6)
    await asyncio.sleep(0.1)
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen)


async def test_command_entity_with_bot_name(fake: FakeTelegram, start_app: Any) -> None:
    got: list[list[str]] = []

    async def cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        got.append(list(context.args or []))
        assert update.message is not None
        await update.message.reply_text("cmd")

    await start_app(CommandHandler("imagine", cmd))
    msg = fake.send_text(-100123, "/imagine@nano_test_bot a cat", chat_type="supergroup")
    assert msg["entities"] == [{"type": "bot_command", "offset": 0, "length": 22}]
    await fake.wait_for("sendMessage")
    assert got == [["a", "cat"]]


# ------------------------------------------------------------------ direct Bot calls


async def test_get_file_refuses_files_over_20_mb(fake: FakeTelegram, bot: Bot) -> None:
    file_id, _ = fake.add_file(b"tiny", file_size=25 * 1024 * 1024)
    with pytest.raises(BadRequest, match=ci("file is too big")):
        await bot.get_file(file_id)
    small_id, unique = fake.add_file(b"tiny")
    file = await bot.get_file(small_id)
    assert file.file_unique_id == unique and file.file_size == 4
    assert bytes(await file.download_as_bytearray()) == b"tiny"
    with pytest.raises(BadRequest, match=ci("invalid file_id")):
        await bot.get_file("nope")


async def test_set_file_size_rewrites_the_pending_update(fake: FakeTelegram, bot: Bot) -> None:
    msg = fake.send_document(CHAT, png(), file_name="a.png", mime_type="image/png")
    fake.set_file_size(msg["document"]["file_id"], 25 * 1024 * 1024)
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_size == 25 * 1024 * 1024
    with pytest.raises(BadRequest, match=ci("file is too big")):
        await update.message.document.get_file()


async def test_caption_limits(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=ci("message caption is too long")):
        await bot.send_photo(CHAT, png(), caption="x" * 1025)
    ok = await bot.send_photo(CHAT, png(), caption="x" * 1024)
    assert ok.caption == "x" * 1024
    # the limit applies after entity parsing
    ok = await bot.send_photo(CHAT, png(), caption="<b>" + "x" * 1024 + "</b>", parse_mode="HTML")
    assert ok.caption_entities[0].type == "bold"


async def test_text_limits(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=ci("message text is empty")):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(BadRequest, match=ci("message is too long")):
        await bot.send_message(CHAT, "x" * 4097)
    assert (await bot.send_message(CHAT, "é" * 4096)).text == "é" * 4096


async def test_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "hi")
    assert (await bot.send_message(CHAT, "hi")).text == "hi"
    failed = [c for c in fake.calls_of("sendMessage") if not c.ok]
    assert len(failed) == 2
    assert failed[0].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    fake.fail_next("sendPhoto", error_code=400, description="Bad Request: boom", retry_after=None)
    with pytest.raises(BadRequest, match=ci("boom")):
        await bot.send_photo(CHAT, png())


async def test_flood_limit(fake: FakeTelegram, bot: Bot) -> None:
    fake.flood_limit = True
    for _ in range(3):
        await bot.send_message(CHAT, "burst")
    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT, "too fast")
    await bot.send_message(CHAT + 1, "another chat is fine")


async def test_offset_semantics(fake: FakeTelegram, bot: Bot) -> None:
    fake.send_text(CHAT, "one")
    fake.send_text(CHAT, "two")
    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first if u.message] == ["one", "two"]
    again = await bot.get_updates(timeout=0)  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == [u.update_id for u in first]
    assert await bot.get_updates(offset=first[-1].update_id + 1, timeout=0) == ()
    fake.send_text(CHAT, "three")
    [third] = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert third.update_id == first[-1].update_id + 1
    assert len(await bot.get_updates(offset=first[0].update_id, limit=1, timeout=0)) == 1


async def test_get_with_a_form_body_is_read(fake: FakeTelegram) -> None:
    """Telegram reads a form sent with GET (pyTelegramBotAPI calls every method that way)."""
    fake.send_text(CHAT, "one")
    fake.send_text(CHAT, "two")
    url = f"{fake.root}/bot{fake.token}/getUpdates"
    async with httpx.AsyncClient() as client:
        first = (await client.request("GET", url, data={"timeout": "0"})).json()["result"]
        offset = str(first[-1]["update_id"])
        rest = await client.request("GET", url, data={"offset": offset, "timeout": "0"})
        sent = await client.request(
            "GET",
            url.replace("getUpdates", "sendMessage"),
            data={"chat_id": str(CHAT), "text": "hi"},
        )
    assert [u["message"]["text"] for u in rest.json()["result"]] == ["two"]
    assert sent.json()["result"]["text"] == "hi"
    assert fake.calls_of("sendMessage")[-1].params == {"chat_id": CHAT, "text": "hi"}


async def test_markdown_v2_escapes(bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "Here is your image\\. \\(1\\)", parse_mode="MarkdownV2")
    assert sent.text == "Here is your image. (1)" and not sent.entities
    with pytest.raises(BadRequest, match=ci("character '.' is reserved")):
        await bot.send_message(CHAT, "Here is your image.", parse_mode="MarkdownV2")


async def test_long_poll_returns_when_an_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.3)
        fake.send_text(CHAT, "wake up")

    task = asyncio.create_task(later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    await task
    assert 0.2 < time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    started = time.monotonic()
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1) == ()
    assert time.monotonic() - started >= 0.9


async def test_entity_parsing_errors_match_telegram(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=ci('Unsupported start tag "prompt" at byte offset 4')):
        await bot.send_message(CHAT, "use <prompt>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=ci("Can't find end tag corresponding to start tag b")):
        await bot.send_message(CHAT, "<b>cut", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=ci("unsupported parse_mode")):  # no MarkdownV2 markup
        await bot.send_message(CHAT, "*hi*", parse_mode=ParseMode.MARKDOWN_V2)
    msg = await bot.send_message(
        CHAT, "<b>bold</b> &lt;tag&gt; <a href='https://x.org'>link</a>", parse_mode="HTML"
    )
    assert msg.text == "bold <tag> link"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 4),
        ("text_link", 11, 4),
    ]


async def test_button_data_limit(bot: Bot) -> None:
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=ci("BUTTON_DATA_INVALID")):
        await bot.send_message(CHAT, "hi", reply_markup=too_long)
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])
    assert (await bot.send_message(CHAT, "hi", reply_markup=fits)).reply_markup == fits


async def test_edit_and_delete_errors(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(CHAT, "same")
    with pytest.raises(BadRequest, match=ci("message is not modified: specified new message")):
        await bot.edit_message_text("same", chat_id=CHAT, message_id=msg.message_id)
    with pytest.raises(BadRequest, match=ci("message to edit not found")):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=9999)
    edited = await bot.edit_message_text("changed", chat_id=CHAT, message_id=msg.message_id)
    assert isinstance(edited, object) and fake.messages[(CHAT, msg.message_id)]["text"] == "changed"
    photo = await bot.send_photo(CHAT, png(), caption="a")
    with pytest.raises(BadRequest, match=ci("there is no text in the message to edit")):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=photo.message_id)
    await bot.edit_message_caption(chat_id=CHAT, message_id=photo.message_id, caption="b")
    assert fake.messages[(CHAT, photo.message_id)]["caption"] == "b"
    assert await bot.delete_message(CHAT, msg.message_id) is True
    assert (CHAT, msg.message_id) not in fake.messages
    with pytest.raises(BadRequest, match=ci("message to delete not found")):
        await bot.delete_message(CHAT, msg.message_id)


async def test_chat_action_callback_answer_and_reply_errors(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.send_chat_action(CHAT, "upload_photo", message_thread_id=7) is True
    assert fake.calls_of("sendChatAction")[-1].params["message_thread_id"] == 7
    with pytest.raises(BadRequest, match=ci("wrong parameter action in request")):
        await bot.send_chat_action(CHAT, "painting")
    with pytest.raises(BadRequest, match=ci("query is too old")):
        await bot.answer_callback_query("12345")
    with pytest.raises(BadRequest, match=ci("message to be replied not found")):
        await bot.send_message(CHAT, "hi", reply_parameters=ReplyParameters(message_id=777))
    ok = await bot.send_message(
        CHAT, "hi", reply_parameters=ReplyParameters(777, allow_sending_without_reply=True)
    )
    assert ok.reply_to_message is None
    user_msg = fake.send_text(CHAT, "original")
    reply = await bot.send_message(
        CHAT, "re", reply_to_message_id=user_msg["message_id"], message_thread_id=3
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "original"
    assert reply.message_thread_id == 3


async def test_photo_dimension_and_size_limits(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=ci("PHOTO_INVALID_DIMENSIONS")):
        await bot.send_photo(CHAT, png(size=(2100, 100)))  # ratio 21
    with pytest.raises(BadRequest, match=ci("PHOTO_INVALID_DIMENSIONS")):
        await bot.send_photo(CHAT, png(size=(6000, 4001)))  # sum 10001
    with pytest.raises(BadRequest, match=ci("IMAGE_PROCESS_FAILED")):
        await bot.send_photo(CHAT, b"not an image at all")
    with pytest.raises(BadRequest, match=ci("file is too big")):
        await bot.send_photo(CHAT, png() + bytes(10_000_001))


async def test_documents(fake: FakeTelegram, bot: Bot) -> None:
    data = b"%PDF-1.4 hello"
    msg = await bot.send_document(CHAT, data, filename="report.pdf", caption="here")
    assert msg.document is not None
    assert (msg.document.file_name, msg.document.mime_type) == ("report.pdf", "application/pdf")
    assert msg.document.file_size == len(data)
    assert fake.file_bytes(msg.document.file_id) == data
    again = await bot.send_document(CHAT, msg.document.file_id)
    assert again.document is not None and again.document.file_id == msg.document.file_id
    with pytest.raises(NetworkError, match=ci("Request Entity Too Large")):
        await bot.send_document(CHAT, bytes(50_000_001), filename="big.bin")
    user_doc = fake.send_document(CHAT, b"user bytes", file_name="u.txt", mime_type="text/plain")
    file = await bot.get_file(user_doc["document"]["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"user bytes"


async def test_media_group(fake: FakeTelegram, bot: Bot) -> None:
    images = [png((i * 40, 0, 0)) for i in range(3)]
    sent = await bot.send_media_group(
        CHAT,
        [InputMediaPhoto(img, caption=f"#{i}") for i, img in enumerate(images)],
    )
    assert len(sent) == 3
    assert len({m.media_group_id for m in sent}) == 1 and sent[0].media_group_id
    assert [m.caption for m in sent] == ["#0", "#1", "#2"]
    for message, image in zip(sent, images, strict=True):
        assert fake.file_bytes(message.photo[-1].file_id) == image
    [call] = fake.calls_of("sendMediaGroup")
    assert all(item["media"].startswith("attach://") for item in call.params["media"])
    assert sorted(call.files.values()) == sorted(images)
    # resend by file_id keeps the file_id
    resent = await bot.send_media_group(
        CHAT, [InputMediaPhoto(m.photo[-1].file_id) for m in sent[:2]]
    )
    assert [m.photo[-1].file_id for m in resent] == [m.photo[-1].file_id for m in sent[:2]]
    with pytest.raises(BadRequest, match=ci("too many messages to send as an album")):
        await bot.send_media_group(CHAT, [InputMediaPhoto(images[0])] * 11)


async def test_commands_are_stored_per_scope_and_language(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("new", "Start over")])
    await bot.set_my_commands(
        [BotCommand("new", "重新开始")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="zh",
    )
    assert fake.commands[("default", "")] == [{"command": "new", "description": "Start over"}]
    assert fake.commands[("all_private_chats", "zh")][0]["description"] == "重新开始"
    await bot.set_my_commands([])  # an empty list clears the scope
    assert ("default", "") not in fake.commands


async def test_wait_for_times_out_with_a_summary(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(CHAT, "something else")
    with pytest.raises(AssertionError, match=r"(?s)sendPhoto.*sendMessage"):
        await fake.wait_for("sendPhoto", timeout=0.2)


# ------------------------------------------------------------------ raw HTTP encodings


async def test_raw_encodings_tokens_and_methods(fake: FakeTelegram) -> None:
    base = f"{fake.root}/bot{fake.token}"
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "1"}]]}
    async with httpx.AsyncClient() as client:
        as_json = await client.post(
            f"{base}/sendMessage", json={"chat_id": CHAT, "text": "j", "reply_markup": markup}
        )
        as_form = await client.post(
            f"{base}/sendmessage",  # method names are case-insensitive
            data={"chat_id": str(CHAT), "text": "123", "reply_markup": json.dumps(markup)},
        )
        as_query = await client.get(f"{base}/sendMessage", params={"chat_id": CHAT, "text": "q"})
        unauthorized = await client.post(f"{fake.root}/bot1:WRONG/getMe")
        unknown = await client.post(f"{base}/sendTelepathy")
        download = await client.get(f"{fake.root}/file/bot{fake.token}/nope/nothing.jpg")
    assert as_json.status_code == as_form.status_code == as_query.status_code == 200
    assert as_json.json()["result"]["reply_markup"] == markup
    assert as_form.json()["result"]["text"] == "123"  # strings stay strings
    json_call, form_call, query_call = fake.calls_of("sendMessage")[-3:]
    assert json_call.params == form_call.params | {"text": "j"}
    assert form_call.params == {"chat_id": CHAT, "text": "123", "reply_markup": markup}
    assert query_call.params == {"chat_id": CHAT, "text": "q"}
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert download.status_code == 404


async def test_wrong_token_raises_invalid_token(fake: FakeTelegram) -> None:
    bad = Bot("1:WRONG", base_url=f"{fake.root}/bot", base_file_url=f"{fake.root}/file/bot")
    with pytest.raises(InvalidToken):
        await bad.initialize()


# ------------------------------------------------------------------ TDLib parser test vectors

# From TDLib's test/message_entities.cpp: (text, expected error) and (text, plain text, entities).
HTML_ERRORS = [
    ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
    ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
    ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
    ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
    ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
    ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
    ("🏟 🏟&lt;<i>a</em   >", 'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"'),
]
PARSED = [
    ("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>", "🏟 🏟🏟 ><🏟", {("italic", 5, 7), ("bold", 9, 3)}),
    ('<pre><code class="language-py">x</code></pre>', "x", {("pre", 0, 1)}),
]


@pytest.mark.parametrize(("text", "error"), HTML_ERRORS)
def test_html_errors_match_tdlib(text: str, error: str) -> None:
    with pytest.raises(ValueError) as exc:
        _parse_html(text)
    assert str(exc.value) == error


@pytest.mark.parametrize(("text", "plain", "entities"), PARSED)
def test_parsed_entities_match_tdlib(
    text: str, plain: str, entities: set[tuple[str, int, int]]
) -> None:
    got_text, got = _parse_html(text)
    assert got_text == plain
    assert {(e["type"], e["offset"], e["length"]) for e in got} == entities


# --- payments in Stars ------------------------------------------------------------------------


async def _invoice(bot: Bot, **overrides: Any) -> Any:
    from telegram import LabeledPrice

    kwargs: dict[str, Any] = {
        "title": "50 credits",
        "description": "credits for pictures",
        "payload": "pack:50:1001",
        "currency": "XTR",
        "prices": [LabeledPrice("50 credits", 50)],
    }
    kwargs.update(overrides)
    return await bot.send_invoice(CHAT, **kwargs)


async def test_send_invoice_follows_telegrams_rules_for_stars(bot: Bot, fake: FakeTelegram) -> None:
    from telegram import LabeledPrice

    message = await _invoice(bot)
    assert message.invoice is not None and message.invoice.total_amount == 50
    assert message.invoice.currency == "XTR"
    for overrides, error in (
        ({"provider_token": "284685063:TEST:abc"}, "PAYMENT_PROVIDER_INVALID"),
        ({"prices": [LabeledPrice("a", 10), LabeledPrice("b", 20)]}, "STARS_INVOICE_INVALID"),
        ({"prices": [LabeledPrice("a", 0)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"payload": "x" * 129}, "INVOICE_PAYLOAD_INVALID"),
        ({"title": "t" * 33}, "INVOICE_TITLE_INVALID"),
        ({"currency": "USD"}, "CURRENCY_INVALID"),
    ):
        with pytest.raises(BadRequest, match=ci(error)):
            await _invoice(bot, **overrides)
    assert len(fake.invoices) == 1


async def _pre_checkout(fake: FakeTelegram, bot: Bot, **pay: Any) -> tuple[str, Any]:
    message = await _invoice(bot)
    query_id = fake.pay(CHAT, message.message_id, **pay)
    updates = await bot.get_updates(timeout=1)
    [query] = [u.pre_checkout_query for u in updates if u.pre_checkout_query is not None]
    assert query.id == query_id and query.total_amount == 50
    assert query.invoice_payload == "pack:50:1001"
    return query_id, updates[-1].update_id


async def test_a_payment_follows_an_accepted_pre_checkout_once(
    bot: Bot, fake: FakeTelegram
) -> None:
    query_id, last = await _pre_checkout(fake, bot)
    with pytest.raises(BadRequest, match=ci("ERROR_MESSAGE_EMPTY")):
        await bot.answer_pre_checkout_query(query_id, ok=False)
    assert await bot.answer_pre_checkout_query(query_id, ok=True)
    with pytest.raises(BadRequest, match=ci("query is too old")):  # answered already
        await bot.answer_pre_checkout_query(query_id, ok=True)
    updates = await bot.get_updates(offset=last + 1, timeout=1)
    [payment] = [u.message.successful_payment for u in updates if u.message]
    assert payment is not None and payment.total_amount == 50
    charge = payment.telegram_payment_charge_id
    # the same message again, as a redelivery
    fake.redeliver_payment(charge)
    again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
    assert again[0].message is not None and again[0].message.successful_payment == payment
    transactions = await bot.get_star_transactions()
    assert [t.id for t in transactions.transactions] == [charge]
    assert fake.balance_of(CHAT) == 50


async def test_a_late_pre_checkout_answer_is_refused_and_nothing_is_paid(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.pre_checkout_timeout = 0.05
    query_id, _ = await _pre_checkout(fake, bot)
    await asyncio.sleep(0.1)
    with pytest.raises(BadRequest, match=ci("query is too old")):
        await bot.answer_pre_checkout_query(query_id, ok=True)
    assert not fake.payments and fake.balance_of(CHAT) == 0


async def test_refunds_are_refused_like_telegram_refuses_them(bot: Bot, fake: FakeTelegram) -> None:
    query_id, _ = await _pre_checkout(fake, bot)
    await bot.answer_pre_checkout_query(query_id, ok=True)
    charge = fake.payments[-1]["successful_payment"]["telegram_payment_charge_id"]
    with pytest.raises(BadRequest, match=ci("CHARGE_ID_INVALID")):
        await bot.refund_star_payment(CHAT + 1, charge)  # not this person's payment
    with pytest.raises(BadRequest, match=ci("CHARGE_ID_INVALID")):
        await bot.refund_star_payment(CHAT, "stxAnothing")
    assert await bot.refund_star_payment(CHAT, charge)
    with pytest.raises(BadRequest, match=ci("CHARGE_ALREADY_REFUNDED")):
        await bot.refund_star_payment(CHAT, charge)
    assert fake.balance_of(CHAT) == 0
    transactions = (await bot.get_star_transactions()).transactions
    assert [t.id for t in transactions] == [charge, charge]
    assert transactions[1].receiver is not None and transactions[0].source is not None


# ---------------------------------------------------------------- inline mode


def _article(result_id: str, *, keyboard: bool = True) -> InlineQueryResultArticle:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("more", switch_inline_query="")]])
    return InlineQueryResultArticle(
        result_id,
        "Draw",
        InputTextMessageContent("drawing…"),
        reply_markup=markup if keyboard else None,
    )


async def _photo_file_id(fake: FakeTelegram, bot: Bot) -> str:
    fake.send_text(CHAT, "hi")
    sent = await bot.send_photo(CHAT, png())
    return sent.photo[-1].file_id


async def test_answer_inline_query_is_checked_like_telegrams(fake: FakeTelegram, bot: Bot):
    query_id = fake.send_inline_query("cats")
    with pytest.raises(BadRequest, match=ci("RESULTS_TOO_MUCH")):
        await bot.answer_inline_query(query_id, [_article(f"r{i}") for i in range(51)])
    with pytest.raises(BadRequest, match=ci("RESULT_ID_INVALID")):
        await bot.answer_inline_query(query_id, [_article("x" * 65)])
    with pytest.raises(BadRequest, match=ci("RESULT_ID_DUPLICATE")):
        await bot.answer_inline_query(query_id, [_article("a"), _article("a")])
    with pytest.raises(BadRequest, match=ci("NEXT_OFFSET_INVALID")):
        await bot.answer_inline_query(query_id, [_article("a")], next_offset="9" * 65)
    with pytest.raises(BadRequest, match=ci("wrong file identifier")):
        await bot.answer_inline_query(query_id, [InlineQueryResultCachedPhoto("p", "nope")])
    fifty = [_article("d" * 64)] + [_article(f"r{i}") for i in range(49)]
    assert await bot.answer_inline_query(query_id, fifty, next_offset="9" * 64, is_personal=True)
    answer = fake.inline_answers[query_id]
    assert len(answer["results"]) == 50 and answer["is_personal"] is True
    assert answer["next_offset"] == "9" * 64 and answer["cache_time"] == 300
    with pytest.raises(BadRequest, match=ci("query is too old")):  # one answer per query
        await bot.answer_inline_query(query_id, [_article("a")])


async def test_a_chosen_result_has_a_message_id_only_with_a_keyboard(fake: FakeTelegram, bot: Bot):
    file_id = await _photo_file_id(fake, bot)
    query_id = fake.send_inline_query("cats")
    results = [_article("draw"), _article("plain", keyboard=False)]
    await bot.answer_inline_query(query_id, [*results, InlineQueryResultCachedPhoto("p", file_id)])
    inline_id = fake.choose_inline_result(query_id, "draw")
    assert inline_id is not None and fake.inline_messages[inline_id]["text"] == "drawing…"
    assert fake.choose_inline_result(query_id, "plain") is None
    assert fake.choose_inline_result(query_id, "p") is None
    chosen = [u["chosen_inline_result"] for u in fake._pending if "chosen_inline_result" in u]
    assert [c.get("inline_message_id") for c in chosen] == [inline_id, None, None]
    assert [c["result_id"] for c in chosen] == ["draw", "plain", "p"]
    fake.inline_feedback = False  # /setinlinefeedback off: nothing is reported
    fake.choose_inline_result(query_id, "draw")
    assert len([u for u in fake._pending if "chosen_inline_result" in u]) == 3


async def test_edit_message_media_of_an_inline_message_takes_a_file_id_not_an_upload(
    fake: FakeTelegram, bot: Bot
):
    file_id = await _photo_file_id(fake, bot)
    query_id = fake.send_inline_query("cats")
    await bot.answer_inline_query(query_id, [_article("draw")])
    inline_id = fake.choose_inline_result(query_id, "draw")
    assert inline_id is not None
    with pytest.raises(BadRequest, match=ci("can't upload file to inline message")):
        await bot.edit_message_media(InputMediaPhoto(png()), inline_message_id=inline_id)
    with pytest.raises(BadRequest, match=ci("MESSAGE_ID_INVALID")):
        await bot.edit_message_media(InputMediaPhoto(file_id), inline_message_id="BAAAAnope")
    with pytest.raises(BadRequest, match=ci("wrong file identifier")):
        await bot.edit_message_media(InputMediaPhoto("nope"), inline_message_id=inline_id)
    assert "text" in fake.inline_messages[inline_id]  # nothing changed by the refusals
    done = await bot.edit_message_media(
        InputMediaPhoto(file_id, caption="a cat"), inline_message_id=inline_id
    )
    assert done is True
    shown = fake.inline_messages[inline_id]
    assert shown["photo"][-1]["file_id"] == file_id and shown["caption"] == "a cat"
    assert "text" not in shown and "reply_markup" not in shown
    with pytest.raises(BadRequest, match=ci("there is no text")):
        await bot.edit_message_text("again", inline_message_id=inline_id)


# ---------------------------------------------------------------- webhook mode


class Receiver:
    """A webhook on 127.0.0.1: records each POST; answers with the statuses it is given."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[tuple[dict[str, Any], str | None]] = []
        self.statuses = list(statuses or [])
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> web.Response:
        self.posts.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def _until(check: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_set_webhook_posts_updates_with_the_secret(
    fake: FakeTelegram, bot: Bot, receiver: Receiver
) -> None:
    assert await bot.set_webhook(receiver.url, secret_token="s3cret_-X", allowed_updates=[])
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (receiver.url, 0)
    fake.send_text(CHAT, "one")
    first = fake.last_update_id
    fake.send_text(CHAT + 1, "two")
    second = fake.last_update_id
    await _until(lambda: len(receiver.posts) == 2)
    assert sorted(p["update_id"] for p, _ in receiver.posts) == [first, second]
    assert {secret for _, secret in receiver.posts} == {"s3cret_-X"}
    assert {p["message"]["text"] for p, _ in receiver.posts} == {"one", "two"}
    assert fake.webhook is not None and fake.webhook["secret_token"] == "s3cret_-X"
    await _until(lambda: fake.unconfirmed_updates == 0)
    assert [a.status for a in fake.webhook_attempts_of(first)] == [200]


async def test_get_updates_conflicts_while_a_webhook_is_set(
    fake: FakeTelegram, bot: Bot, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token="abc")
    with pytest.raises(Exception, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    fake.send_text(CHAT, "polled")
    update_id = fake.last_update_id
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == update_id
    assert receiver.posts == []


@pytest.mark.parametrize("secret", ["has space", "x" * 257, "ünï", "a:b"])
async def test_set_webhook_refuses_a_bad_secret(bot: Bot, receiver: Receiver, secret: str) -> None:
    with pytest.raises(BadRequest, match=ci("secret token contains unallowed characters")):
        await bot.set_webhook(receiver.url, secret_token=secret)


async def test_set_webhook_wants_https_or_this_machine(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=ci("HTTPS URL must be provided")):
        await bot.set_webhook("http://bot.example.org/hook", secret_token="abc")


async def test_a_failed_delivery_is_retried_until_a_2xx(
    fake: FakeTelegram, bot: Bot, receiver: Receiver
) -> None:
    fake.webhook_retry_delay = 0.05
    receiver.statuses = [500, 403]
    await bot.set_webhook(receiver.url, secret_token="abc")
    fake.send_text(CHAT, "again")
    update_id = fake.last_update_id
    await _until(lambda: len(receiver.posts) == 3)
    await _until(lambda: fake.unconfirmed_updates == 0)
    assert [a.status for a in fake.webhook_attempts_of(update_id)] == [500, 403, 200]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 403 Forbidden"
    assert info.pending_update_count == 0


async def test_a_webhook_that_is_down_gets_the_update_once_it_is_up(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.webhook_retry_delay = 0.05
    late = Receiver()
    port = free_port()
    await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="abc")
    fake.send_text(CHAT, "wait for me")
    update_id = fake.last_update_id
    await _until(lambda: len(fake.webhook_attempts_of(update_id)) >= 2)
    assert all(a.status is None for a in fake.webhook_attempts_of(update_id))
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message is not None and "Connection" in info.last_error_message
    app = web.Application()
    app.router.add_post("/hook", late._take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await _until(lambda: len(late.posts) == 1)
        assert late.posts[0][0]["update_id"] == update_id
        await _until(lambda: fake.unconfirmed_updates == 0)
    finally:
        await runner.cleanup()


async def test_deliver_again_posts_the_same_update_twice(
    fake: FakeTelegram, bot: Bot, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token="abc")
    fake.send_text(CHAT, "twice")
    update_id = fake.last_update_id
    await _until(lambda: len(receiver.posts) == 1)
    await _until(lambda: fake.unconfirmed_updates == 0)
    fake.deliver_again(update_id)
    await _until(lambda: len(receiver.posts) == 2)
    assert receiver.posts[0] == receiver.posts[1]
    assert [a.status for a in fake.webhook_attempts_of(update_id)] == [200, 200]


async def test_deliveries_run_a_few_at_once(fake: FakeTelegram, bot: Bot) -> None:
    """Up to max_connections POSTs are open at the same time."""
    open_now, most = 0, 0
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await release.wait()
        open_now -= 1
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await bot.set_webhook(url, secret_token="abc", max_connections=3)
        for n in range(6):
            fake.send_text(CHAT + n, f"text {n}")
        await _until(lambda: open_now == 3)
        await asyncio.sleep(0.1)
        assert most == 3
        release.set()
        await _until(lambda: fake.unconfirmed_updates == 0)
        assert most == 3
    finally:
        await runner.cleanup()


async def test_one_chats_updates_go_one_at_a_time_other_chats_meanwhile(
    fake: FakeTelegram, bot: Bot, receiver: Receiver
) -> None:
    """As Telegram: the next update of a chat is POSTed once the previous one got its 2xx."""
    fake.webhook_retry_delay = 0.3
    receiver.statuses = [500]  # the chat's first update is refused once
    await bot.set_webhook(receiver.url, secret_token="abc")
    fake.send_text(CHAT, "first")
    first = fake.last_update_id
    await _until(lambda: len(receiver.posts) == 1)
    fake.send_text(CHAT, "second")
    fake.send_text(CHAT + 1, "other chat")
    await _until(lambda: len(receiver.posts) == 2)
    assert receiver.posts[1][0]["message"]["text"] == "other chat"  # not the chat's second
    await _until(lambda: len(receiver.posts) == 4)
    texts = [p["message"]["text"] for p, _ in receiver.posts]
    assert texts[2:] == ["first", "second"]  # redelivered first, then the second
    assert [a.status for a in fake.webhook_attempts_of(first)] == [500, 200]
