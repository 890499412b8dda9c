"""Settling a dead process's jobs, on a real migrated SQLite file.

The "dead process" is real code stopped mid-job: its jobs are left exactly as the services
wrote them (one held by the upstream, one waiting for a slot, one finished but not sent), and
a second engine on the same file -- the restarted process -- settles them.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.providers.base import Endpoint, GeneratedImage, ImageResult
from bot.providers.pool import ProviderPool
from bot.services.generation import GenerationService
from bot.services.ordering import FairScheduler
from bot.services.quotas import QuotaService
from bot.services.recovery import Action, Leftover, RecoveryService
from bot.services.replicas import Replicas
from bot.services.types import Who
from bot.storage import db
from bot.storage.blobs import LocalBlobStore
from bot.storage.database import Database
from bot.storage.models import Job, JobStatus, SubjectKind
from tests.integration.asking import ask


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 32), color).save(buf, "PNG")
    return buf.getvalue()


class Provider:
    """Answers at once, or (while `held`) keeps the request forever, like a dead process's."""

    def __init__(self, max_concurrency: int = 4) -> None:
        self.endpoint = Endpoint("ep", "openai-chat", "", "", max_concurrency=max_concurrency)
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.held = False
        self.calls: list[str] = []
        self.upstream_at_seen: list[object] = []

    async def generate(self, request: Any, progress: Any = None) -> ImageResult:
        self.calls.append(request.prompt)
        if self.sessions is not None:
            async with self.sessions() as s:
                job = (await s.execute(select(Job).order_by(Job.id.desc()))).scalars().first()
                self.upstream_at_seen.append(job.upstream_at if job else None)
        if self.held:
            await asyncio.Event().wait()
        png = _png((len(self.calls) * 20 % 256, 100, 50))
        return ImageResult([GeneratedImage(png, "image/png")], endpoint="ep", model=request.model)


@dataclass
class Process:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    provider: Provider
    generation: GenerationService
    recovery: RecoveryService
    quotas: QuotaService
    database: Database

    async def settle(self) -> list[Leftover]:
        """What a start does: this process, the database's only one, claims what the dead one
        left and settles it."""
        replicas = Replicas(self.database, 15.0, exclusive=True)
        await replicas.join()
        return await self.recovery.settle(await replicas.claim_left_jobs(), every_hold=True)


def _process(
    db_url: str, blobs: LocalBlobStore, *, slots: int = 1, per_endpoint: int = 4
) -> Process:
    """The services as the bot wires them: the provider behind a ProviderPool (which marks a
    request as sent inside the endpoint's slot), `slots` jobs upstream at once."""
    engine = db.create_engine(db_url)
    sessions = db.create_sessionmaker(engine)
    database = Database(sessions)
    provider = Provider(per_endpoint)
    quotas = QuotaService(database, per_user=1, per_chat=0)
    generation = GenerationService(
        database,
        blobs,
        ProviderPool([provider]),  # type: ignore[list-item]
        model="gemini-2.5-flash-image",
        dialect="openai-chat",
        quotas=quotas,
        scheduler=FairScheduler(total=slots, per_user=1),
    )
    return Process(
        engine, sessions, provider, generation, RecoveryService(database), quotas, database
    )


def who(user: int, lang: str = "en") -> Who:
    return Who(user, f"u{user}", None, lang, user, "private")


@dataclass
class Dead:
    """Jobs a dead process left: ids by what happened to them."""

    reached: int  # held by the upstream
    waiting: int  # waiting for a slot: never went upstream
    unsent: int  # finished, result never sent
    sent: int  # finished and delivered


@pytest.fixture
async def left(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Dead, Process]]:
    await db.aupgrade(db_url)
    blobs = LocalBlobStore(tmp_path / "images")
    dead = _process(db_url, blobs)
    sent = await ask(dead.generation, who(9), "sent", [], message_id=1)
    await dead.generation.mark_delivered(sent.job_id)
    unsent = await ask(dead.generation, who(10), "unsent", [], message_id=2)
    dead.provider.held = True
    # One after the other, so that user 7's job is the one held upstream and has the lower id
    # (started together, the two inserts and the slot race on PostgreSQL).
    stuck = [asyncio.create_task(ask(dead.generation, who(7), "reached", [], message_id=3))]
    for _ in range(1000):  # until it is held upstream
        if len(dead.provider.calls) == 3:
            break
        await asyncio.sleep(0.01)
    stuck.append(
        asyncio.create_task(ask(dead.generation, who(8, "zh"), "waiting", [], message_id=4))
    )
    for _ in range(1000):  # until the other waits for its slot
        if dead.generation._scheduler._waiting:
            break
        await asyncio.sleep(0.01)
    restarted = _process(db_url, blobs)
    async with restarted.sessions() as s:
        ids = list((await s.execute(select(Job.id).order_by(Job.id))).scalars())
    yield Dead(ids[2], ids[3], unsent.job_id, sent.job_id), restarted
    await restarted.engine.dispose()
    # The dead process's tasks never resume in real life; here they are dropped at the end.
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)
    await dead.engine.dispose()


async def _job(p: Process, job_id: int) -> Job:
    async with p.sessions() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        return job


async def test_each_left_job_is_settled_by_whether_it_reached_the_upstream(
    left: tuple[Dead, Process],
) -> None:
    dead, p = left
    assert (await _job(p, dead.reached)).upstream_at is not None
    assert (await _job(p, dead.waiting)).upstream_at is None
    assert await p.quotas.used(SubjectKind.USER, 7) == 1  # held: counted while it runs

    leftovers = await p.settle()

    assert [(x.job_id, x.action) for x in leftovers] == [
        (dead.unsent, Action.DELIVER),
        (dead.reached, Action.NOTIFY),
        (dead.waiting, Action.RERUN),
    ]
    by_id = {x.job_id: x for x in leftovers}
    assert by_id[dead.reached].request_message_id == 3
    assert (by_id[dead.waiting].who.user_id, by_id[dead.waiting].who.language_code) == (8, "zh")
    reached = await _job(p, dead.reached)
    assert (reached.status, reached.error_code) == (JobStatus.FAILED, "interrupted")
    assert reached.finished_at is not None and reached.delivered_at is None
    assert (await _job(p, dead.waiting)).status == JobStatus.RUNNING
    # The interrupted job no longer holds a place in the quota; the one to run again does.
    assert await p.quotas.used(SubjectKind.USER, 7) == 0
    assert await p.quotas.used(SubjectKind.USER, 8) == 1


async def test_each_job_is_answered_once_and_a_rerun_keeps_its_row(
    left: tuple[Dead, Process],
) -> None:
    dead, p = left
    await p.settle()
    await p.recovery.mark_told(dead.reached)
    outcome = await p.recovery.outcome(dead.unsent)
    assert outcome.prompt == "unsent" and len(outcome.images) == 1
    await p.generation.mark_delivered(dead.unsent)
    assert [(x.job_id, x.action) for x in await p.settle()] == [
        (dead.waiting, Action.RERUN)  # not run yet: still to do
    ]

    rerun = await p.generation.resume(dead.waiting, who(8, "zh"))
    assert rerun.job_id == dead.waiting and p.provider.calls == ["waiting"]
    job = await _job(p, dead.waiting)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
    assert job.upstream_at is not None
    await p.generation.mark_delivered(dead.waiting)
    assert await p.settle() == []
    assert await p.quotas.used(SubjectKind.USER, 8) == 1  # the one image it made


async def test_a_job_that_keeps_dying_before_the_upstream_is_no_longer_run_by_itself(
    left: tuple[Dead, Process],
) -> None:
    dead, p = left
    async with p.sessions.begin() as s:
        job = await s.get(Job, dead.waiting)
        assert job is not None
        job.attempts = 3
    actions = {x.job_id: x.action for x in await p.settle()}
    assert actions[dead.waiting] == Action.NOTIFY
    assert (await _job(p, dead.waiting)).error_code == "interrupted"


async def test_the_upstream_mark_is_on_disk_before_the_request_leaves(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.aupgrade(db_url)
    p = _process(db_url, LocalBlobStore(tmp_path / "images"))
    p.provider.sessions = p.sessions
    order: list[str] = []
    real_to_disk = db.to_disk

    async def spy(sessions: Any) -> None:
        order.append("to_disk")
        await real_to_disk(sessions)

    real_generate = p.provider.generate

    async def generate(request: Any, progress: Any = None) -> ImageResult:
        order.append("upstream")
        return await real_generate(request, progress)

    monkeypatch.setattr(db, "to_disk", spy)
    monkeypatch.setattr(p.provider, "generate", generate)
    await ask(p.generation, who(7), "a cat", [], message_id=1)
    assert p.provider.upstream_at_seen[0] is not None
    assert order == ["to_disk", "upstream", "to_disk"]  # the mark, the call, the finish
    await p.engine.dispose()


async def test_a_job_waiting_for_the_endpoints_slot_has_not_reached_the_upstream(
    tmp_path: Path, db_url: str
) -> None:
    await db.aupgrade(db_url)
    p = _process(db_url, LocalBlobStore(tmp_path / "images"), slots=2, per_endpoint=1)
    p.provider.held = True
    jobs = [
        asyncio.create_task(ask(p.generation, who(user), "a cat", [], message_id=user))
        for user in (7, 8)
    ]
    for _ in range(1000):  # until one is upstream and the other waits at the endpoint's cap
        if p.provider.calls:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    async with p.sessions() as s:
        marks = (await s.execute(select(Job.id, Job.upstream_at, Job.user_id))).all()
    assert len(p.provider.calls) == 1 and {user for *_, user in marks} == {7, 8}
    # whichever job took the endpoint's slot first (not always the first opened, as two
    # tasks race) is marked; the other waits unmarked
    upstream = [job_id for job_id, at, _ in marks if at is not None]
    waiting = [job_id for job_id, at, _ in marks if at is None]
    assert len(upstream) == 1 and len(waiting) == 1
    restarted = _process(db_url, LocalBlobStore(tmp_path / "images"))
    actions = {x.job_id: x.action for x in await restarted.settle()}
    assert actions == {upstream[0]: Action.NOTIFY, waiting[0]: Action.RERUN}
    await restarted.engine.dispose()
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    await p.engine.dispose()


async def test_concurrent_syncs_share_fsyncs(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own durability (PostgreSQL makes each commit durable itself)."""
    db_url = sqlite_url
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as s:
        await s.execute(select(Job))  # opens the database (and its WAL)
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    await asyncio.gather(*(db.to_disk(sessions) for _ in range(50)))
    wal = [p for p in synced if p.endswith("bot.db-wal")]
    assert 1 <= len(wal) <= 2
    await db.to_disk(sessions)  # a later caller gets a sync of its own
    assert len([p for p in synced if p.endswith("bot.db-wal")]) == len(wal) + 1
    await engine.dispose()


def test_a_blob_and_the_directories_naming_it_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    root = tmp_path / "images"
    sha = LocalBlobStore(root)._put_sync(b"first")
    path = root / sha[:2] / sha[2:4] / sha
    assert synced[0].startswith(str(path.parent / ".tmp-"))  # the file, before its rename
    assert synced[1:] == [str(path.parent), str(path.parent.parent), str(root), str(tmp_path)]


async def test_a_failed_fsync_does_not_fail_the_job(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db_url = sqlite_url
    await db.aupgrade(db_url)
    p = _process(db_url, LocalBlobStore(tmp_path / "images"))
    async with p.sessions() as s:
        await s.execute(select(Job))

    def broken(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    outcome = await ask(p.generation, who(7), "a cat", [], message_id=1)
    assert (await _job(p, outcome.job_id)).status == JobStatus.SUCCEEDED
    assert "could not sync the database" in caplog.text
    await p.engine.dispose()
