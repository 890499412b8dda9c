"""Inline mode (issue 16 point 1), end to end: `@bot words` lists the person's own pictures
whose prompts match (cached photos by file_id, newest first, paged, personal), and "Draw:
words" chosen runs a normal job whose picture fills the inline message by file_id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.telegram.handlers import inline
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

ANN, BEN = 1001, 1002
StartBot = Callable[..., Awaitable[RunningBot]]


def _ann() -> dict[str, Any]:
    return {"id": ANN, "is_bot": False, "first_name": "Ann", "language_code": "en"}


def _ben() -> dict[str, Any]:
    return {"id": BEN, "is_bot": False, "first_name": "Ben", "language_code": "zh"}


async def _draw(tg: FakeTelegram, chat: int, user: dict[str, Any], prompt: str) -> str:
    """A picture made in a private chat; the file_id Telegram gave its photo."""
    before = len(tg.calls_of("sendPhoto"))
    tg.send_text(chat, prompt, user=user)
    photo = (await tg.wait_for("sendPhoto", count=before + 1, timeout=20))[before]
    return str(photo.result["photo"][-1]["file_id"])


async def _answer(tg: FakeTelegram, query_id: str) -> dict[str, Any]:
    await tg.wait_for("answerInlineQuery", lambda c: c.params["inline_query_id"] == query_id)
    return tg.inline_answers[query_id]


async def _answer_once_recorded(
    tg: FakeTelegram, words: str, user: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A query's answer once it lists a picture: the photo's file_id is recorded just after
    the photo is sent, so a query at once may find nothing yet."""
    for _ in range(50):
        query_id = tg.send_inline_query(words, user=user)
        answer = await _answer(tg, query_id)
        if len(answer["results"]) > 1:
            return query_id, answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"no picture for {words!r}")


async def test_a_query_lists_only_the_persons_own_matching_pictures_newest_first_and_paged(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot, monkeypatch: pytest.MonkeyPatch
):
    fox = await _draw(tg, ANN, _ann(), "a red fox in the snow")
    await _draw(tg, ANN, _ann(), "a blue whale")
    car = await _draw(tg, ANN, _ann(), "a RED sports car")
    await _draw(tg, BEN, _ben(), "a red fox too")  # Ben's: never in Ann's answers
    answer = await _answer(tg, tg.send_inline_query("red", user=_ann()))
    assert answer["is_personal"] is True and answer["cache_time"] <= 10
    draw, *photos = answer["results"]
    assert draw["id"] == "draw" and draw["type"] == "article"
    assert draw["title"] == "🎨 Draw: red" and "reply_markup" in draw
    assert [p["photo_file_id"] for p in photos] == [car, fox]
    assert [p["caption"] for p in photos] == ["a RED sports car", "a red fox in the snow"]
    assert answer["next_offset"] == ""

    monkeypatch.setattr(inline, "PAGE", 1)
    first = await _answer(tg, tg.send_inline_query("red", user=_ann()))
    assert first["results"][0]["id"] == "draw" and first["next_offset"] == "1"
    assert [r.get("photo_file_id") for r in first["results"][1:]] == [car]
    second = await _answer(tg, tg.send_inline_query("red", user=_ann(), offset="1"))
    assert [r["photo_file_id"] for r in second["results"]] == [fox]  # no "Draw" on later pages
    assert second["next_offset"] == ""
    # Ben's words find his own picture; an empty query lists his pictures and offers no draw.
    zh = await _answer(tg, tg.send_inline_query("", user=_ben()))
    assert [r["type"] for r in zh["results"]] == ["photo"]
    bens = await _answer(tg, tg.send_inline_query("fox", user=_ben()))
    assert bens["results"][0]["title"] == "🎨 画： fox" and len(bens["results"]) == 2


async def test_draw_chosen_runs_a_normal_job_and_fills_the_inline_message_by_file_id(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    bot = await start_bot(daily_images_per_user=1)
    tg.send_text(ANN, "/start", user=_ann())
    await tg.wait_for("sendMessage")
    words = "a lighthouse at dusk & stars"
    query_id = tg.send_inline_query(words, user=_ann())
    await _answer(tg, query_id)
    inline_id = tg.choose_inline_result(query_id, "draw")
    assert inline_id is not None
    placeholder = tg.inline_messages[inline_id]
    assert "Drawing" in placeholder["text"]
    [edit] = await tg.wait_for("editMessageMedia", timeout=20)
    [photo] = tg.calls_of("sendPhoto")  # the picture went to Ann's private chat first
    assert photo.params["chat_id"] == ANN
    file_id = photo.result["photo"][-1]["file_id"]
    assert edit.params["inline_message_id"] == inline_id
    assert edit.params["media"]["media"] == file_id and not edit.files
    shown = tg.inline_messages[inline_id]
    assert shown["photo"][-1]["file_id"] == file_id and "text" not in shown
    assert words.replace("&", "&amp;") in shown["caption"]
    assert upstream.requests[0].json["messages"][0]["content"] == words
    assert db_rows(bot.settings, "select chat_id, user_id, prompt, status from jobs") == [
        (ANN, ANN, words, "succeeded")
    ]

    # The same daily quota as any job: the second draw says so in its inline message.
    second = tg.send_inline_query("a second one", user=_ann())
    await _answer(tg, second)
    other = tg.choose_inline_result(second, "draw")
    assert other is not None
    await tg.wait_for("editMessageText", lambda c: c.params.get("inline_message_id") == other)
    assert "daily limit" in tg.inline_messages[other]["text"]
    assert len(upstream.requests) == 1


async def test_someone_who_never_started_the_bot_is_told_in_the_inline_message(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    stranger = {"id": 5555, "is_bot": False, "first_name": "Sam", "language_code": "en"}
    # What Telegram answers a bot writing first to someone who never opened its chat.
    for method in ("sendChatAction", "sendMessage", "sendPhoto"):
        tg.fail_next(
            method,
            error_code=403,
            description="Forbidden: bot can't initiate conversation with a user",
            retry_after=None,
            times=3,
        )
    query_id = tg.send_inline_query("a cat", user=stranger)
    await _answer(tg, query_id)
    inline_id = tg.choose_inline_result(query_id, "draw")
    assert inline_id is not None
    await tg.wait_for("editMessageText", lambda c: c.params.get("inline_message_id") == inline_id)
    assert "press Start first" in tg.inline_messages[inline_id]["text"]
    assert upstream.requests == []  # found out before anything was spent
    assert db_rows(bot.settings, "select count(*) from jobs") == [(0,)]


async def test_a_refused_person_gets_no_results_and_choosing_a_picture_runs_nothing(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(allowed_user_ids=str(ANN))
    fox = await _draw(tg, ANN, _ann(), "a red fox")
    refused = await _answer(tg, tg.send_inline_query("red", user=_ben()))
    assert refused["results"] == [] and refused["is_personal"] is True
    mine, answer = await _answer_once_recorded(tg, "fox", _ann())
    picture = answer["results"][1]
    assert picture["photo_file_id"] == fox
    assert tg.choose_inline_result(mine, picture["id"]) is None  # no keyboard, no message id
    tg.send_text(ANN, "/usage", user=_ann())  # answered with a chart, the numbers its caption
    await tg.wait_for("sendPhoto", lambda c: "image(s) today" in c.params.get("caption", ""))
    assert len(upstream.requests) == 1


async def test_the_longest_query_is_drawn_whole_and_shown_within_telegrams_limits(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ANN, "/start", user=_ann())
    await tg.wait_for("sendMessage")
    words = ("a very long <description> & more " * 10)[:256]  # Telegram's longest inline query
    query_id = tg.send_inline_query(words, user=_ann())
    answer = await _answer(tg, query_id)
    draw = answer["results"][0]
    assert len(draw["title"]) <= 110 and draw["title"].endswith("…")
    assert "&lt;description&gt;" in draw["input_message_content"]["message_text"]
    inline_id = tg.choose_inline_result(query_id, "draw")
    assert inline_id is not None
    [edit] = await tg.wait_for("editMessageMedia", timeout=20)
    assert edit.ok and len(tg.inline_messages[inline_id]["caption"]) <= 1024
    assert upstream.requests[0].json["messages"][0]["content"] == words.strip()
