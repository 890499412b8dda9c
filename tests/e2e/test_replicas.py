"""Two `python -m bot` replicas in webhook mode on one PostgreSQL, behind a round-robin load
balancer, share one bot: 200 chats at once each get their two images, every job runs once,
each chat's in the order it was asked; then one replica is killed (SIGKILL) while it holds
jobs, and the other takes them over: each is answered (its image, or a notice with a Retry
button for one whose request had already reached the upstream) and nothing is paid twice.
Albums whose photos reach both replicas are gathered into one request."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests import postgres
from tests.e2e.conftest import ProcessDb
from tests.e2e.helpers import jpeg
from tests.e2e.test_crash_recovery import _prompt, _retry_button
from tests.e2e.test_process import _spawn, bot_env
from tests.fakes.balancer import FakeBalancer
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.ports import free_port
from tests.fakes.telegram_api import Call, FakeTelegram

pytestmark = pytest.mark.postgresql_only

SECRET = "replicas_Secret-1"
CHATS = 200
LATE = range(7001, 7021)  # the chats asking while a replica dies


def _chat(call: Call) -> int:
    return int(call.params["chat_id"])


def _reply_to(call: Call) -> int:
    return int(call.params["reply_parameters"]["message_id"])


async def _ready(port: int) -> None:
    async with asyncio.timeout(60), aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)


async def _until(check: Callable[[], bool], seconds: float = 60.0) -> None:
    """Until `check()` holds: it reads a database and the fakes, which tell nobody."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.05)


async def test_two_replicas_share_the_chats_and_take_over_a_killed_ones_jobs(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, process_db: ProcessDb
) -> None:
    url = str(process_db.where)
    ports = [free_port(), free_port()]
    balancer = FakeBalancer([f"http://127.0.0.1:{p}" for p in ports], retry_down_after=60)
    await balancer.start()
    procs: list[asyncio.subprocess.Process] = []
    outputs: list[asyncio.Task[tuple[bytes, bytes]]] = []
    try:
        for port in ports:  # the first one started is the one killed later
            env = bot_env(
                tmp_path,
                tg,
                upstream,
                TELEGRAM_WEBHOOK_URL=f"{balancer.url}/hook",
                TELEGRAM_WEBHOOK_SECRET=SECRET,
                WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                REPLICA_LEASE_SECONDS="5",
                TELEGRAM_RATE_LIMITER="false",  # the flood budget is not what this measures
                **process_db.env,
            )
            proc = await _spawn(env, tmp_path)
            procs.append(proc)
            outputs.append(asyncio.create_task(proc.communicate()))
            await _ready(port)
        [(first,)] = postgres.fetch(url, "SELECT id FROM replicas ORDER BY started_at LIMIT 1")

        # -- 200 chats at once, two requests each ----------------------------------------------
        upstream.latency = 0.2
        asked: dict[int, list[int]] = {}
        for i in range(CHATS):
            chat = 5000 + i
            user = tg.user(chat, f"U{i}", language_code="zh" if i % 2 else "en")
            asked[chat] = [
                tg.send_text(chat, f"c{chat} one", user=user)["message_id"],
                tg.send_text(chat, f"c{chat} two", user=user)["message_id"],
            ]
        photos = await tg.wait_for("sendPhoto", count=2 * CHATS, timeout=240)
        prompts = [_prompt(r) for r in upstream.requests]
        assert Counter(prompts) == Counter(f"c{c} {w}" for c in asked for w in ("one", "two"))
        by_chat: dict[int, list[int]] = {}
        for photo in photos:
            by_chat.setdefault(_chat(photo), []).append(_reply_to(photo))
        assert by_chat == asked  # each chat's two images, in the order asked
        for chat in asked:
            assert prompts.index(f"c{chat} one") < prompts.index(f"c{chat} two")
        owners = postgres.fetch(url, "SELECT owner, count(*) FROM jobs GROUP BY owner")
        assert len(owners) == 2 and all(n > CHATS // 4 for _, n in owners), owners
        assert min(balancer.forwarded.values()) > CHATS // 2

        # -- albums whose photos reach both replicas ----------------------------------------------
        before = len(upstream.requests)
        albums = range(6001, 6011)
        for chat in albums:
            user = tg.user(chat, f"A{chat}")
            for n in range(3):
                tg.send_photo(
                    chat,
                    jpeg((40 * n, 90, 200)),
                    caption=f"album {chat}" if n == 0 else None,
                    user=user,
                    media_group_id=f"g{chat}",
                )
        await tg.wait_for("sendPhoto", count=2 * CHATS + len(albums), timeout=60)
        gathered = upstream.requests[before:]
        assert sorted(_prompt(r) for r in gathered) == sorted(f"album {c}" for c in albums)
        assert all(len(r.input_images) == 3 for r in gathered)  # one request of three photos

        # -- one replica dies holding jobs -------------------------------------------------------
        upstream.latency = 0.0
        upstream.hold_next(len(LATE) * 2)
        for chat in LATE:
            tg.send_text(chat, f"late {chat}", user=tg.user(chat, f"L{chat}"))
        running = "SELECT owner, id, upstream_at IS NOT NULL FROM jobs WHERE status = 'running'"

        def all_running() -> bool:
            rows = postgres.fetch(url, running)
            return len(rows) == len(LATE) and len({r[0] for r in rows}) == 2

        await _until(all_running)
        await _until(lambda: upstream.holding >= 2)
        rows = postgres.fetch(url, running)
        left = {job: sent for owner, job, sent in rows if owner == first}
        assert left, rows
        procs[0].kill()  # SIGKILL: no clean-up of any kind
        await asyncio.wait_for(outputs[0], 30)
        # Which of them had reached the upstream, as the dead one left them (read before the
        # survivor's takeover, a lease later; one may have gone up since the look above).
        ids = ",".join(map(str, left))
        sent_rows = postgres.fetch(
            url, f"SELECT id, upstream_at IS NOT NULL FROM jobs WHERE id IN ({ids})"
        )
        left = dict(sent_rows)
        upstream.release()

        def answered(chat: int) -> list[Call]:
            return [c for c in tg.calls if c.method in ("sendPhoto", "sendMessage")
                    and c.ok and str(c.params.get("chat_id")) == str(chat)
                    and (c.method == "sendPhoto" or _retry_button(c) is not None)]  # fmt: skip

        await _until(lambda: all(answered(chat) for chat in LATE), seconds=90)
        await asyncio.sleep(1.0)  # nothing more comes
        for chat in LATE:
            assert len(answered(chat)) == 1, (chat, answered(chat))
        late = Counter(p for p in (_prompt(r) for r in upstream.requests) if p.startswith("late"))
        assert max(late.values()) == 1  # no request was paid for twice
        jobs = postgres.fetch(
            url, f"SELECT id, owner, status, error_code FROM jobs WHERE id IN ({ids})"
        )
        for job, owner, status, error in jobs:
            assert owner != first and status != "running"
            # a request that reached the upstream is not sent again without the user's word
            assert (error == "interrupted") == left[job], (job, status, error)

        # -- the survivor takes the dead one's chats too -------------------------------------------
        again = {
            (
                chat,
                tg.send_text(chat, f"again {chat}", user=tg.user(chat, f"L{chat}"))["message_id"],
            )
            for chat in LATE
        }
        await _until(
            lambda: {(_chat(p), _reply_to(p)) for p in tg.calls_of("sendPhoto")} >= again,
            seconds=60,
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        done = await asyncio.wait_for(asyncio.gather(*outputs, return_exceptions=True), 60)
        await balancer.stop()
        for n, output in enumerate(done):  # each replica's log, for when this fails
            if isinstance(output, tuple):
                (tmp_path / f"replica-{n}.log").write_bytes(output[0] + output[1])
    assert procs[1].returncode == 0, done[1]
