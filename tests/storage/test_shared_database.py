"""Two processes on one PostgreSQL database, as two replicas would be: each its own engine,
`Database`, services and in-process locks. More requests race than the daily quota or the
Stars balance allows; exactly the allowed number pass, whichever replica they reach, and the
refused ones leave no job row and no ledger row behind."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from bot.providers.base import GeneratedImage, ImageResult
from bot.services.errors import NotEnoughStarsError
from bot.services.generation import GenerationService
from bot.services.payments import Wallet
from bot.services.quotas import QuotaExceededError, QuotaService, day_start
from bot.services.types import Who
from bot.storage import db
from bot.storage.blobs import LocalBlobStore
from bot.storage.database import Database
from bot.storage.models import JobStatus, SubjectKind
from tests.integration.asking import ask

# SQLite is one process's database: there is no second replica to race with.
pytestmark = pytest.mark.postgresql_only

ANN, BEN, CAT = 7_000_000_001, 7_000_000_002, 7_000_000_003  # user ids past 2**32
GROUP = -1001234567890  # a supergroup


def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 16), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


class Provider:
    """Answers every request with one image, after a pause in which its job is running."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: Any, progress: Any = None) -> ImageResult:
        self.calls += 1
        await asyncio.sleep(0.05)
        return ImageResult(
            [GeneratedImage(_png(), "image/png")], endpoint="ep", model=request.model
        )


@dataclass
class Replica:
    database: Database
    provider: Provider
    generation: GenerationService
    quotas: QuotaService


@pytest.fixture
async def replicas(db_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., list[Replica]]]:
    engines = []

    def start(
        count: int = 2, *, per_user: int = 0, per_chat: int = 0, stars: bool = False
    ) -> list[Replica]:
        made = []
        for _ in range(count):
            engine = db.create_engine(db_url)
            engines.append(engine)
            database = Database(db.create_sessionmaker(engine))
            provider = Provider()
            quotas = QuotaService(database, per_user=per_user, per_chat=per_chat)
            wallet = (
                Wallet(database, packs=(10,), free_per_day=0, price=lambda m, s: 4)
                if stars
                else None
            )
            generation = GenerationService(
                database,
                LocalBlobStore(tmp_path / "images"),  # one store, as a shared volume or bucket
                provider,  # type: ignore[arg-type]
                model="gemini-2.5-flash-image",
                dialect="openai-chat",
                quotas=quotas,
                wallet=wallet,
            )
            made.append(Replica(database, provider, generation, quotas))
        return made

    yield start
    for engine in engines:
        await engine.dispose()


async def _race(replicas: list[Replica], askers: list[Who]) -> list[Any]:
    """Every asker's request at once, dealt round-robin over the replicas."""
    return await asyncio.gather(
        *(
            ask(replicas[i % len(replicas)].generation, w, f"a kite {i}", [], message_id=i + 1)
            for i, w in enumerate(askers)
        ),
        return_exceptions=True,
    )


async def test_a_daily_quota_holds_across_two_replicas(
    replicas: Callable[..., list[Replica]],
) -> None:
    two = replicas(per_user=3, per_chat=4)
    ann = Who(ANN, "Ann", None, "en", ANN, "private")
    # Ann alone: 10 requests for a limit of 3
    results = await _race(two, [ann] * 10)
    passed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceededError)]
    assert len(passed) == 3 and len(refused) == 7, results
    assert sum(r.provider.calls for r in two) == 3  # no refused request went upstream
    async with two[0].database.read() as repo:
        assert await repo.images_used(SubjectKind.USER, ANN, day_start()) == 3
        jobs = [await repo.job(p.job_id) for p in passed]
    assert all(j is not None and j.status == JobStatus.SUCCEEDED for j in jobs)

    # In a group, Ben's and Cat's images count against each of them (3) and the group (4)
    ben = Who(BEN, "Ben", None, "en", GROUP, "supergroup", "G")
    cat = Who(CAT, "Cat", None, "zh", GROUP, "supergroup", "G")
    results = await _race(two, [ben, cat] * 6)
    passed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceededError)]
    assert len(passed) == 4 and len(refused) == 8, results
    async with two[1].database.read() as repo:
        assert await repo.images_used(SubjectKind.CHAT, GROUP, day_start()) == 4
        ben_n = await repo.images_used(SubjectKind.USER, BEN, day_start())
        cat_n = await repo.images_used(SubjectKind.USER, CAT, day_start())
        assert await repo.images_used(SubjectKind.USER, ANN, day_start()) == 3
    assert ben_n + cat_n == 4 and max(ben_n, cat_n) <= 3


async def test_the_stars_balance_holds_across_two_replicas(
    replicas: Callable[..., list[Replica]],
) -> None:
    two = replicas(stars=True)
    wallets = [r.generation.wallet for r in two]
    assert wallets[0] is not None and wallets[1] is not None
    # Ann buys 10 Stars at one replica; Telegram redelivers the payment to the other
    assert await wallets[0].credit(ANN, "charge-ann", 10)
    assert not await wallets[1].credit(ANN, "charge-ann", 10)
    assert await wallets[1].credit(BEN, "charge-ben", 8)
    ann = Who(ANN, "Ann", None, "en", ANN, "private")
    ben = Who(BEN, "Ben", None, "zh", BEN, "private")
    results = await _race(two, [ann, ann, ben, ben] * 5)  # 4 Stars an image
    by = {ANN: results[0::4] + results[1::4], BEN: results[2::4] + results[3::4]}
    for i, outcome in enumerate(results):  # each sent, at the replica that made it
        if not isinstance(outcome, BaseException):
            await two[i % 2].generation.mark_delivered(outcome.job_id)
    for user, passes, balance in ((ANN, 2, 2), (BEN, 2, 0)):
        passed = [r for r in by[user] if not isinstance(r, BaseException)]
        refused = [r for r in by[user] if isinstance(r, NotEnoughStarsError)]
        assert len(passed) == passes and len(refused) == 10 - passes, by[user]
        async with two[0].database.read() as repo:
            assert await repo.balance(user) == balance
            for outcome in passed:  # each passed job was reserved, charged and released once
                kinds = sorted(e.kind for e in await repo.entries_of_job(outcome.job_id))
                assert kinds == ["charge", "release", "reserve"]
    async with two[1].database.read() as repo:
        assert await repo.running_jobs() == []  # a refused job left no row behind
        assert len(await repo.recent_entries(ANN, ("reserve",), 10)) == 2
