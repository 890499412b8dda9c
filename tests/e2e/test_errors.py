"""One error handler: what a request raises becomes one message in the user's language."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import jpeg
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _break(monkeypatch: pytest.MonkeyPatch, bot: RunningBot, method: str, why: str) -> None:
    """The generation service's `method` fails as a bug would."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(why)

    monkeypatch.setattr(bot.app.bot_data["services"].generation, method, broken)


async def test_an_unexpected_error_is_logged_once_and_the_user_hears_of_it(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    bot: RunningBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    _break(monkeypatch, bot, "prepare", "database went away")
    tg.send_text(CHAT, "a red car")
    [said] = await tg.wait_for("sendMessage")
    assert "went wrong on my side" in said.params["text"]
    [logged] = _errors(caplog)
    assert logged.exc_info is not None and "database went away" in str(logged.exc_info[1])
    assert upstream.requests == []


async def test_a_users_mistake_is_explained_without_an_error_in_the_log(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot, caplog: pytest.LogCaptureFixture
):
    tg.send_text(CHAT, "a cat --n 9")
    [said] = await tg.wait_for("sendMessage")
    assert "must be 1 to 4" in said.result["text"]
    tg.send_photo(CHAT, jpeg((1, 2, 3)), caption="--ar 7:1 brighter")
    await tg.wait_for("sendMessage", count=2)
    assert _errors(caplog) == [] and upstream.requests == []


async def test_an_albums_error_reaches_the_same_handler(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    bot: RunningBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    _break(monkeypatch, bot, "keep_images", "disk full")
    tg.send_photo(CHAT, jpeg((1, 2, 3)), media_group_id="a1")
    tg.send_photo(CHAT, jpeg((3, 2, 1)), media_group_id="a1")
    [said] = await tg.wait_for("sendMessage")
    assert "went wrong on my side" in said.params["text"]
    assert len(_errors(caplog)) == 1


async def test_a_failed_job_is_told_before_the_chats_next_request_starts(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot, monkeypatch: pytest.MonkeyPatch
):
    """The next request of a chat waits for its turn; the turn ends only after the failure of
    the one before it has been told, so the answers come in the order they were asked."""
    from bot.telegram import errors

    told: list[float] = []
    real_tell = errors.tell_user

    async def slow_tell(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.5)  # a slow Bot API answer: the next request must still wait
        await real_tell(*args, **kwargs)
        told.append(time.monotonic())

    monkeypatch.setattr(errors, "tell_user", slow_tell)
    upstream.fail_next("400")
    tg.send_text(CHAT, "a boat")
    tg.send_text(CHAT, "a boat again")
    await tg.wait_for("sendPhoto")
    first, second = upstream.requests
    assert len(told) == 1 and first.at < told[0] < second.at
