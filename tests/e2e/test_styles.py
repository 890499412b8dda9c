"""Styles (issue 16 point 2), end to end: the /styles gallery in both languages, one tap on the
chat's current image or on its next text, and each chat's own styles (/style add, remove),
kept apart between chats and working after a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.services import styles
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import close, db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

ANN, BEN = 1001, 1002


def _ann() -> dict[str, Any]:
    return {"id": ANN, "is_bot": False, "first_name": "Ann", "language_code": "en"}


def _ben() -> dict[str, Any]:
    return {"id": BEN, "is_bot": False, "first_name": "Ben", "language_code": "zh"}


def _data(call: Call) -> list[str]:
    return [
        b["callback_data"] for row in call.params["reply_markup"]["inline_keyboard"] for b in row
    ]


def _labels(call: Call) -> list[str]:
    return [b["text"] for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


def _to(chat: int, words: str) -> Callable[[Call], bool]:
    return lambda c: c.params.get("chat_id") == chat and words in c.params.get("text", "")


def _prompt(req: Any) -> str:
    content = req.json["messages"][0]["content"]
    return str(content if isinstance(content, str) else content[0]["text"])


async def test_the_gallery_in_both_languages_restyles_the_current_image_after_a_restart(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ANN, "a cat on a sofa", user=_ann())
    await tg.wait_for("sendPhoto")
    [(image,)] = db_rows(bot.settings, "select id from images where chat_id = ?", ANN)
    tg.send_text(ANN, "/styles", user=_ann())
    [gallery] = await tg.wait_for("sendMessage", _to(ANN, "Styles"))
    text = gallery.params["text"]
    for name in ("Figurine", "Sticker", "Logo", "Product photo", "Line art", "Watercolor"):
        assert name in text
    assert "Pixel art" in text and "3D clay" in text and "1/7-scale collectible" in text
    assert _data(gallery) == [f"sty:{key}:{image}" for key in styles.KEYS]
    # Ben reads Chinese and has no picture: his gallery's taps wait for his next text.
    tg.send_text(BEN, "/styles", user=_ben())
    [zh] = await tg.wait_for("sendMessage", _to(BEN, "风格"))
    assert "手办" in zh.params["text"] and "🧸 手办" in _labels(zh)
    assert _data(zh) == [f"sty:{key}:0" for key in styles.KEYS]

    await bot.restart()
    tg.press_button(ANN, gallery.result["message_id"], f"sty:figurine:{image}", user=_ann())
    await tg.wait_for("sendPhoto", count=2, timeout=20)
    [_, styled] = upstream.requests
    assert _prompt(styled) == styles.fill(styles.CURATED[0].template, None)
    assert "1/7-scale commercial figure of the main subject" in _prompt(styled)
    assert close(styled.input_images[0].color, upstream.outputs[0])
    assert db_rows(bot.settings, "select chat_id, kind from jobs order by id")[-1] == (ANN, "edit")


async def test_a_style_without_a_picture_wraps_that_chats_next_text_once(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(BEN, "/styles", user=_ben())
    [gallery] = await tg.wait_for("sendMessage", _to(BEN, "风格"))
    tg.press_button(BEN, gallery.result["message_id"], "sty:sticker:0", user=_ben())
    await tg.wait_for("sendMessage", _to(BEN, "下一条文字"))
    await bot.restart()  # the waiting style is a row, not memory
    tg.send_text(ANN, "a tree", user=_ann())  # another chat's text is not Ben's next one
    await tg.wait_for("sendPhoto")
    tg.send_text(BEN, "a red fox", user=_ben())
    await tg.wait_for("sendPhoto", count=2, timeout=20)
    tg.send_text(BEN, "/new", user=_ben())
    await tg.wait_for("sendMessage", _to(BEN, "新"))
    tg.send_text(BEN, "a dog", user=_ben())
    await tg.wait_for("sendPhoto", count=3, timeout=20)
    prompts = [_prompt(r) for r in upstream.requests]
    assert prompts == [
        "a tree",
        styles.fill(styles.curated("sticker").template, "a red fox"),  # type: ignore[union-attr]
        "a dog",
    ]
    assert db_rows(bot.settings, "select count(*) from pending_styles") == [(0,)]


async def test_a_style_on_a_result_and_a_too_long_styled_text_keeps_the_style(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ANN, "a lighthouse", user=_ann())
    [photo] = await tg.wait_for("sendPhoto")
    [(image,)] = db_rows(bot.settings, "select id from images")
    tg.press_button(ANN, photo.result["message_id"], f"stg:{image}", user=_ann())
    [gallery] = await tg.wait_for("sendMessage", _to(ANN, "Styles"))
    assert gallery.params["reply_parameters"]["message_id"] == photo.result["message_id"]
    assert f"sty:pixel:{image}" in _data(gallery)
    tg.press_button(ANN, gallery.result["message_id"], f"sty:pixel:{image}", user=_ann())
    await tg.wait_for("sendPhoto", count=2, timeout=20)
    assert _prompt(upstream.requests[1]).startswith("the main subject of the provided picture")

    # A waiting style and words that, wrapped, are too long: refused, and the style waits on.
    tg.send_text(ANN, "/new", user=_ann())
    # /new waits its turn behind the styled job's last writes; /styles reads at once
    await tg.wait_for("sendMessage", _to(ANN, "Starting fresh"))
    tg.send_text(ANN, "/styles", user=_ann())
    [text_gallery] = await tg.wait_for("sendMessage", _to(ANN, "then send the words"))
    tg.press_button(ANN, text_gallery.result["message_id"], "sty:logo:0", user=_ann())
    await tg.wait_for("sendMessage", _to(ANN, "next text is drawn"))
    tg.send_text(ANN, "x" * 3950, user=_ann())
    await tg.wait_for("sendMessage", _to(ANN, "too long"))
    tg.send_text(ANN, "a bakery called Crumbs", user=_ann())
    await tg.wait_for("sendPhoto", count=3, timeout=20)
    assert _prompt(upstream.requests[2]).startswith("Create a modern, minimalist logo for a bakery")


async def test_own_styles_are_per_chat_listed_applied_and_removed(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ANN, "/style add Neon {prompt}, glowing in neon light", user=_ann())
    await tg.wait_for("sendMessage", _to(ANN, "Added the style <b>neon</b>"))
    for bad, says in (
        ("/style add neon", "/style add name template"),
        ("/style add glow a glowing thing", "needs a <code>{prompt}</code> slot"),
        ("/style add NEON {prompt} again", "a style called neon already"),
        ("/style add sticker {prompt}", "a style called sticker already"),
        ("/style add bad!name {prompt}", "one word of up to 32"),
        ("/style add long " + "{prompt}" + "y" * 1000, "too long (over 1000"),
        ("/style remove nothing", "no style called nothing"),
        ("/style", "/style remove name"),
    ):
        tg.send_text(ANN, bad, user=_ann())
        await tg.wait_for("sendMessage", _to(ANN, says))
    [(style_id, chat)] = db_rows(bot.settings, "select id, chat_id from chat_styles")
    assert chat == ANN
    tg.send_text(ANN, "/styles", user=_ann())
    [gallery] = await tg.wait_for("sendMessage", _to(ANN, "This chat's own"))
    assert (
        "<b>neon</b>" in gallery.params["text"]
        and "glowing in neon light" in gallery.params["text"]
    )
    assert _data(gallery)[-1] == f"sto:{style_id}:0" and _labels(gallery)[-1] == "✏️ neon"
    tg.send_text(BEN, "/styles", user=_ben())
    [theirs] = await tg.wait_for("sendMessage", _to(BEN, "风格"))
    assert "neon" not in theirs.params["text"] and f"sto:{style_id}:0" not in _data(theirs)
    # Ann's style id pressed in Ben's chat names nothing there.
    tg.press_button(BEN, theirs.result["message_id"], f"sto:{style_id}:0", user=_ben())
    await tg.wait_for("answerCallbackQuery", lambda c: "删除" in c.params.get("text", ""))

    await bot.restart()
    tg.press_button(ANN, gallery.result["message_id"], f"sto:{style_id}:0", user=_ann())
    await tg.wait_for("sendMessage", _to(ANN, "Style <b>neon</b> is set"))
    tg.send_text(ANN, "a sports car", user=_ann())
    await tg.wait_for("sendPhoto", timeout=20)
    assert _prompt(upstream.requests[0]) == "a sports car, glowing in neon light"
    tg.send_text(ANN, "/style remove neon", user=_ann())
    await tg.wait_for("sendMessage", _to(ANN, "Removed the style <b>neon</b>"))
    tg.press_button(ANN, gallery.result["message_id"], f"sto:{style_id}:0", user=_ann())
    await tg.wait_for("answerCallbackQuery", lambda c: "removed" in c.params.get("text", ""))
    assert db_rows(bot.settings, "select count(*) from chat_styles") == [(0,)]
    assert len(upstream.requests) == 1


async def test_thirty_long_styles_fit_the_gallery_and_a_thirty_first_is_refused(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    for i in range(styles.MAX_OWN + 1):
        name = f"{i:02d}" + "n" * 30  # 32 characters, the longest name
        template = "{prompt} " + "<&>" * 330  # ~1000 characters that need escaping
        tg.send_text(ANN, f"/style add {name} {template}", user=_ann())
        said = "Added the style" if i < styles.MAX_OWN else "the most it can keep"
        await tg.wait_for("sendMessage", _to(ANN, said))
        tg.calls.clear()
    tg.send_text(ANN, "/styles", user=_ann())
    [gallery] = await tg.wait_for("sendMessage", _to(ANN, "This chat's own"))
    assert gallery.ok  # within Telegram's 4096 characters and its keyboard limits
    assert len(_data(gallery)) == len(styles.KEYS) + styles.MAX_OWN
    assert "&lt;&amp;&gt;" in gallery.params["text"]
    assert db_rows(bot.settings, "select count(*) from chat_styles") == [(styles.MAX_OWN,)]
