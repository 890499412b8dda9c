"""Every text goes out as HTML (one default): user and model words in it are shown literally."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import RunningBot
from tests.fakes import image_api
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
TAGS = "<b>x</b> & <i>"


async def test_a_prompt_with_tags_comes_back_literally_in_the_caption(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, f"draw {TAGS}")
    [photo] = await tg.wait_for("sendPhoto")
    assert photo.params["parse_mode"] == "HTML"
    assert photo.result["caption"].startswith(f"draw {TAGS}")
    assert not any(
        e["type"] in ("bold", "italic") for e in photo.result.get("caption_entities", [])
    )


async def test_a_model_text_answer_with_tags_comes_back_literally(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    bot: RunningBot,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(image_api, "TEXT_ONLY_ANSWER", f"1 < 2 and {TAGS}")
    upstream.answer_shape = "text-only"
    tg.send_text(CHAT, "describe a cat")
    [msg] = await tg.wait_for(
        "sendMessage", lambda c: "without a picture" in c.params.get("text", "")
    )
    assert msg.params["parse_mode"] == "HTML"
    assert f"1 < 2 and {TAGS}" in msg.result["text"]


async def test_a_long_prompt_full_of_entities_is_cut_to_fit_the_caption(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    prompt = "<&>" * 400  # escaped, far longer than a caption; shown, 1200 characters
    tg.send_text(CHAT, prompt)
    [photo] = await tg.wait_for("sendPhoto")
    caption = photo.result["caption"]
    assert len(caption) <= 1024
    assert caption.startswith(prompt[:200]) and "…" in caption
    assert "gemini-2.5-flash-image" in caption


async def test_every_text_the_bot_sends_is_parsed_as_html(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(CHAT, "/start")
    tg.send_text(CHAT, "--ar 7:1 a cat")  # a user error
    tg.send_text(CHAT, "a cat")
    await tg.wait_for("sendPhoto")
    sent = tg.calls_of("sendMessage") + tg.calls_of("sendPhoto")
    assert len(sent) >= 3
    assert all(c.params.get("parse_mode") == "HTML" for c in sent)
