"""An upstream with a capacity: the bot's adaptive limit finds it, and spills over past it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
CHATS = range(2001, 2021)


@pytest.fixture
async def backup() -> AsyncIterator[FakeImageAPI]:
    api = FakeImageAPI(api_key="sk-backup")
    await api.start()
    yield api
    await api.stop()


def _user_facing_errors(tg: FakeTelegram) -> list[str]:
    return [
        c.params.get("text", "")
        for c in tg.calls
        if c.method == "sendMessage" and "busy" in c.params.get("text", "")
    ]


async def test_twenty_jobs_at_once_on_an_upstream_taking_four_all_succeed(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    upstream.capacity = 4
    upstream.capacity_retry_after = 0.2
    upstream.latency = 0.3
    running = await start_bot()
    for chat in CHATS:
        tg.send_text(chat, f"a lantern for chat {chat}")
    await tg.wait_for("sendPhoto", count=len(CHATS), timeout=60)
    first_wave = upstream.over_capacity
    # the first burst goes out whole (nobody waits for a slot the upstream might have had);
    # its refusals teach the limit the upstream's size, and a probe now and then tests it
    assert len(CHATS) - 4 <= first_wave <= len(CHATS) - 4 + 6
    for chat in CHATS:
        tg.send_text(chat, f"a second lantern for chat {chat}")
    await tg.wait_for("sendPhoto", count=2 * len(CHATS), timeout=60)
    assert upstream.over_capacity - first_wave <= 6  # learnt: only the probes are refused
    assert _user_facing_errors(tg) == []
    assert db_rows(running.settings, "select status, count(*) from jobs group by status") == [
        ("succeeded", 2 * len(CHATS))
    ]
    assert upstream.most_in_flight == 4
    # those waiting for the upstream heard their place in line, under a "waiting" status
    texts = [c.params["text"] for c in tg.calls_of("sendMessage")]
    waiting = [text for text in texts if "in line" in text]
    assert waiting and all("Waiting" in text for text in waiting)


async def test_a_saturated_endpoint_spills_over_to_the_next_instead_of_queueing(
    tmp_path: Path,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    backup: FakeImageAPI,
    start_bot: StartBot,
) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(f"""
[[endpoint]]
name = "primary"
dialect = "openai-chat"
base_url = "{upstream.root}/v1"
api_key = "sk-test"
min_concurrency = 2
max_concurrency = 2

[[endpoint]]
name = "backup"
dialect = "openai-chat"
base_url = "{backup.root}/v1"
api_key = "sk-backup"
""")
    upstream.latency = backup.latency = 0.5
    running = await start_bot(image_providers_file=str(path))
    chats = range(3001, 3007)
    for chat in chats:
        tg.send_text(chat, "a kite")
    await tg.wait_for("sendPhoto", count=len(chats), timeout=30)
    assert (len(upstream.requests), len(backup.requests)) == (2, 4)
    assert upstream.most_in_flight == 2 and backup.most_in_flight == 4
    assert db_rows(
        running.settings, "select endpoint, count(*) from jobs group by endpoint order by 1"
    ) == [("backup", 4), ("primary", 2)]
