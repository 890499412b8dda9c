"""Live drafts (sendMessageDraft) in private chats: the progress animates in one draft, the
result takes its place, groups keep the status message, and no draft costs more calls than
the status message it replaces."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram.error import BadRequest

from tests.e2e.conftest import RunningBot
from tests.e2e.test_thinking import PRO, SHOWN, THOUGHTS, _streaming_google
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

CHAT, OTHER = 4001, 4002
GROUP = -1004000000000
PROGRESS = ("sendChatAction", "sendMessage", "editMessageText", "deleteMessage", "sendMessageDraft")


def _of(tg: FakeTelegram, chat: int, *methods: str) -> list[Call]:
    return [c for c in tg.calls_of(*methods) if c.params.get("chat_id") == chat]


async def _drafts_bot(start_bot: Callable[..., Awaitable[RunningBot]], **kw: object) -> RunningBot:
    return await start_bot(live_drafts="true", **kw)


async def test_a_draft_is_updated_then_replaced_by_the_result(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    await _drafts_bot(start_bot)
    upstream.latency = 1.6
    tg.send_text(CHAT, "a slow lighthouse")
    [photo] = await tg.wait_for("sendPhoto", timeout=15)
    drafts = _of(tg, CHAT, "sendMessageDraft")
    assert len(drafts) >= 2, drafts
    assert all(d.ok for d in drafts)
    # one draft, animated: the same id every time, the seconds counting up
    assert len({d.params["draft_id"] for d in drafts}) == 1 and drafts[0].params["draft_id"]
    texts = [d.params["text"] for d in drafts]
    assert all(text.startswith("⏳ Drawing") for text in texts) and len(set(texts)) >= 2
    assert all(d.at < photo.at for d in drafts)
    # the result took the draft's place: no status message to delete
    assert tg.replaced_drafts == [(CHAT, drafts[0].params["draft_id"], photo.result["message_id"])]
    assert _of(tg, CHAT, "sendMessage", "editMessageText", "deleteMessage") == []
    assert CHAT not in tg.drafts


async def test_place_in_line_and_a_retry_show_in_the_draft(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    # a backoff long enough to be told before the next attempt starts
    await _drafts_bot(start_bot, max_concurrent_jobs=1, image_retry_base_delay=1.0)
    upstream.hold_next()
    tg.send_text(CHAT, "first in line")
    await upstream.wait_requests(1)
    upstream.fail_next("500")  # the held call, once released: the first job retries
    tg.send_text(OTHER, "second in line")
    [waiting] = await tg.wait_for(
        "sendMessageDraft", lambda c: "#1 in line" in c.params.get("text", "")
    )
    assert waiting.params["chat_id"] == OTHER
    upstream.release()
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    texts = [c.params["text"] for c in _of(tg, CHAT, "sendMessageDraft")]
    assert any("trying again" in text for text in texts), texts
    assert not any("trying again" in c.params["text"] for c in _of(tg, OTHER, "sendMessageDraft"))
    assert not any("in line" in text for text in texts)
    assert {chat for chat, _, _ in tg.replaced_drafts} == {CHAT, OTHER}
    assert _of(tg, CHAT, "sendMessage", "deleteMessage") == []
    assert _of(tg, OTHER, "sendMessage", "deleteMessage") == []


async def test_groups_keep_the_status_message_and_drafts_cost_no_more_calls(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    await _drafts_bot(start_bot)
    upstream.latency = 1.6
    tg.send_text(GROUP, "/imagine a slow castle", chat_type="supergroup")
    [status] = await tg.wait_for("sendMessage", lambda c: "⏳" in c.params.get("text", ""))
    assert status.params["chat_id"] == GROUP
    await tg.wait_for("sendPhoto", timeout=15)
    await tg.wait_for("deleteMessage")
    tg.send_text(CHAT, "a slow castle")
    await tg.wait_for("sendPhoto", count=2, timeout=15)
    assert _of(tg, GROUP, "sendMessageDraft") == []
    group = Counter(c.method for c in _of(tg, GROUP, *PROGRESS))
    private = Counter(c.method for c in _of(tg, CHAT, *PROGRESS))
    assert private["sendMessageDraft"] >= 2 and group["sendMessage"] == 1
    assert sum(private.values()) <= sum(group.values()), (private, group)


async def test_a_server_without_drafts_gets_the_status_message(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    """An older Bot API server (404 for the method): status messages, and it is asked once."""
    await _drafts_bot(start_bot)
    tg.fail_next("sendMessageDraft", error_code=404, description="Not Found", retry_after=None)
    upstream.latency = 1.6
    tg.send_text(CHAT, "a slow tree")
    [status] = await tg.wait_for("sendMessage", lambda c: "⏳" in c.params.get("text", ""))
    await tg.wait_for("sendPhoto", timeout=15)
    await tg.wait_for(
        "deleteMessage", lambda c: c.params["message_id"] == status.result["message_id"]
    )
    tg.send_text(OTHER, "another slow tree")
    await tg.wait_for("sendPhoto", count=2, timeout=15)
    await tg.wait_for("deleteMessage", count=2)
    [refused] = tg.calls_of("sendMessageDraft")
    assert not refused.ok and refused.params["chat_id"] == CHAT
    assert len(_of(tg, OTHER, "sendMessage")) == 1


async def test_a_draft_refused_in_one_chat_falls_back_there_only(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    await _drafts_bot(start_bot)
    tg.fail_next(
        "sendMessageDraft", error_code=400, description="Bad Request: nope", retry_after=None
    )
    upstream.latency = 1.6
    tg.send_text(CHAT, "a slow tree")
    await tg.wait_for("sendMessage", lambda c: "⏳" in c.params.get("text", ""))
    await tg.wait_for("sendPhoto", timeout=15)
    tg.send_text(OTHER, "another slow tree")
    await tg.wait_for("sendPhoto", count=2, timeout=15)
    assert [c.ok for c in _of(tg, CHAT, "sendMessageDraft")] == [False]
    assert all(c.ok for c in _of(tg, OTHER, "sendMessageDraft"))
    assert _of(tg, OTHER, "sendMessageDraft") and not _of(tg, OTHER, "sendMessage")


async def test_the_fake_keeps_the_documented_limits(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
):
    bot = await _drafts_bot(start_bot)
    app_bot = bot.app.bot
    assert await app_bot.send_message_draft(CHAT, 7, "")  # empty: "Thinking…"
    for chat, draft_id, text, error in (
        (GROUP, 7, "hi", "TEXTDRAFT_PEER_INVALID"),
        (CHAT, 0, "hi", "non-zero"),
        (CHAT, 7, "x" * 4097, "too long"),
    ):
        try:
            await app_bot.send_message_draft(chat, draft_id, text)
        except BadRequest as exc:
            assert error.lower() in str(exc).lower()
        else:
            raise AssertionError(f"{chat} {draft_id} {len(text)} was accepted")
    assert await app_bot.send_message_draft(CHAT, 7, "x" * 4096)


async def test_thought_lines_stream_into_the_draft(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    start_bot: Callable[..., Awaitable[RunningBot]],
    tmp_path: Path,
):
    """A thinking model on a streaming gemini endpoint: each thought line in the draft."""
    upstream.gemini_answer, upstream.thoughts = "thinking", list(THOUGHTS)
    upstream.thought_delay = 1.0
    await _drafts_bot(
        start_bot,
        image_providers_file=_streaming_google(tmp_path, upstream),
        image_model=PRO,
    )
    tg.send_text(CHAT, "a red fox")
    [photo] = await tg.wait_for("sendPhoto", timeout=30)
    texts = [c.params["text"] for c in _of(tg, CHAT, "sendMessageDraft")]
    assert "Planning a red fox…" in "\n".join(texts)
    assert [line for line in SHOWN if any(line in text for text in texts)] == SHOWN, texts
    assert not any(word in str(photo.params.get("caption")) for word in ("Planning", "palette"))
    assert [chat for chat, _, _ in tg.replaced_drafts] == [CHAT]
    assert _of(tg, CHAT, "sendMessage", "editMessageText", "deleteMessage") == []
