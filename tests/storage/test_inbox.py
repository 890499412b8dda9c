"""The webhook inbox on a real, migrated database (SQLite and PostgreSQL): a recorded update
is there for good, a redelivery is refused, each update is started once, and the ones never
started come back in update_id order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.services.inbox import Inbox
from bot.storage import db
from bot.storage.database import Database


@pytest.fixture
async def inbox(db_url: str, db_backend: str) -> AsyncIterator[Inbox]:
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    yield Inbox(Database(db.create_sessionmaker(engine)))
    await engine.dispose()


def _payload(update_id: int, text: str = "hi") -> str:
    return json.dumps({"update_id": update_id, "message": {"text": text}})


async def test_record_dedupes_on_update_id(inbox: Inbox) -> None:
    assert await inbox.record(5, _payload(5)) is True
    assert await inbox.record(5, _payload(5, "again")) is False
    [pending] = await inbox.pending()
    assert (pending.update_id, json.loads(pending.payload)["message"]["text"]) == (5, "hi")


async def test_pending_is_recorded_but_never_started_in_update_id_order(inbox: Inbox) -> None:
    for update_id in (30, 10, 20, 2**40):  # ids past 2**32 fit
        assert await inbox.record(update_id, _payload(update_id))
    assert await inbox.start(20) is True
    assert await inbox.start(20) is False  # started once only
    assert await inbox.start(99) is False  # never recorded
    assert [u.update_id for u in await inbox.pending()] == [10, 30, 2**40]


async def test_concurrent_records_of_one_update_let_one_through(inbox: Inbox) -> None:
    results = await asyncio.gather(*(inbox.record(7, _payload(7)) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    starts = await asyncio.gather(*(inbox.start(7) for _ in range(8)))
    assert sorted(starts) == [False] * 7 + [True]
    assert await inbox.pending() == []
