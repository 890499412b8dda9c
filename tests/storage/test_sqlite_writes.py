"""bot.storage.db's SQLite sessions on a real migrated file: many write transactions at once
all commit (never "database is locked"), they take turns (no two overlap) while readers go on,
failures and cancellations roll back and free the turn, and the connections close cleanly.
The services' units of work (bot.storage.database) run inline on the loop's thread and take
the same turns as the sessions' writers."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.storage import db
from bot.storage.database import Database
from bot.storage.models import Chat, Job, JobInput, User
from bot.storage.repositories import Repo

CHATS = 20


def counts(path: Path) -> dict[str, int]:
    """Rows per table, read by a separate plain sqlite3 connection."""
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("users", "chats", "images", "jobs", "job_inputs")
        }


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    await db.aupgrade(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    return tmp_path / "bot.db"


@pytest.fixture
async def engine(db_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = db.create_engine(f"sqlite+aiosqlite:///{db_path}")
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.create_sessionmaker(engine)


async def one_job(repo: Repo, i: int) -> int:
    """What a request writes: its user and chat, an image, a job that uses it."""
    chat_id = -1000 - i % CHATS
    await repo.upsert_user(i + 1, f"user {i}", None, "en")
    await repo.upsert_chat(chat_id, "group", f"chat {i % CHATS}")
    image_id = await repo.insert_image(
        chat_id=chat_id,
        source="user",
        sha256=f"{i:064x}",
        size_bytes=100 + i,
        mime="image/png",
        width=8,
        height=8,
    )
    return await repo.insert_job(
        [image_id],
        chat_id=chat_id,
        user_id=i + 1,
        kind="edit",
        prompt=f"prompt {i}",
        dialect="gemini",
        model="m",
        status="running",
    )


async def test_sqlite_connections_get_the_pragmas(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        pragmas = {
            name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


async def test_200_write_transactions_at_once_all_commit(
    db_path: Path, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    go = asyncio.Event()

    async def request(i: int) -> int:
        await go.wait()
        async with sessions() as s:  # a read first, as handlers do (no lock held after it)
            await s.get(User, i + 1)
        await asyncio.sleep(0)
        async with sessions.begin() as s:
            return await one_job(Repo(s), i)

    tasks = [asyncio.create_task(request(i)) for i in range(200)]
    await asyncio.sleep(0)
    go.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30.0)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert len(set(results)) == 200
    assert counts(db_path) == {
        "users": 200,
        "chats": CHATS,
        "images": 200,
        "jobs": 200,
        "job_inputs": 200,
    }
    assert engine.pool.checkedout() == 0  # every session gave its connection back


async def test_readers_between_writers(
    db_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Read sessions that stay open across turns of the loop don't block writers (WAL)."""

    async def writer(i: int) -> None:
        async with sessions.begin() as s:
            await one_job(Repo(s), i)

    async def reader() -> int:
        async with sessions() as s:
            seen = 0
            for _ in range(5):
                seen = len((await s.execute(select(Job.id))).all())
                await asyncio.sleep(0)
            return seen

    jobs = [writer(i) for i in range(100)]
    readers = [reader() for _ in range(50)]
    results = await asyncio.wait_for(asyncio.gather(*jobs, *readers), 30.0)
    assert all(0 <= n <= 100 for n in results[100:])
    assert counts(db_path)["jobs"] == 100


async def test_write_transactions_take_turns(sessions: async_sessionmaker[AsyncSession]) -> None:
    inside: list[int] = []
    overlaps = 0

    async def writer(i: int) -> None:
        nonlocal overlaps
        async with sessions.begin() as s:
            inside.append(i)
            overlaps += len(inside) > 1
            await one_job(Repo(s), i)
            await asyncio.sleep(0)  # other tasks run, but no other write transaction
            await s.execute(select(Chat.id))
            inside.remove(i)

    await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(50))), 30.0)
    assert overlaps == 0 and inside == []


async def writer_of(sessions: async_sessionmaker[AsyncSession], i: int) -> int:
    async with sessions.begin() as s:
        return await one_job(Repo(s), i)


async def test_a_write_transaction_inside_another_is_refused_not_deadlocked(
    db_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(RuntimeError, match="inside another"):
        async with sessions.begin() as s:
            await one_job(Repo(s), 1)
            async with sessions.begin():
                pass
    assert counts(db_path)["jobs"] == 0
    await writer_of(sessions, 2)  # the turn is free again
    assert counts(db_path)["jobs"] == 1


async def test_a_cancelled_write_rolls_back_and_frees_the_turn(
    db_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        async with sessions.begin() as s:
            await one_job(Repo(s), 1)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await started.wait()
    waiting = asyncio.create_task(writer_of(sessions, 2))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # its turn comes after the stuck one
    task.cancel()
    await asyncio.wait_for(waiting, 10.0)
    assert counts(db_path)["jobs"] == 1


async def test_an_exception_rolls_back_everything(
    db_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with sessions.begin() as s:
            await one_job(Repo(s), 1)
            await one_job(Repo(s), 2)
            raise RuntimeError("changed my mind")
    assert counts(db_path) == dict.fromkeys(("users", "chats", "images", "jobs", "job_inputs"), 0)
    # the write lock is free at once: another connection that won't wait can write
    with sqlite3.connect(db_path, timeout=0) as other:
        other.execute(
            "insert into users (id, first_name, created_at, last_seen_at) "
            "values (5, 'x', '2024-01-01', '2024-01-01')"
        )
    async with sessions.begin() as s:
        await one_job(Repo(s), 3)
    assert counts(db_path)["jobs"] == 1


async def test_a_failing_statement_rolls_back_the_earlier_ones(
    db_path: Path, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await one_job(Repo(s), 1)
            s.add(JobInput(job_id=10_000, position=0, image_id=10_000))  # no such job: FK
            await s.flush()
    assert counts(db_path)["jobs"] == 0
    assert engine.pool.checkedout() == 0
    async with sessions.begin() as s:
        await one_job(Repo(s), 2)
    assert counts(db_path)["jobs"] == 1


async def test_what_a_transaction_returns_stays_usable(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        job_id = await one_job(Repo(s), 7)
        job = await s.get(Job, job_id)
    assert job is not None
    assert job.prompt == "prompt 7"  # expire_on_commit=False: no lazy load after the block


async def _use_and_dispose(db_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{db_path}")
    sessions = db.create_sessionmaker(engine)

    async def request(i: int) -> None:
        async with sessions.begin() as s:
            await one_job(Repo(s), i)

    await asyncio.gather(*(request(i) for i in range(20)))
    async with sessions() as s:
        await s.execute(select(User.id))
    await engine.dispose()


async def test_connections_close_cleanly(db_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await _use_and_dispose(db_path)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    # the last connection to close checkpoints and removes the WAL: none is left open
    assert not await asyncio.to_thread(os.path.exists, f"{db_path}-wal")
    assert counts(db_path)["jobs"] == 20


async def test_a_database_that_cannot_open_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "a directory").mkdir()
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/a directory")
    with pytest.raises(OperationalError):
        async with db.create_sessionmaker(engine)() as s:
            await asyncio.wait_for(s.execute(select(User.id)), 5.0)
    await engine.dispose()
    # aiosqlite's worker stops on its own after a failed open: let it finish on this loop
    for _ in range(500):
        if not any("_connection_worker_thread" in t.name for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)


async def test_units_of_work_run_inline_and_200_writers_at_once_all_commit(
    db_path: Path, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from sqlalchemy import event

    inline = db.inline_engine(sessions)
    assert inline is not None
    threads: set[int] = set()
    event.listen(inline, "before_cursor_execute", lambda *_: threads.add(threading.get_ident()))
    database = Database(sessions)
    go = asyncio.Event()

    async def request(i: int) -> int:
        await go.wait()
        async with database.read() as repo:
            await repo.image(i + 1)
        await asyncio.sleep(0)
        async with database.write() as repo:
            return await one_job(repo, i)

    async def through_the_sessions(i: int) -> int:  # a writer of the async engine meanwhile
        await go.wait()
        async with sessions.begin() as s:
            return await one_job(Repo(s), i)

    tasks = [asyncio.create_task(request(i)) for i in range(200)]
    tasks += [asyncio.create_task(through_the_sessions(i)) for i in range(200, 210)]
    await asyncio.sleep(0)
    go.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30.0)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert threads == {threading.get_ident()}  # no hand-off to a worker thread
    assert counts(db_path)["jobs"] == 210
