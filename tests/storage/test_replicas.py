"""Replicas sharing one real, migrated database (SQLite and PostgreSQL), each with its own
engine as separate processes would have: a chat's lease is one live replica's at a time and
lapses with its heartbeat, a lease is never given back while an update of the chat waits,
and the jobs a dead replica left are claimed once, by one replica."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.services.access import AccessLists, AccessService
from bot.services.inbox import Inbox
from bot.services.replicas import Replicas
from bot.services.types import Who
from bot.storage import db
from bot.storage.database import Database
from bot.storage.models import JobStatus, Replica, SubjectKind, utcnow
from bot.storage.queries import table_of

ANN, BEN = 501, 502
GROUP = -100777


@pytest.fixture
async def databases(db_url: str) -> AsyncIterator[Callable[[], Database]]:
    """A new process's Database on the shared database, each call."""
    await db.aupgrade(db_url)
    engines = []

    def open_one() -> Database:
        engine = db.create_engine(db_url)
        engines.append(engine)
        return Database(db.create_sessionmaker(engine))

    yield open_one
    for engine in engines:
        await engine.dispose()


async def _replica(database: Database, *, exclusive: bool = False) -> Replicas:
    replica = Replicas(database, lease=5.0, exclusive=exclusive)
    await replica.join()
    return replica


async def _die(database: Database, replica: Replicas) -> None:
    """The replica's last heartbeat was a minute ago (kill -9 does not delete its row)."""
    async with database.write() as repo:
        stmt = update(table_of(Replica)).where(table_of(Replica).c.id == replica.id)
        await repo.core(stmt.values(seen_at=utcnow() - timedelta(minutes=1)))


def _update(update_id: int, chat: int) -> str:
    return json.dumps({"update_id": update_id, "message": {"chat": {"id": chat}}})


async def test_a_chat_is_one_live_replicas_and_lapses_with_its_heartbeat(
    databases: Callable[[], Database],
) -> None:
    one, two = databases(), databases()
    a, b = await _replica(one), await _replica(two)
    assert await a.take_chat(ANN) is True
    assert await a.take_chat(ANN) is True  # its own already
    assert await b.take_chat(ANN) is False
    assert await b.take_chat(GROUP) is True
    assert (await a.held_chats(), await b.held_chats()) == ({ANN}, {GROUP})
    assert await a.orphaned_chats() == []

    inbox = Inbox(two)
    await inbox.record(10, _update(10, ANN), chat_id=ANN)  # recorded by b, for a's chat
    assert [u.update_id for u in await a.pending_of_held_chats()] == [10]
    assert await b.pending_of_held_chats() == []
    await _die(one, a)
    assert await b.orphaned_chats() == [ANN]  # waiting, and its holder is dead
    assert await b.take_chat(ANN) is True
    assert await b.orphaned_chats() == []
    assert await a.take_chat(ANN) is False  # back from the dead: b holds it now
    assert await b.held_chats() == {ANN, GROUP}


async def test_a_lease_is_given_back_only_when_none_of_its_updates_waits(
    databases: Callable[[], Database],
) -> None:
    one, two = databases(), databases()
    a, b = await _replica(one), await _replica(two)
    inbox = Inbox(one)
    assert await a.take_chat(ANN)
    await inbox.record(1, _update(1, ANN), chat_id=ANN)
    await inbox.record(2, _update(2, BEN), chat_id=BEN)  # another chat's does not count
    assert await b.release_chat(ANN) is False  # not b's to give back
    assert await a.release_chat(ANN) is False  # update 1 waits: a keeps the chat
    assert await inbox.start(1)
    assert await a.release_chat(ANN) is True
    assert await a.held_chats() == set()
    assert await b.take_chat(ANN) is True


async def test_concurrent_takes_of_a_free_chat_give_it_to_one(
    databases: Callable[[], Database],
) -> None:
    replicas = [await _replica(databases()) for _ in range(4)]
    won = await asyncio.gather(*(r.take_chat(GROUP) for r in replicas))
    assert sorted(won) == [False, False, False, True]


async def test_the_jobs_a_dead_replica_left_are_claimed_once(
    databases: Callable[[], Database],
) -> None:
    one, two, three = databases(), databases(), databases()
    a, b, c = await _replica(one), await _replica(two), await _replica(three)
    ann = Who(ANN, "Ann", None, "en", ANN, "private")
    ben = Who(BEN, "Ben", None, "zh", GROUP, "supergroup", "G")
    ids: dict[str, int] = {}
    async with one.write(ann) as repo:
        for name, owner, status in (
            ("a-running-1", a.id, JobStatus.RUNNING),
            ("a-running-2", a.id, JobStatus.RUNNING),
            ("a-done", a.id, JobStatus.SUCCEEDED),
            ("b-running", b.id, JobStatus.RUNNING),
            ("old-running", None, JobStatus.RUNNING),  # from before replicas were recorded
        ):
            ids[name] = await repo.insert_job(
                [], **_job(ann, name, status, owner, delivered=name == "a-done")
            )
    async with one.write(ben) as repo:  # failed as interrupted, its user not told yet
        untold = {**_job(ben, "untold", JobStatus.FAILED, a.id), "error_code": "interrupted"}
        ids["a-untold"] = await repo.insert_job([], **untold)
    assert await c.claim_left_jobs() == [ids["old-running"]]  # a and b are alive
    await _die(one, a)
    claims = await asyncio.gather(b.claim_left_jobs(), c.claim_left_jobs())
    taken = sorted(claims[0] + claims[1])
    assert taken == sorted([ids["a-running-1"], ids["a-running-2"], ids["a-untold"]])
    assert not set(claims[0]) & set(claims[1])
    assert await c.claim_left_jobs() == [] and await b.claim_left_jobs() == []
    # a, back from a long pause, finds the job is no longer its own before it sends anything
    job = ids["a-running-1"]
    taker = b.id if job in claims[0] else c.id
    async with one.write() as repo:
        assert await repo.mark_upstream(job, a.id) is False
        assert await repo.mark_upstream(job, taker) is True


def _job(
    who: Who, prompt: str, status: str, owner: str | None, *, delivered: bool = False
) -> dict[str, object]:
    return {
        "chat_id": who.chat_id,
        "thread_id": 0,
        "user_id": who.user_id,
        "kind": "generate",
        "prompt": prompt,
        "dialect": "openai-chat",
        "model": "gemini-3.1-flash-image",
        "status": status,
        "owner": owner,
        "upstream_at": None,
        "delivered_at": utcnow() if delivered else None,
    }


async def test_a_start_on_sqlite_takes_every_other_replica_for_dead(
    databases: Callable[[], Database],
) -> None:
    one, two = databases(), databases()
    a = await _replica(one)
    assert await a.take_chat(ANN)
    b = await _replica(two, exclusive=True)  # the file's only process: a died
    assert await b.take_chat(ANN) is True
    assert (await b.beat()).replicas == 1


async def test_heartbeats_count_the_replicas_and_share_a_flood_pause(
    databases: Callable[[], Database],
) -> None:
    one, two = databases(), databases()
    a, b = await _replica(one), await _replica(two)
    assert (await a.beat()).replicas == 2
    assert (await b.beat()).flood_seconds == 0
    await a.pause_flood(7.0)
    pulse = await b.beat()
    assert 5.0 < pulse.flood_seconds <= 7.0
    await b.leave()
    assert (await a.beat()).replicas == 1
    assert (await b.beat()).replicas == 2  # a beat after its row went brings it back


async def test_a_deny_on_one_replica_holds_on_the_other_within_max_age(
    databases: Callable[[], Database],
) -> None:
    lists = AccessLists(frozenset(), frozenset(), frozenset())  # open bot
    one = AccessService(databases(), lists, max_age=0.2)
    two = AccessService(databases(), lists, max_age=0.2)
    assert await two.allowed(BEN, BEN)  # read once, remembered
    await one.set_allowed(SubjectKind.USER, BEN, False, by=ANN)
    assert await one.allowed(BEN, BEN) is False
    await asyncio.sleep(0.3)
    assert await two.allowed(BEN, BEN) is False  # read again: refused there too
    assert await two.allowed(ANN, ANN) is True


async def test_a_users_requests_upstream_in_other_replicas_are_counted(
    databases: Callable[[], Database],
) -> None:
    one, two = databases(), databases()
    a, b = await _replica(one), await _replica(two)
    ann = Who(ANN, "Ann", None, "en", ANN, "private")
    async with one.write(ann) as repo:
        for owner, upstream in ((a.id, True), (a.id, True), (a.id, False), (b.id, True)):
            values = _job(ann, "x", JobStatus.RUNNING, owner)
            await repo.insert_job([], **{**values, "upstream_at": utcnow() if upstream else None})
        await repo.insert_job([], **{**_job(ann, "done", JobStatus.SUCCEEDED, a.id)})
    assert await b.upstream_elsewhere(ANN) == 2  # a's two upstream, not the waiting or done
    assert await a.upstream_elsewhere(ANN) == 1
    assert await a.upstream_elsewhere(BEN) == 0
