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


async def test_a_started_update_keeps_its_id_not_its_words_and_old_ones_are_forgotten(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    import bot.services.inbox as inbox_module
    from bot.storage.models import utcnow

    for update_id in (1, 2, 3):
        assert await inbox.record(update_id, _payload(update_id, "my secret idea"))
    assert await inbox.start(1) and await inbox.start(2)
    # Two days and a bit later: the started ones go, the one never started stays.
    later = utcnow() + inbox_module.KEEP + timedelta(minutes=1)
    monkeypatch.setattr(inbox_module, "utcnow", lambda: later)
    assert await inbox.record(1, _payload(1)) is False  # still remembered before the pass
    assert await inbox.forget_old() == 2
    assert [u.update_id for u in await inbox.pending()] == [3]
    assert await inbox.record(2, _payload(2)) is True  # forgotten: a new record


async def test_the_payload_is_dropped_once_started(inbox: Inbox, db_url: str) -> None:
    from sqlalchemy import text

    assert await inbox.record(9, _payload(9, "my secret idea"))
    assert await inbox.start(9)
    engine = db.create_engine(db_url)
    async with engine.connect() as conn:
        payload = (await conn.execute(text("SELECT payload FROM webhook_updates"))).scalar_one()
    await engine.dispose()
    assert payload == ""
