"""A crash loses nothing and strands nothing: `python -m bot` killed with SIGKILL mid-job, then
started again on the same DATA_DIR (and database: SQLite or PostgreSQL), answers every job
the dead process left."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from tests import postgres
from tests.e2e.conftest import ProcessDb
from tests.e2e.helpers import close, mean
from tests.e2e.test_process import _spawn, bot_env
from tests.fakes.image_api import FakeImageAPI, Recorded
from tests.fakes.telegram_api import Call, FakeTelegram

GROUP, TOPIC = -1001234567890, 77
ALICE, BOB = 1001, 1002  # Alice asks in a forum topic, Bob in his private chat


def _in(chat: int):  # type: ignore[no-untyped-def]
    return lambda c: str(c.params.get("chat_id")) == str(chat)


def _retry_button(call: Call) -> str | None:
    markup = call.params.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for b in row:
            if str(b.get("callback_data", "")).startswith("regen:"):
                return str(b["callback_data"])
    return None


def _prompt(request: Recorded) -> str:
    content = request.json["messages"][0]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def db_rows_at(db: Path | str, sql: str) -> list[tuple[object, ...]]:
    """Rows of one query on a spawned bot's database (a SQLite file or a PostgreSQL URL)."""
    import sqlite3

    if isinstance(db, str):
        return postgres.fetch(db, sql)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


async def _wait_for_rows(db: Path | str, sql: str, count: int) -> None:
    """Until the dead-to-be process has committed `count` rows matching `sql`."""
    import sqlite3

    import asyncpg

    async with asyncio.timeout(30):
        while True:
            try:
                rows = db_rows_at(db, sql)
                if rows and int(rows[0][0]) >= count:  # type: ignore[call-overload]
                    return
            except (sqlite3.OperationalError, asyncpg.UndefinedTableError):
                pass  # not migrated yet
            await asyncio.sleep(0.05)


async def test_a_killed_bot_answers_every_job_it_left_once_restarted(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, process_db: ProcessDb
) -> None:
    env = bot_env(
        tmp_path,
        tg,
        upstream,
        MAX_CONCURRENT_JOBS="1",  # Bob's job waits for Alice's to leave its slot
        DAILY_IMAGES_PER_USER="1",
        ADMIN_USER_IDS=str(BOB),  # Bob makes two images; admins have no daily limit
        IMAGE_RETRY_BASE_DELAY="0.05",
        # On PostgreSQL the restarted process takes the dead one's jobs once its heartbeat
        # lapses (on SQLite at once: the file has one process).
        REPLICA_LEASE_SECONDS="2",
        **process_db.env,
    )
    db = process_db.where
    upstream.hold_next()  # the upstream has Alice's request and does not answer
    first = await _spawn(env, tmp_path)
    output = asyncio.create_task(first.communicate())
    alice = tg.send_text(
        GROUP,
        "/imagine a paper boat",
        user=tg.user(ALICE, "Alice"),
        chat_type="supergroup",
        message_thread_id=TOPIC,
    )
    await upstream.wait_requests(1)
    bob = tg.send_text(BOB, "a red kite", user=tg.user(BOB, "Bob", language_code="zh"))
    await _wait_for_rows(db, f"SELECT count(*) FROM jobs WHERE chat_id = {BOB}", 1)
    first.kill()  # SIGKILL: no clean-up of any kind
    await asyncio.wait_for(output, 30)
    assert upstream.holding == 1 and len(upstream.requests) == 1
    assert not tg.calls_of("sendPhoto")

    upstream.hold_next()  # Bob's job, run again, is held too: his next request must wait
    second = await _spawn(env, tmp_path)
    output = asyncio.create_task(second.communicate())
    try:
        # Alice: her request reached the upstream (maybe billed): told, with a Retry button.
        [notice] = await tg.wait_for(
            "sendMessage", lambda c: _in(GROUP)(c) and _retry_button(c) is not None, timeout=30
        )
        assert notice.params["message_thread_id"] == TOPIC
        assert notice.params["reply_parameters"]["message_id"] == alice["message_id"]
        assert "Retry" in str(notice.params["reply_markup"])
        # Bob: his job never left; it runs again by itself, and what he sends now queues after it.
        await upstream.wait_requests(2)
        bob_next = tg.send_text(BOB, "a blue kite", user=tg.user(BOB, "Bob", language_code="zh"))
        await tg.wait_for("sendMessage", lambda c: _in(BOB)(c) and "排队" in c.params["text"])
        assert len(upstream.requests) == 2
        upstream.release()
        photos = await tg.wait_for("sendPhoto", _in(BOB), count=2, timeout=30)
        assert [p.params["reply_parameters"]["message_id"] for p in photos] == [
            bob["message_id"],
            bob_next["message_id"],
        ]
        assert "重新生成" in str(photos[0].params["reply_markup"])  # in his language
        assert [_prompt(r) for r in upstream.requests] == [
            "a paper boat",
            "a red kite",
            "a blue kite",
        ]
        # ... and refines the red kite he was sent.
        assert close(upstream.requests[2].input_images[0].color, mean(photos[0].files["photo"]))
        # Retry: Alice's quota of one image a day still has room (the dead job holds none).
        tg.press_button(GROUP, notice.result["message_id"], str(_retry_button(notice)))
        [alice_photo] = await tg.wait_for("sendPhoto", _in(GROUP), timeout=30)
        assert alice_photo.params["message_thread_id"] == TOPIC
        assert [_prompt(r) for r in upstream.requests][3:] == ["a paper boat"]
        await asyncio.sleep(0.5)
        notices = [c for c in tg.calls_of("sendMessage") if _retry_button(c) is not None]
        assert notices == [notice]  # exactly once
        [(status, error)] = db_rows_at(db, "SELECT status, error_code FROM jobs WHERE id = 1")
        assert (status, error) == ("failed", "interrupted")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(output, 30)
    assert second.returncode == 0, err.decode()[-2000:]
    logs = (out + err).decode()
    assert " ERROR " not in logs and "Task was destroyed" not in logs, logs[-3000:]
