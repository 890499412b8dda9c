"""parse_update: one update at a time, polling or webhook; what it cannot read stays a bare id."""

from __future__ import annotations

import copy
import logging

import pytest

from bot.telegram.updates import parse_update
from tests.e2e.test_updates import RECORDED_MY_CHAT_MEMBER

TEXT = {
    "update_id": 41,
    "message": {
        "message_id": 7,
        "date": 1700000000,
        "chat": {"id": 1001, "type": "private", "first_name": "Alice"},
        "from": {"id": 1001, "is_bot": False, "first_name": "Alice"},
        "text": "a lighthouse",
    },
}


def test_readable_update_is_parsed_in_full() -> None:
    update = parse_update(copy.deepcopy(TEXT), None)
    assert update is not None and update.update_id == 41
    assert update.message is not None and update.message.text == "a lighthouse"


def test_unreadable_update_becomes_bare_update_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    update = parse_update(copy.deepcopy(RECORDED_MY_CHAT_MEMBER), None)
    assert update is not None
    assert update.update_id == RECORDED_MY_CHAT_MEMBER["update_id"]
    assert update.effective_chat is None and update.effective_user is None
    assert update.my_chat_member is None
    (record,) = caplog.records
    assert "TypeError" in record.getMessage() and "Carol" not in record.getMessage()


@pytest.mark.parametrize("data", [{"message": {}}, {"update_id": "7"}, [1, 2], None])
def test_update_without_an_id_is_dropped(data: object) -> None:
    assert parse_update(data, None) is None
