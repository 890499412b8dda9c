"""Hostile images and hostile downloads, end to end: refused early, nothing stored, bot fine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows, pillow_bomb, png_bomb
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import DOWNLOAD_MAX, FakeTelegram

ALICE, BOB, ADMIN = 1001, 1002, 9999  # 9999: ADMIN_USER_IDS in the e2e settings
EN_TOO_BIG = "too big for me to open safely"
ZH_TOO_BIG = "这张图片太大"


BOMBS = {
    "png-photo": lambda tg, chat, user: tg.send_photo(chat, png_bomb(), user=user, caption="x"),
    "png-document": lambda tg, chat, user: tg.send_document(
        chat, png_bomb(), file_name="big.png", mime_type="image/png", user=user, caption="x"
    ),
    "progressive-jpeg-document": lambda tg, chat, user: tg.send_document(
        chat,
        pillow_bomb("JPEG", quality=40, progressive=True),
        file_name="big.jpg",
        mime_type="image/jpeg",
        user=user,
        caption="x",
    ),
    "webp-document": lambda tg, chat, user: tg.send_document(
        chat,
        pillow_bomb("WEBP", lossless=True),
        file_name="big.webp",
        mime_type="image/webp",
        user=user,
        caption="x",
    ),
}


def _blobs(bot: RunningBot) -> list[Path]:
    root = bot.settings.blobs_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _answer(tg: FakeTelegram, needle: str, chat: int = ALICE) -> str:
    """The first message to this chat that says ``needle`` (a status message may come first)."""
    [call] = await tg.wait_for(
        "sendMessage",
        lambda c: str(c.params.get("chat_id")) == str(chat) and needle in c.params.get("text", ""),
    )
    return str(call.params["text"])


@pytest.mark.parametrize("case", sorted(BOMBS))
@pytest.mark.parametrize(("lang", "needle"), [("en", EN_TOO_BIG), ("zh", ZH_TOO_BIG)])
async def test_a_decompression_bomb_is_refused_before_decoding_and_leaves_nothing(
    case: str, lang: str, needle: str, tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    tg.photo_thumbnails = False  # the fake would decode the bomb itself for a thumbnail
    chat, other = (ALICE, BOB) if lang == "en" else (BOB, ALICE)
    BOMBS[case](tg, chat, tg.user(chat, language_code=lang))
    await _answer(tg, needle, chat)
    assert upstream.requests == []
    assert _blobs(bot) == []
    assert db_rows(bot.settings, "select count(*) from images") == [(0,)]
    # the bot is fine, and so is another chat
    tg.send_text(other, "a small house", user=tg.user(other))
    await tg.wait_for("sendPhoto")
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        (png_bomb, "image/png"),
        (lambda: pillow_bomb("JPEG", quality=40, progressive=True), "image/jpeg"),
        (lambda: pillow_bomb("WEBP", lossless=True), "image/webp"),
    ],
    ids=["png", "progressive-jpeg", "webp"],
)
async def test_an_upstream_bomb_is_a_bad_answer_not_a_crash(
    answer: tuple, tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    make, mime = answer
    upstream.raw_output = (make(), mime)
    tg.send_text(ALICE, "a huge picture", user=tg.user(ALICE))
    await _answer(tg, "sent back something I couldn't use")
    assert tg.calls_of("sendPhoto", "sendDocument") == []
    assert _blobs(bot) == []
    assert db_rows(bot.settings, "select status, error_code from jobs") == [
        ("failed", "bad_response")
    ]
    upstream.raw_output = None
    tg.send_text(BOB, "a small house", user=tg.user(BOB))
    await tg.wait_for("sendPhoto")


async def test_a_download_bigger_than_getfile_declared_is_cut_off(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    real = 25 * 1024 * 1024
    data = png_bomb(64) + bytes(real - len(png_bomb(64)))
    tg.photo_thumbnails = False
    message = tg.send_document(
        ALICE, data, file_name="a.png", mime_type="image/png", caption="edit", user=tg.user(ALICE)
    )
    file_id = message["document"]["file_id"]
    tg.set_file_size(file_id, 1024)  # getFile and the message both say 1 KB
    await _answer(tg, "20 MB")
    assert tg.calls_of("getFile")  # it was asked for, and its word taken as a claim only
    # refused on its Content-Length: only what the sockets buffered went out, under the cap
    assert tg.file_bytes_sent.get(file_id, 0) < DOWNLOAD_MAX
    assert upstream.requests == [] and _blobs(bot) == []


async def test_an_album_over_the_input_limit_leaves_no_blobs(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    for shade in range(5):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (shade * 40, 10, 10)).save(buf, "PNG")
        tg.send_photo(ALICE, buf.getvalue(), media_group_id="alb", caption="combine")
    await _answer(tg, "at most 3")
    assert upstream.requests == []
    assert _blobs(bot) == []
    assert db_rows(bot.settings, "select count(*) from images") == [(0,)]


GROUP = -1001234567890


def _in_group(tg: FakeTelegram, text: str, user: dict) -> None:  # type: ignore[type-arg]
    tg.send_text(GROUP, text, user=user, chat_type="supergroup")


@pytest.mark.parametrize(("lang", "needle"), [("en", "your daily limit"), ("zh", "达到每日上限")])
async def test_one_user_reaching_the_storage_limit_leaves_the_other_unaffected(
    lang: str, needle: str, tg: FakeTelegram, upstream: FakeImageAPI, start_bot
) -> None:
    bot = await start_bot(max_stored_mb_per_user_day=1)
    alice, bob = tg.user(ALICE, language_code=lang), tg.user(BOB, first_name="Bob")
    upstream.big_output_bytes = 1_200_000  # one result takes Alice past her 1 MB
    _in_group(tg, "/imagine a cat", alice)
    await tg.wait_for("sendPhoto")
    upstream.big_output_bytes = None
    blobs = _blobs(bot)

    _in_group(tg, "/imagine a dog", alice)  # over the limit: no job, no upstream call
    text = await _answer(tg, needle, GROUP)
    assert "1 MB" in text
    assert len(upstream.requests) == 1
    tg.send_photo(
        GROUP,
        pillow_bomb("PNG", (64, 48)),
        user=alice,
        chat_type="supergroup",
        caption="/edit make it blue",
    )  # nor is a new photo of hers stored
    await tg.wait_for("sendMessage", lambda c: needle in c.params.get("text", ""), count=2)
    assert len(upstream.requests) == 1 and _blobs(bot) == blobs

    _in_group(tg, "/imagine a dog", bob)  # Bob, in the same group, is not affected
    await tg.wait_for("sendPhoto", count=2)
    assert len(upstream.requests) == 2
    owners = db_rows(bot.settings, "select user_id from images order by id")
    assert owners == [(ALICE,), (BOB,)]
    assert db_rows(bot.settings, "select user_id, status from jobs order by id") == [
        (ALICE, "succeeded"),
        (BOB, "succeeded"),
    ]

    admin = tg.user(ADMIN, first_name="Admin")  # admins are exempt, as from the daily quota
    upstream.big_output_bytes = 1_200_000
    for n in (3, 4):
        _in_group(tg, "/imagine a big sky", admin)
        await tg.wait_for("sendPhoto", count=n)
    assert len(upstream.requests) == 4
