"""The ops endpoints (HTTP_LISTEN) of the real bot against the fakes: liveness, readiness that
follows the database and the Bot API, and metrics counted where jobs, upstream calls and
deliveries happen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import rename_table
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.ports import free_port
from tests.fakes.telegram_api import FakeTelegram

ALICE, BOB = 3001, 3002


async def _get(root: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(root + path) as response:
        body = await (response.json() if path != "/metrics" else response.text())
        return response.status, body


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _metrics(root: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = await _get(root, "/metrics")
    assert status == 200
    return _samples(text)


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def _metrics_once(
    root: str,
    before: dict,
    name: str,
    **labels: str,  # type: ignore[type-arg]
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The metrics as soon as `name` with `labels` has grown since `before` (10 s at most)."""
    for _ in range(200):
        after = await _metrics(root)
        if _delta(before, after, name, **labels):
            return after
        await asyncio.sleep(0.05)
    return after


async def _start(start_bot: Callable[..., Awaitable[RunningBot]]) -> tuple[RunningBot, str]:
    port = free_port()
    bot = await start_bot(http_listen=f"127.0.0.1:{port}")
    root = f"http://127.0.0.1:{port}"
    for _ in range(200):  # until its services are open (on PostgreSQL that takes longer)
        _, body = await _get(root, "/readyz")
        if body.get("reason") != "starting":
            break
        await asyncio.sleep(0.05)
    return bot, root


async def test_health_and_readiness_follow_the_database_and_the_bot_api(
    tg: FakeTelegram, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, root = await _start(start_bot)

    assert await _get(root, "/healthz") == (200, {"status": "ok"})
    assert await _get(root, "/readyz") == (200, {"status": "ready"})

    # The database stops answering the readiness query (its schema table gone), then is back.
    await rename_table(bot.settings.database_url, "alembic_version", "alembic_version_away")
    status, body = await _get(root, "/readyz")
    assert status == 503 and body["status"] == "not ready"
    assert body["reason"].startswith("database: ")
    assert await _get(root, "/healthz") == (200, {"status": "ok"})  # alive all the same
    await rename_table(bot.settings.database_url, "alembic_version_away", "alembic_version")
    assert await _get(root, "/readyz") == (200, {"status": "ready"})

    # The Bot API goes away: its long poll fails, and the getMe probe gets no answer.
    await tg.stop()
    for _ in range(100):
        status, body = await _get(root, "/readyz")
        if status == 503:
            break
        await asyncio.sleep(0.05)
    assert (status, body["status"]) == (503, "not ready")
    assert body["reason"].startswith("bot api: "), body
    assert "token" not in str(body).lower() and tg.token not in str(body)
    assert await _get(root, "/healthz") == (200, {"status": "ok"})


async def test_metrics_count_a_delivered_job_a_failed_one_and_an_upstream_429(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, root = await _start(start_bot)
    dialect, model = "openai-chat", bot.settings.image_model
    before = await _metrics(root)

    upstream.fail_next("429", retry_after=0)  # Alice's first call: 429, then the retry draws
    tg.send_text(ALICE, "a red kite", user=tg.user(ALICE))
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE))
    upstream.fail_next("400")  # Bob's job fails for good
    tg.send_text(BOB, "a blue kite", user=tg.user(BOB))
    await _metrics_once(root, before, "nanobanana_images_delivered_total", model=model)
    after = await _metrics_once(
        root, before, "nanobanana_jobs_total", status="failed", dialect=dialect
    )

    assert _delta(before, after, "nanobanana_jobs_total", status="succeeded", dialect=dialect) == 1
    assert _delta(before, after, "nanobanana_jobs_total", status="failed", dialect=dialect) == 1
    assert _delta(before, after, "nanobanana_images_delivered_total", model=model) == 1
    ok = _delta(before, after, "nanobanana_upstream_requests_total", dialect=dialect, result="ok")
    limited = _delta(
        before, after, "nanobanana_upstream_requests_total", dialect=dialect, result="rate_limited"
    )
    refused = _delta(
        before, after, "nanobanana_upstream_requests_total", dialect=dialect, result="bad_request"
    )
    assert (ok, limited, refused) == (1, 1, 1)
    assert (
        _delta(
            before,
            after,
            "nanobanana_upstream_retries_total",
            dialect=dialect,
            reason="rate_limited",
        )
        == 1
    )
    assert _delta(before, after, "nanobanana_upstream_seconds_count", dialect=dialect) == 3
    assert _delta(before, after, "nanobanana_upstream_cost_usd_total", model=model) > 0
    assert after[("nanobanana_jobs_waiting", frozenset({("queue", "jobs")}))] == 0
    assert after[("nanobanana_jobs_waiting", frozenset({("queue", "endpoints")}))] == 0
    assert len(upstream.requests) == 3


# PTB's own RetryAfter reads its deprecated retry_after while raising it.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_metrics_count_a_telegram_429(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, root = await _start(start_bot)
    before = await _metrics(root)
    tg.fail_next("sendPhoto", retry_after=1)
    tg.send_text(ALICE, "a green kite", user=tg.user(ALICE))
    model = bot.settings.image_model
    after = await _metrics_once(root, before, "nanobanana_images_delivered_total", model=model)
    assert len(tg.calls_of("sendPhoto")) == 2  # refused once, then sent
    assert _delta(before, after, "nanobanana_telegram_429_total") == 1
    assert _delta(before, after, "nanobanana_images_delivered_total", model=model) == 1
