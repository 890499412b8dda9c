"""Progress spends few Bot API calls on waiting and never gets in the way of results: the
calls are counted in the fake Telegram, with its flood limits on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from tests.e2e.conftest import RunningBot
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

CHATS = [3001 + i for i in range(12)]
CHAT = 3100
PROGRESS_METHODS = ("sendChatAction", "sendMessage", "editMessageText", "deleteMessage")


def by_chat(tg: FakeTelegram, chat: int) -> list[Call]:
    return [c for c in tg.calls if c.params.get("chat_id") == chat]


def too_many(tg: FakeTelegram) -> list[Call]:
    return [c for c in tg.calls if c.response and c.response.get("error_code") == 429]


async def test_jobs_waiting_for_one_slot_cost_a_bounded_number_of_calls(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    tg.flood_limit = True
    await start_bot(max_concurrent_jobs=1)
    upstream.hold_next()  # the first job keeps the only slot until released
    for chat in CHATS:
        tg.send_text(chat, f"a lighthouse number {chat}")
    await upstream.wait_requests(1)
    await tg.wait_for(
        "sendMessage", lambda c: "in line" in c.params.get("text", ""), count=len(CHATS) - 1
    )
    # whichever chat's job reached the slot first (the order jobs open in is the database's)
    content = upstream.requests[0].json["messages"][0]["content"]
    text = content if isinstance(content, str) else content[0]["text"]
    queued = [chat for chat in CHATS if f"number {chat}" not in text]
    assert len(queued) == len(CHATS) - 1
    # A long wait in which nobody's place changes: many status periods of the test timings,
    # each of which used to cost every waiting job an edit and a chat action.
    await asyncio.sleep(2.0)
    waiting = Counter(c.method for c in tg.calls if c.params.get("chat_id") in queued)
    assert waiting == {"sendMessage": len(CHATS) - 1}
    upstream.latency = 0.2
    upstream.release()
    await tg.wait_for("sendPhoto", count=len(CHATS), timeout=60)
    await tg.wait_for("deleteMessage", count=len(CHATS), timeout=30)
    for chat in CHATS:
        calls = Counter(c.method for c in by_chat(tg, chat))
        assert calls["sendPhoto"] == 1  # the result went at the first try
        assert calls["sendMessage"] <= 1 and calls["deleteMessage"] <= 1
        assert calls["sendChatAction"] <= 1
        # places 11..1 halve at most four times, plus the edit that says it draws
        assert calls["editMessageText"] <= 5, calls
        assert sum(calls[m] for m in PROGRESS_METHODS) <= 8, calls
    for chat in queued:
        # a waiting job is not "sending a photo": its status message says it waits
        assert not [c for c in by_chat(tg, chat) if c.method == "sendChatAction"]
        [status] = [c for c in by_chat(tg, chat) if c.method == "sendMessage"]
        assert "in line" in status.params["text"]
        names = [c.method for c in by_chat(tg, chat)]
        assert names.index("sendPhoto") < names.index("deleteMessage")
    assert not too_many(tg), [(c.method, round(c.at, 2), c.params.get("text")) for c in calls]


async def test_a_request_queued_in_its_chat_shows_one_message_not_two(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    tg.flood_limit = True
    upstream.hold_next()
    tg.send_text(CHAT, "first picture")
    await tg.wait_for("sendMessage", lambda c: "Drawing" in c.params.get("text", ""))
    tg.send_text(CHAT, "second picture")
    [note] = await tg.wait_for("sendMessage", lambda c: "Queued" in c.params.get("text", ""))
    upstream.latency = 1.0  # the second job's own upstream call
    upstream.release()
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    note_id = note.result["message_id"]
    await tg.wait_for("deleteMessage", lambda c: c.params["message_id"] == note_id)
    calls = by_chat(tg, CHAT)
    statuses = [c for c in calls if c.method == "sendMessage"]
    # the first job's status, and the note that the second one's progress took over
    assert [s.params["text"].startswith("⏳") for s in statuses] == [True, True]
    assert statuses[1] is note
    names = [c.method for c in calls]
    assert names.count("deleteMessage") == 2
    # the note stays until the second picture is there
    last_photo = max(i for i, name in enumerate(names) if name == "sendPhoto")
    note_gone = next(
        i
        for i, c in enumerate(calls)
        if c.method == "deleteMessage" and c.params["message_id"] == note_id
    )
    assert note_gone > last_photo
    assert not too_many(tg), [(c.method, round(c.at, 2), c.params.get("text")) for c in calls]
