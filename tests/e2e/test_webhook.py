"""Webhook mode, end to end: the real bot takes its updates by POST on 127.0.0.1 from the fake
Telegram (setWebhook with the secret), records each before answering, refuses requests
without the secret or that are no update, runs one job for an update delivered twice, serves
the ops routes on the same port, and processes at start what a dead process recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from bot.services.inbox import Inbox
from bot.storage import db
from bot.storage.database import Database
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import rename_table
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.ports import free_port
from tests.fakes.telegram_api import FakeTelegram

ALICE, BOB = 4001, 4002
SECRET = "e2e_Webhook-secret1"
PATH = "/tg/hook-path"


async def _start(
    start_bot: Callable[..., Awaitable[RunningBot]], **overrides: Any
) -> tuple[RunningBot, str]:
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    bot = await start_bot(
        telegram_webhook_url=root + PATH,
        telegram_webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
        **overrides,
    )
    return bot, root


async def _wait_webhook(tg: FakeTelegram) -> None:
    await tg.wait_for("setWebhook")


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}
        ) as response,
    ):
        await response.read()
        return response.status


async def _recorded(database_url: str) -> list[int]:
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT update_id FROM webhook_updates"))
            return sorted(int(r[0]) for r in rows)
    finally:
        await engine.dispose()


def _photos_to(tg: FakeTelegram, chat: int) -> list[Any]:
    return [c for c in tg.calls_of("sendPhoto") if str(c.params.get("chat_id")) == str(chat)]


async def test_texts_from_two_chats_get_their_photos_by_webhook(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, root = await _start(start_bot)
    await _wait_webhook(tg)
    [call] = tg.calls_of("setWebhook")
    assert call.params.get("url") == root + PATH
    assert call.params.get("secret_token") == SECRET
    assert tg.webhook is not None and tg.webhook["secret_token"] == SECRET

    tg.send_text(ALICE, "a red bicycle", user=tg.user(ALICE))
    alice_update = tg.last_update_id
    tg.send_text(BOB, "a blue boat", user=tg.user(BOB, "Bob"))
    bob_update = tg.last_update_id
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE))
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(BOB))
    assert len(upstream.requests) == 2
    assert [a.status for a in tg.webhook_attempts_of(alice_update)] == [200]
    assert [a.status for a in tg.webhook_attempts_of(bob_update)] == [200]
    assert tg.calls_of("getUpdates") == []  # no long polling at all
    assert await _recorded(bot.settings.database_url) == sorted([alice_update, bob_update])

    await bot.stop()
    assert tg.webhook is not None  # the webhook stays set for the next start
    assert tg.calls_of("deleteWebhook") == []


async def test_requests_without_the_secret_or_not_an_update_are_refused(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, root = await _start(start_bot)
    await _wait_webhook(tg)
    update = {
        "update_id": 900_000_001,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "from": tg.user(ALICE),
            "text": "draw a forged cat",
        },
    }
    body = json.dumps(update).encode()
    url = root + PATH
    assert await _post(url, body, {}) == 403
    assert await _post(url, body, {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}) == 403
    assert await _post(url, body, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}) == 403
    good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for malformed in (
        b"not json",
        b"[1, 2]",
        b'{"update_id": "7"}',
        b'{"update_id": true}',
        b'{"message": {}}',
        b"\xff\xfe",
    ):
        assert await _post(url, malformed, good) == 400, malformed
    assert await _post(root + "/elsewhere", body, good) == 404
    await asyncio.sleep(0.3)
    assert upstream.requests == []
    assert tg.calls_of("sendPhoto", "sendMessage") == []
    assert await _recorded(bot.settings.database_url) == []


async def test_an_update_delivered_twice_runs_one_job(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    await _start(start_bot)
    await _wait_webhook(tg)
    tg.send_text(ALICE, "a yellow kite", user=tg.user(ALICE))
    update_id = tg.last_update_id
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE))
    tg.deliver_again(update_id)  # Telegram did not hear the answer: the same update again
    for _ in range(200):
        if len(tg.webhook_attempts_of(update_id)) >= 2:
            break
        await asyncio.sleep(0.02)
    assert [a.status for a in tg.webhook_attempts_of(update_id)] == [200, 200]
    await asyncio.sleep(0.5)  # time for a second job, were one started
    assert len(upstream.requests) == 1
    assert len(_photos_to(tg, ALICE)) == 1


async def test_ops_routes_answer_on_the_webhook_port(
    tg: FakeTelegram, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    http_port = free_port()
    _bot, root = await _start(start_bot, http_listen=f"127.0.0.1:{http_port}")
    await _wait_webhook(tg)
    async with aiohttp.ClientSession() as session:
        async with session.get(root + "/healthz") as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})
        async with session.get(root + "/readyz") as r:
            assert (r.status, await r.json()) == (200, {"status": "ready"})
        async with session.get(root + "/metrics") as r:
            assert r.status == 200
            assert "nanobanana_" in await r.text()
        # In webhook mode nothing listens on HTTP_LISTEN: the webhook port serves these.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{http_port}/healthz") as r:
                pass


async def test_an_update_recorded_but_never_started_is_processed_at_start(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    settings_factory: Callable[..., Any],
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    # A process recorded Alice's update, answered Telegram, and died before handing it over.
    tg.send_text(ALICE, "a purple owl", user=tg.user(ALICE))
    [update] = tg.take_queued_updates()
    port = free_port()
    settings = settings_factory(
        telegram_webhook_url=f"http://127.0.0.1:{port}{PATH}",
        telegram_webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
    )
    await db.aupgrade(settings.database_url)
    engine = db.create_engine(settings.database_url)
    try:
        inbox = Inbox(Database(db.create_sessionmaker(engine)))
        assert await inbox.record(update["update_id"], json.dumps(update))
    finally:
        await engine.dispose()

    await start_bot(
        telegram_webhook_url=f"http://127.0.0.1:{port}{PATH}",
        telegram_webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
    )
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE))
    assert len(upstream.requests) == 1
    assert "purple owl" in json.dumps(upstream.requests[0].json)
    assert tg.webhook_attempts_of(update["update_id"]) == []  # never POSTed: from the inbox
    assert len(_photos_to(tg, ALICE)) == 1


async def test_an_update_the_database_cannot_record_gets_500_and_comes_again(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    bot, _root = await _start(start_bot)
    await _wait_webhook(tg)
    tg.webhook_retry_delay = 0.1
    url = bot.settings.database_url
    await rename_table(url, "webhook_updates", "webhook_updates_away")
    tg.send_text(ALICE, "a grey heron", user=tg.user(ALICE))
    update_id = tg.last_update_id
    for _ in range(200):
        if len(tg.webhook_attempts_of(update_id)) >= 2:
            break
        await asyncio.sleep(0.02)
    assert {a.status for a in tg.webhook_attempts_of(update_id)} == {500}
    assert tg.webhook_last_error == "Wrong response from the webhook: 500 Internal Server Error"
    assert upstream.requests == []
    await rename_table(url, "webhook_updates_away", "webhook_updates")
    await tg.wait_for("sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE))
    assert tg.webhook_attempts_of(update_id)[-1].status == 200
    assert len(upstream.requests) == 1


async def test_updates_recorded_before_the_start_run_in_update_id_order(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    settings_factory: Callable[..., Any],
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    """Two texts of one chat, recorded in the other order: the lower update_id runs first, and
    the second (a follow-up) sees the first one's turn."""
    tg.send_text(ALICE, "first: a lemon", user=tg.user(ALICE))
    tg.send_text(ALICE, "second: a lime", user=tg.user(ALICE))
    first, second = tg.take_queued_updates()
    port = free_port()
    overrides = {
        "telegram_webhook_url": f"http://127.0.0.1:{port}{PATH}",
        "telegram_webhook_secret": SECRET,
        "webhook_listen": f"127.0.0.1:{port}",
    }
    settings = settings_factory(**overrides)
    await db.aupgrade(settings.database_url)
    engine = db.create_engine(settings.database_url)
    try:
        inbox = Inbox(Database(db.create_sessionmaker(engine)))
        for update in (second, first):
            assert await inbox.record(update["update_id"], json.dumps(update))
    finally:
        await engine.dispose()
    await start_bot(**overrides)
    await tg.wait_for(
        "sendPhoto", lambda c: str(c.params.get("chat_id")) == str(ALICE), count=2, timeout=20
    )
    prompts = [json.dumps(r.json) for r in upstream.requests]
    assert len(prompts) == 2
    assert "a lemon" in prompts[0] and "a lime" in prompts[1]


async def test_a_webhook_port_in_use_is_a_clear_startup_error(
    tg: FakeTelegram, start_bot: Callable[..., Awaitable[RunningBot]]
) -> None:
    import socket

    from bot.ops import ListenError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"127.0.0.1:{port} \\(WEBHOOK_LISTEN\\)"):
            await start_bot(
                telegram_webhook_url=f"http://127.0.0.1:{port}{PATH}",
                telegram_webhook_secret=SECRET,
                webhook_listen=f"127.0.0.1:{port}",
            )
    assert tg.calls_of("setWebhook") == []
