"""Every upstream fault gives the user a clear message, is recorded, and the next request works."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
StartBot = Callable[..., Awaitable[RunningBot]]

# fault → (times to arm it: enough to outlast the retries, words the user sees, job error code)
FAULTS = {
    "500": (3, "internal error", "server"),
    "503-html": (3, "internal error", "server"),
    "429": (3, "busy right now", "rate_limited"),
    "hang": (2, "took too long", "timeout"),
    "malformed-json": (1, "couldn't use", "bad_response"),
    "truncated-base64": (1, "couldn't use", "bad_response"),
    "401": (1, "was refused", "auth"),
    "404-model": (1, "no longer available", "model_retired"),
    "400": (1, "rejected this request", "bad_request"),
    "content-filter": (1, "safety filters", "blocked"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_fault_is_explained_and_the_next_request_works(
    fault: str, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    times, words, code = FAULTS[fault]
    running = await start_bot(image_api_timeout=1.0)
    upstream.fail_next(fault, times=times, retry_after=0)
    tg.send_text(CHAT, "a lantern")
    [msg] = await tg.wait_for(
        "sendMessage", lambda c: words in c.params.get("text", ""), timeout=20
    )
    assert "sk-test" not in msg.params["text"]
    [(status, error_code)] = db_rows(running.settings, "select status, error_code from jobs")
    assert (status, error_code) == ("failed", code)
    tg.send_text(CHAT, "a lantern, again")
    await tg.wait_for("sendPhoto", timeout=20)


async def test_a_429_with_retry_after_is_waited_out(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    upstream.fail_next("429", times=1, retry_after=1)
    tg.send_text(CHAT, "patience")
    await tg.wait_for("sendPhoto", timeout=20)
    first, second = upstream.requests
    assert second.at - first.at >= 0.9


async def test_an_expired_image_link_is_explained(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
) -> None:
    upstream.answer_shape = "markdown-url"
    upstream.url_ttl = 0.0
    tg.send_text(CHAT, "a link that dies at once")
    await tg.wait_for("sendMessage", lambda c: "couldn't use" in c.params.get("text", ""))
