"""parse_update: one update at a time, polling or webhook; what it cannot read stays a bare id."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from telegram.request import BaseRequest, RequestData

from bot.telegram.updates import TolerantBot, parse_update
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


class _Recorder(BaseRequest):
    """A transport that answers getUpdates with a fixed batch and remembers what it was asked."""

    def __init__(self, batch: list[Any]) -> None:
        self.batch = batch
        self.asked: list[tuple[str, dict[str, Any], Any]] = []

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        params = request_data.parameters if request_data is not None else {}
        self.asked.append((url.rsplit("/", 1)[-1], dict(params), read_timeout))
        return 200, json.dumps({"ok": True, "result": self.batch}).encode()


async def test_get_updates_long_polls_and_skips_only_the_unreadable_one() -> None:
    good = copy.deepcopy(TEXT)
    bad = copy.deepcopy(RECORDED_MY_CHAT_MEMBER)
    later = copy.deepcopy(TEXT) | {"update_id": RECORDED_MY_CHAT_MEMBER["update_id"] + 1}
    polls = _Recorder([good, bad, later])
    bot = TolerantBot(
        "123:ABC",
        base_url="http://127.0.0.1:9/bot",
        base_file_url="http://127.0.0.1:9/file/bot",
        request=_Recorder([]),
        get_updates_request=polls,
    )
    updates = await bot.get_updates(offset=41, timeout=10, allowed_updates=["message"])
    assert [u.update_id for u in updates] == [41, bad["update_id"], later["update_id"]]
    assert updates[0].message is not None and updates[2].message is not None
    assert updates[1].my_chat_member is None
    ((method, params, read_timeout),) = polls.asked
    assert method == "getUpdates"
    assert params == {"offset": 41, "timeout": 10, "allowed_updates": ["message"]}
    assert read_timeout == 15.0  # the transport's own 5 s plus the long poll's 10 s
