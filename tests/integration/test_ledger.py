"""The Stars ledger on a real migrated SQLite file and PostgreSQL database: a payment credited
once, jobs racing for the last credits (exactly as many pass as the balance covers, the
others leave no job row), and a reservation settled once however often it is settled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.services.errors import NotEnoughStarsError
from bot.services.payments import Wallet
from bot.services.types import JobOptions, Who
from bot.storage import db
from bot.storage.database import Database
from bot.storage.models import JobStatus, utcnow

ALICE, BOB = 11, 12


def who(user: int) -> Who:
    return Who(user, f"u{user}", None, "en", user, "private")


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    yield Database(db.create_sessionmaker(engine))
    await engine.dispose()


async def _open(database: Database, wallet: Wallet, user: int, n: int = 1) -> int:
    """A job's row and its reservation in one write, as GenerationService opens a job."""
    async with database.write(who(user)) as repo:
        job_id = await repo.insert_job(
            [],
            chat_id=user,
            thread_id=0,
            user_id=user,
            request_message_id=None,
            kind="generate",
            prompt="a kite",
            dialect="openai-chat",
            model="m",
            aspect_ratio=None,
            image_size=None,
            n=n,
            status=JobStatus.RUNNING,
            started_at=utcnow(),
            attempts=1,
        )
        await wallet.reserve(repo, job_id, who(user), JobOptions("m", n=n))
        return job_id


async def test_racing_jobs_pass_only_as_far_as_the_balance_goes(database: Database) -> None:
    wallet = Wallet(database, packs=(10,), free_per_day=0, price=lambda model, size: 4)
    assert await wallet.credit(ALICE, "charge-1", 10)
    assert not await wallet.credit(ALICE, "charge-1", 10)  # a redelivered payment
    results = await asyncio.gather(
        *(_open(database, wallet, ALICE) for _ in range(6)), return_exceptions=True
    )
    passed = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, NotEnoughStarsError)]
    assert len(passed) == 2 and len(refused) == 4
    assert refused[0].params == {"need": 4, "have": 2}
    async with database.read() as repo:
        assert await repo.balance(ALICE) == 2
        assert [j.id for j in await repo.running_jobs()] == sorted(passed)  # refused: no row
    # Bob is another account: Alice's credits are not his
    with pytest.raises(NotEnoughStarsError):
        await _open(database, wallet, BOB)


async def test_a_reservation_is_settled_once(database: Database) -> None:
    wallet = Wallet(database, packs=(10,), free_per_day=1, price=lambda model, size: 3)
    await wallet.credit(ALICE, "charge-1", 10)
    job = await _open(database, wallet, ALICE, n=3)  # one of the three is the day's free one
    async with database.read() as repo:
        [held] = await repo.entries_of_job(job)
        assert (held.kind, held.amount, held.images, held.free_images) == ("reserve", -6, 2, 1)

    async def settle(delivered: bool) -> None:
        async with database.write() as repo:
            await wallet.settle(repo, job, delivered=delivered)

    await asyncio.gather(settle(False), settle(False), settle(True))
    await wallet.release(job)
    async with database.read() as repo:
        kinds = [(e.kind, e.amount) for e in await repo.entries_of_job(job)]
        assert kinds == [("reserve", -6), ("release", 6)]  # no image made: nothing charged
        assert await repo.balance(ALICE) == 10
        assert await repo.open_reservations() == []
