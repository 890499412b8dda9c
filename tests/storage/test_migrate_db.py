"""`python -m bot migrate-db --to URL`: a SQLite database filled by the bot's own services
(two users in two private chats and a supergroup, photos and results, Stars bought and spent,
styles, preferences, a quota rule) moved into an empty PostgreSQL database. Every row is
equal afterwards, the services work on the moved database (history, balance, a new job with
a new id), a target that holds rows is refused, and a copy that fails halfway keeps nothing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from bot.providers.base import GeneratedImage, ImageResult
from bot.services.generation import GenerationService
from bot.services.images import ImageLibrary
from bot.services.inbox import Inbox
from bot.services.payments import Wallet
from bot.services.prefs import PrefsService
from bot.services.quotas import QuotaService
from bot.services.replicas import Replicas
from bot.services.styles import StyleService
from bot.services.types import Who
from bot.storage import db
from bot.storage.blobs import LocalBlobStore
from bot.storage.database import Database
from bot.storage.models import Base, SubjectKind
from bot.storage.transfer import TransferError, copy_database
from tests import postgres
from tests.integration.asking import ask

ANN, BEN = 7_000_000_001, 42  # one user id past 2**32, as Telegram hands out now
GROUP = -1001234567890
TOPIC = 2_147_483_650  # a message (and topic) id past 2**31


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (24, 16), color).save(buf, "PNG")
    return buf.getvalue()


def _mean(data: bytes) -> tuple[int, ...]:
    with PILImage.open(io.BytesIO(data)) as im:
        return tuple(im.convert("RGB").resize((1, 1)).getpixel((0, 0)))  # type: ignore[arg-type]


class Provider:
    """Answers with a new picture per call."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: Any, progress: Any = None) -> ImageResult:
        self.calls += 1
        image = GeneratedImage(_png((self.calls * 40 % 256, 90, 30)), "image/png")
        return ImageResult([image], endpoint="ep", model=request.model)


class Bot:
    """The bot's services on one database, as the app wires them (paid mode on)."""

    def __init__(self, url: str, blobs: Path) -> None:
        self.engine = db.create_engine(url)
        self.database = Database(db.create_sessionmaker(engine=self.engine))
        store = LocalBlobStore(blobs)
        self.wallet = Wallet(self.database, packs=(50,), free_per_day=1, price=lambda m, s: 5)
        self.images = ImageLibrary(self.database, store, wallet=self.wallet)
        self.quotas = QuotaService(self.database, per_user=20, per_chat=0)
        self.generation = GenerationService(
            self.database,
            store,
            Provider(),  # type: ignore[arg-type]
            model="gemini-2.5-flash-image",
            dialect="openai-chat",
            quotas=self.quotas,
            images=self.images,
            wallet=self.wallet,
            pricing=lambda endpoint, model, size: 0.039,
        )
        self.styles = StyleService(self.database)
        self.prefs = PrefsService(self.database)

    async def close(self) -> None:
        await self.engine.dispose()


ANN_HOME = Who(ANN, "Ann", "ann", "en", ANN, "private")
BEN_HOME = Who(BEN, "Бен", None, "zh-hans", BEN, "private")
ANN_GROUP = Who(ANN, "Ann", "ann", "en", GROUP, "supergroup", "Painters", thread_id=TOPIC)
BEN_GROUP = Who(BEN, "Бен", None, "zh-hans", GROUP, "supergroup", "Painters", thread_id=TOPIC)


async def _fill(url: str, blobs: Path) -> dict[str, int]:
    """Use the bot on the SQLite file; the ids that were handed out."""
    await db.aupgrade(url)
    bot = Bot(url, blobs)
    try:
        await bot.wallet.credit(ANN, "charge-ann-1", 50, chat_id=ANN)
        await bot.wallet.credit(BEN, "charge-ben-1", 50, chat_id=BEN)
        await bot.wallet.set_sponsor(GROUP, ANN, daily_limit=30)
        message = 100
        for who, prompt in (
            (ANN_HOME, "a lighthouse"),
            (ANN_HOME, "now at night"),
            (BEN_HOME, "一只猫"),
            (ANN_GROUP, "a paper boat"),
            (BEN_GROUP, "a red kite"),
        ):
            message += 1
            outcome = await ask(bot.generation, who, prompt, [], message_id=message)
            for image in outcome.images:
                message += 1
                await bot.images.record_delivery(
                    who.chat_id, message, image.id, f"file-{image.id}", job_id=outcome.job_id
                )
        photo = await bot.images.take_user_image(
            BEN_HOME,
            _png((10, 200, 10)),
            file_id="photo-ben",
            file_unique_id="uniq-ben",
            message_id=TOPIC + 7,
            make_current=True,
        )
        edit = await ask(bot.generation, BEN_HOME, "make it blue", [photo], message_id=TOPIC + 8)
        await bot.images.record_delivery(
            BEN, TOPIC + 9, edit.images[0].id, "file-edit", job_id=edit.job_id
        )
        await bot.styles.add(ANN_GROUP, "noir a film-noir still of {prompt}")
        await bot.styles.wait_for_text(BEN_GROUP, "watercolour of {prompt}")
        await bot.prefs.update(ANN, "private", None, aspect_ratio="16:9", refine=False)
        await bot.quotas.set_limit(SubjectKind.USER, BEN, 7, by=ANN)
        inbox = Inbox(bot.database)  # webhook mode: one update handed over, one never started
        for update_id in (800_000_001, 800_000_002):
            await inbox.record(update_id, json.dumps({"update_id": update_id, "message": {}}))
        await inbox.start(800_000_001)
        replica = Replicas(bot.database, 15.0, exclusive=True)  # a process that died holding
        await replica.join()  # a chat: its rows move too (the next start sees it dead)
        await replica.take_chat(ANN)
        async with bot.database.read() as repo:
            return {
                "job": (await repo.job(edit.job_id)).id,  # type: ignore[union-attr]
                "balance_ann": await repo.balance(ANN),
            }
    finally:
        await bot.close()


async def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order, as the models read them."""
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                t.name: [
                    dict(r._mapping)
                    for r in await conn.execute(select(t).order_by(*t.primary_key.columns))
                ]
                for t in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


def _migrate_db(tmp_path: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMAGE_", "DATA"))}
    env.update(
        TELEGRAM_BOT_TOKEN="123456:migrate-db-test",
        IMAGE_API_BASE_URL="http://127.0.0.1:9/v1",
        IMAGE_API_KEY="sk-test",
        DATA_DIR=str(tmp_path / "data"),  # DATABASE_URL unset: the SQLite file under DATA_DIR
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate-db", "--to", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def empty_postgres() -> Any:
    postgres.require()
    name = postgres.create()
    yield postgres.url_of(name)
    postgres.drop(name)


def test_a_used_sqlite_database_moves_to_postgresql_whole(
    tmp_path: Path, empty_postgres: str
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"
    blobs = tmp_path / "data" / "images"
    ids = asyncio.run(_fill(source, blobs))
    before = asyncio.run(_rows(source))
    assert {name for name, rows in before.items() if not rows} == set()  # every table used

    done = _migrate_db(tmp_path, empty_postgres)
    assert done.returncode == 0, done.stderr
    for table, rows in before.items():
        assert f"{table}: {len(rows)} rows" in done.stdout
    total = sum(len(rows) for rows in before.values())
    assert f"copied {total} rows in {len(before)} tables" in done.stdout

    after = asyncio.run(_rows(empty_postgres))
    for table in before:
        assert after[table] == before[table], table

    async def use_it() -> None:
        bot = Bot(empty_postgres, blobs)  # the same image files, untouched
        try:
            page = await bot.images.history(BEN, 0)
            assert [r.prompt for r in page.entries] == ["make it blue", None, "一只猫"]
            photo = page.entries[1].image  # Ben's own photo: its file found by its row
            assert _mean(await bot.images.data(photo)) == (10, 200, 10)
            assert (await bot.wallet.balance(ANN)).stars == ids["balance_ann"]
            assert [s.name for s in await bot.styles.own(GROUP)] == ["noir"]
            assert (await bot.prefs.get(ANN)).aspect_ratio == "16:9"
            assert await bot.quotas.limit(SubjectKind.USER, BEN) == 7
            shown = await bot.images.for_message(BEN, TOPIC + 9)
            assert shown is not None and shown.tg_file_id == "file-edit"
            # a new job, image and ledger row get ids past the copied ones
            new = await ask(bot.generation, ANN_HOME, "a third one", [], message_id=900)
            assert new.job_id == ids["job"] + 1
            assert new.images[0].id > max(r["id"] for r in before["images"])
        finally:
            await bot.close()

    asyncio.run(use_it())


def test_a_target_with_rows_is_refused_and_left_alone(tmp_path: Path, empty_postgres: str) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"
    asyncio.run(_fill(source, tmp_path / "data" / "images"))
    assert _migrate_db(tmp_path, empty_postgres).returncode == 0
    held = asyncio.run(_rows(empty_postgres))

    again = _migrate_db(tmp_path, empty_postgres)
    assert again.returncode == 1
    assert "the target already holds rows: " in again.stderr and "jobs (6)" in again.stderr
    assert asyncio.run(_rows(empty_postgres)) == held

    missing = _migrate_db(tmp_path, "")
    assert missing.returncode == 2 and "needs --to URL" in missing.stderr


def test_a_copy_that_fails_halfway_leaves_the_target_empty(
    tmp_path: Path, empty_postgres: str
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"
    asyncio.run(_fill(source, tmp_path / "data" / "images"))
    seen: list[str] = []

    def progress(line: str) -> None:
        seen.append(line)
        if line.startswith("images:"):  # jobs, chats and users are in by now
            raise OSError("the disk went away")

    with pytest.raises(TransferError, match="the disk went away"):
        asyncio.run(copy_database(source, empty_postgres, batch=2, progress=progress))
    assert any(line.startswith("jobs:") for line in seen)

    async def counts() -> dict[str, int]:
        engine = db.create_engine(empty_postgres)
        async with engine.connect() as conn:
            found = {
                t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in Base.metadata.sorted_tables
            }
        await engine.dispose()
        return found

    assert set(asyncio.run(counts()).values()) == {0}
    # and a second try, with nothing in the way, copies it all
    copied = asyncio.run(copy_database(source, empty_postgres, progress=lambda line: None))
    assert {c.table for c in copied} == set(Base.metadata.tables)
