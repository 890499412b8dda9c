"""Thinking you can watch: a thinking model on a streaming gemini endpoint shows its latest
thought line in the progress message while it draws; the result is the image alone, and
thoughts are kept nowhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
CHAT, OTHER = 4101, 4102
PRO = "gemini-3-pro-image"
THOUGHTS = [
    "**Planning {prompt}**\n\nWhere the subject sits and how the light falls.",
    "**Choosing the palette**\n\nWarm tones in front, a cooler sky behind.",
    "**Refining the details**\n\nSharp edges, legible text.",
]
SHOWN = ["Choosing the palette…", "Refining the details…"]  # as the status shows them


def _streaming_google(tmp_path: Path, upstream: FakeImageAPI, stream: str = "true") -> str:
    """A providers file with the fake as a gemini endpoint that streams, as the README says."""
    path = tmp_path / "providers.toml"
    path.write_text(
        "[[endpoint]]\n"
        'name = "google"\ndialect = "gemini"\n'
        f'base_url = "{upstream.root}"\napi_key = "sk-test"\n'
        f'models = ["{PRO}"]\nstream = {stream}\n'
    )
    return str(path)


def _status_texts(tg: FakeTelegram, chat: int) -> list[str]:
    """What the chat's progress message said, in order (its first text, then each edit)."""
    return [
        str(c.params.get("text", ""))
        for c in tg.calls_of("sendMessage", "editMessageText")
        if c.params.get("chat_id") == chat
    ]


def _of(tg: FakeTelegram, chat: int, method: str) -> list[Call]:
    return [c for c in tg.calls_of(method) if c.params.get("chat_id") == chat]


async def _thinking_bot(
    tmp_path: Path, upstream: FakeImageAPI, start_bot: StartBot, stream: str = "true"
) -> RunningBot:
    upstream.gemini_answer, upstream.thoughts = "thinking", list(THOUGHTS)
    upstream.thought_delay = 1.0  # well over the test's edit interval: each can be shown
    return await start_bot(
        image_providers_file=_streaming_google(tmp_path, upstream, stream), image_model=PRO
    )


async def test_the_progress_message_shows_thought_lines_and_the_result_is_the_image_alone(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await _thinking_bot(tmp_path, upstream, start_bot)
    tg.send_text(CHAT, "a red fox")
    [photo] = await tg.wait_for("sendPhoto", timeout=30)
    texts = _status_texts(tg, CHAT)
    lines = [line for line in SHOWN if any(line in text for text in texts)]
    assert "Planning a red fox…" in "\n".join(texts)
    assert lines == SHOWN, texts  # every thought in turn, none lost to a burst
    first_seen = [next(i for i, text in enumerate(texts) if line in text) for line in lines]
    assert first_seen == sorted(first_seen)  # in the order they were thought
    req = upstream.requests[0]
    assert req.path == f"/v1beta/models/{PRO}:streamGenerateContent" and req.query["alt"] == "sse"
    assert req.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    # the result: the image, with no thought in its caption, and no edit after it
    caption = str(photo.params.get("caption", ""))
    assert not any(word in caption for word in ("Planning", "palette", "Refining"))
    assert all(c.at <= photo.at for c in _of(tg, CHAT, "editMessageText"))
    # the status message goes away after the result
    await tg.wait_for("deleteMessage", lambda c: c.params.get("chat_id") == CHAT)
    # nothing of the thoughts is kept as the user's words or the model's
    rows = db_rows(bot.settings, "select prompt, model_text, model_parts from jobs")
    kept = repr(rows)
    assert rows and not any(word in kept for word in ("Planning", "palette", "Refining"))
    assert "sig-1" in kept  # the signature stays, for the next edit
    tg.send_text(CHAT, "now make it blue")
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    again = upstream.requests[-1]
    sent = [p for turn in again.json["contents"] for p in turn["parts"]]
    assert [t["role"] for t in again.json["contents"]] == ["user", "model", "user"]
    assert any(p.get("thoughtSignature") == "sig-1" for p in sent)
    assert not any(p.get("thought") for p in sent)
    assert not any("Planning" in str(p.get("text", "")) for p in sent)


async def test_two_chats_at_once_each_see_only_their_own_thoughts(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot, tmp_path: Path
) -> None:
    await _thinking_bot(tmp_path, upstream, start_bot)
    tg.send_text(CHAT, "a red fox", user=tg.user(CHAT, "Ann"))
    tg.send_text(OTHER, "a blue whale", user=tg.user(OTHER, "李", language_code="zh-hans"))
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    await upstream.wait_requests(2)
    assert upstream.most_in_flight == 2  # they did think at the same time
    mine, theirs = "\n".join(_status_texts(tg, CHAT)), "\n".join(_status_texts(tg, OTHER))
    assert "Planning a red fox…" in mine and "whale" not in mine
    assert "Planning a blue whale…" in theirs and "fox" not in theirs
    assert "⏳" in theirs and "Drawing" not in theirs  # the Chinese status around the thought
    photos = {c.params["chat_id"] for c in tg.calls_of("sendPhoto")}
    assert photos == {CHAT, OTHER}


async def test_a_stream_that_breaks_off_gives_the_normal_error_and_the_next_message_works(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot, tmp_path: Path
) -> None:
    await _thinking_bot(tmp_path, upstream, start_bot)
    upstream.thought_delay = 0.05
    upstream.fail_next("mid-stream")
    tg.send_text(CHAT, "a red fox")
    [told] = await tg.wait_for(
        "sendMessage", lambda c: "internal error" in str(c.params.get("text", "")), timeout=30
    )
    # it broke off after a 200, which may be billed: not resent, the user has a Retry button
    assert len(upstream.requests) == 1
    assert "regen:" in str(told.params.get("reply_markup"))
    assert not tg.calls_of("sendPhoto")
    tg.send_text(CHAT, "a grey heron")
    await tg.wait_for("sendPhoto", timeout=30)
    assert len(upstream.requests) == 2


async def test_without_streaming_the_progress_is_todays(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot, tmp_path: Path
) -> None:
    await _thinking_bot(tmp_path, upstream, start_bot, stream="false")
    upstream.latency = 1.0  # long enough for the status message to appear
    tg.send_text(CHAT, "a red fox")
    await tg.wait_for("sendPhoto", timeout=30)
    assert upstream.requests[0].path == f"/v1beta/models/{PRO}:generateContent"
    texts = "\n".join(_status_texts(tg, CHAT))
    assert "Drawing" in texts and "Planning" not in texts and "💭" not in texts
