"""Bad input in a private chat: a clear answer in the user's language, nothing lost, next works."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001


def _gif_animated() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


async def _answer(tg: FakeTelegram, count: int = 1) -> str:
    calls = await tg.wait_for("sendMessage", count=count)
    return str(calls[-1].params["text"])


async def _next_message_works(tg: FakeTelegram, upstream: FakeImageAPI) -> None:
    before = len(tg.calls_of("sendPhoto"))
    tg.send_text(CHAT, "a small house")
    await tg.wait_for("sendPhoto", count=before + 1)


SENDERS = {
    "sticker": (lambda tg: tg.send_sticker(CHAT), "only understand text and pictures"),
    "voice": (lambda tg: tg.send_voice(CHAT), "only understand text and pictures"),
    "pdf": (
        lambda tg: tg.send_document(
            CHAT, b"%PDF-1.4 ...", file_name="a.pdf", mime_type="application/pdf"
        ),
        "only work with pictures",
    ),
    "empty-image": (
        lambda tg: tg.send_document(
            CHAT, b"", file_name="a.png", mime_type="image/png", caption="edit"
        ),
        "empty",
    ),
    "corrupt-image": (
        lambda tg: tg.send_document(
            CHAT, png((1, 2, 3))[:60], file_name="a.png", mime_type="image/png", caption="edit"
        ),
        "damaged",
    ),
    "not-an-image-named-png": (
        lambda tg: tg.send_document(
            CHAT, b"hello world" * 10, file_name="a.png", mime_type="image/png"
        ),
        "damaged",
    ),
    "animated-gif": (lambda tg: tg.send_animation(CHAT, _gif_animated()), "Animated"),
    "unknown-command": (lambda tg: tg.send_text(CHAT, "/frobnicate"), "don't know that command"),
    "empty-prompt": (lambda tg: tg.send_text(CHAT, "   "), "no description"),
    "over-long-prompt": (lambda tg: tg.send_text(CHAT, "x" * 4090), "too long"),
}


@pytest.mark.parametrize("case", sorted(SENDERS))
async def test_bad_input_gets_a_clear_answer_and_costs_nothing(
    case: str, tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    send, needle = SENDERS[case]
    send(tg)
    text = await _answer(tg)
    assert needle.lower() in text.lower()
    assert upstream.requests == []
    await _next_message_works(tg, upstream)
    statuses = db_rows(bot.settings, "select status from jobs")
    assert ("running",) not in statuses


async def test_file_over_the_download_limit(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    msg = tg.send_document(
        CHAT, png((5, 5, 5)), file_name="big.png", mime_type="image/png", caption="edit this"
    )
    # Claim the file is 25 MB, as Telegram would for a file too big for getFile.
    tg.set_file_size(msg["document"]["file_id"], 25 * 1024 * 1024)
    text = await _answer(tg)
    assert "20 MB" in text
    assert upstream.requests == []
    await _next_message_works(tg, upstream)


async def test_bad_input_in_chinese(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    tg.send_sticker(CHAT, user=tg.user(CHAT, language_code="zh-CN"))
    text = await _answer(tg)
    assert "只能理解文字和图片" in text
