"""An update the bot cannot read is skipped once, not polled for forever; polling never spins."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest

from tests.e2e.conftest import RunningBot
from tests.fakes.telegram_api import Call, FakeTelegram

ALICE, BOB = 1001, 1002  # private chats have the user's id
OLD_GROUP = -1001234567890

# A my_chat_member update as Bot API 5.x sent it (April 2022): the bot promoted to admin, with
# can_manage_voice_chats and without can_manage_video_chats/can_post_stories/..., which
# python-telegram-bot 22 requires, so it cannot parse it.
RECORDED_MY_CHAT_MEMBER: dict[str, Any] = {
    "update_id": 512345678,
    "my_chat_member": {
        "chat": {"id": OLD_GROUP, "title": "Family photos", "type": "supergroup"},
        "from": {
            "id": 7001,
            "is_bot": False,
            "first_name": "Carol",
            "username": "carol_private",
            "language_code": "en",
        },
        "date": 1650000000,
        "old_chat_member": {
            "user": {
                "id": 123456,
                "is_bot": True,
                "first_name": "Nano Test Bot",
                "username": "nano_test_bot",
            },
            "status": "member",
        },
        "new_chat_member": {
            "user": {
                "id": 123456,
                "is_bot": True,
                "first_name": "Nano Test Bot",
                "username": "nano_test_bot",
            },
            "status": "administrator",
            "can_be_edited": False,
            "can_manage_chat": True,
            "can_change_info": True,
            "can_delete_messages": True,
            "can_invite_users": True,
            "can_restrict_members": True,
            "can_pin_messages": True,
            "can_promote_members": False,
            "can_manage_voice_chats": True,
            "is_anonymous": False,
        },
    },
}


def _polls(tg: FakeTelegram) -> list[Call]:
    return tg.calls_of("getUpdates")


def _photo_chats(tg: FakeTelegram) -> set[int]:
    return {int(c.params["chat_id"]) for c in tg.calls_of("sendPhoto") if c.ok}


def _skipped(caplog: pytest.LogCaptureFixture, update_id: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if f"skipped update {update_id} " in r.getMessage()]


async def _quiet_polls(tg: FakeTelegram, window: float = 1.0) -> int:
    """getUpdates calls while nothing happens for `window` seconds (a long poll: 0 or 1)."""
    before = len(_polls(tg))
    await asyncio.sleep(window)
    return len(_polls(tg)) - before


def _assert_acknowledged(tg: FakeTelegram, update_id: int) -> None:
    offsets = [c.params.get("offset") for c in _polls(tg)]
    assert any(isinstance(o, int) and o > update_id for o in offsets), offsets


def _assert_logged_once_without_payload(caplog: pytest.LogCaptureFixture, update_id: int) -> None:
    records = _skipped(caplog, update_id)
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    text = records[0].getMessage()
    assert "my_chat_member" in text and "can_manage_video_chats" in text
    for private in ("Family photos", "Carol", "carol_private", "7001"):
        assert private not in text
    assert records[0].exc_info is None  # one line, not a traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unreadable_update_between_two_texts_is_skipped_once(
    bot: RunningBot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    alice, bob = tg.user(ALICE, "Alice"), tg.user(BOB, "Bob")
    # One batch: a text, the unreadable update, another text.
    tg.send_text(ALICE, "a lighthouse at dawn", user=alice)
    bad = tg.queue_update(copy.deepcopy(RECORDED_MY_CHAT_MEMBER))
    tg.send_text(BOB, "a fox in the snow", user=bob)

    await tg.wait_for("sendPhoto", lambda c: c.ok, count=2, timeout=15)
    assert _photo_chats(tg) == {ALICE, BOB}
    _assert_acknowledged(tg, bad)
    _assert_logged_once_without_payload(caplog, bad)
    # Polling is a long poll again, not a retry of the same offset; few polls in all.
    assert await _quiet_polls(tg) <= 2
    assert len(_polls(tg)) <= 10, len(_polls(tg))
    assert len(_skipped(caplog, bad)) == 1


async def test_unreadable_update_last_in_batch_moves_offset_past_it(
    bot: RunningBot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    alice, bob = tg.user(ALICE, "Alice"), tg.user(BOB, "Bob")
    tg.send_text(ALICE, "a lighthouse at dawn", user=alice)
    bad = tg.queue_update(copy.deepcopy(RECORDED_MY_CHAT_MEMBER))

    await tg.wait_for("sendPhoto", lambda c: c.ok, count=1, timeout=15)
    await tg.wait_for("getUpdates", lambda c: (c.params.get("offset") or 0) > bad)
    assert await _quiet_polls(tg) <= 2
    # Polling goes on: a later text in another chat is answered too.
    tg.send_text(BOB, "a fox in the snow", user=bob)
    await tg.wait_for("sendPhoto", lambda c: c.ok, count=2, timeout=15)
    assert _photo_chats(tg) == {ALICE, BOB}
    _assert_logged_once_without_payload(caplog, bad)


async def test_restricted_member_from_old_api_is_skipped(
    bot: RunningBot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """A "restricted" member without until_date and the per-media can_send_* fields."""
    caplog.set_level(logging.WARNING)
    update = copy.deepcopy(RECORDED_MY_CHAT_MEMBER)
    update["my_chat_member"]["new_chat_member"] = {
        "user": update["my_chat_member"]["new_chat_member"]["user"],
        "status": "restricted",
        "is_member": True,
        "can_change_info": False,
        "can_invite_users": False,
        "can_pin_messages": False,
        "can_send_messages": True,
        "can_send_media_messages": True,
        "can_send_polls": True,
        "can_send_other_messages": True,
        "can_add_web_page_previews": True,
    }
    bad = tg.queue_update(update)
    tg.send_text(ALICE, "a lighthouse at dawn", user=tg.user(ALICE, "Alice"))
    await tg.wait_for("sendPhoto", lambda c: c.ok, timeout=15)
    _assert_acknowledged(tg, bad)
    assert len(_skipped(caplog, bad)) == 1


async def test_failing_get_updates_backs_off(bot: RunningBot, tg: FakeTelegram) -> None:
    """A guard (PTB's backoff already does this): getUpdates failing over and over is retried
    after growing pauses, not at once; the bot answers once it works again."""
    tg.fail_next(
        "getUpdates",
        error_code=500,
        description="Internal Server Error",
        retry_after=None,
        times=10_000,
    )
    # The long poll under way still answers (with this text); the polls after it fail.
    tg.send_text(ALICE, "a lighthouse at dawn", user=tg.user(ALICE, "Alice"))
    await tg.wait_for("getUpdates", lambda c: c.error is not None)
    failed = await _quiet_polls(tg, window=2.0)
    assert failed <= 4, failed  # 1 s, then 1.5 s, ... between tries
    tg.clear_failures("getUpdates")
    tg.send_text(BOB, "a fox in the snow", user=tg.user(BOB, "Bob"))
    await tg.wait_for("sendPhoto", lambda c: c.ok, count=2, timeout=20)
    assert _photo_chats(tg) == {ALICE, BOB}
