"""Migrations on a real SQLite file and a real PostgreSQL database: pytest-alembic's stairway
(one head, base to head, every revision up, down and up again, all the way up and down) and
no drift from the models; plus what our own code adds (migrating from a running loop, ids
that are never reused)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_alembic
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import NullPool, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import db
from bot.storage.models import Base
from tests import postgres

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/bot.db"
        return
    postgres.require()
    name = postgres.create()
    yield postgres.url_of(name)
    postgres.drop(name)


@pytest.fixture
def alembic_runner(empty_url: str) -> Iterator[pytest_alembic.MigrationContext]:
    """pytest-alembic's runner on that database, with the app's Alembic config (its
    automatic test collection is off in pyproject.toml: it does not run under pytest 9)."""
    engine = create_async_engine(empty_url, poolclass=NullPool)
    config = pytest_alembic.Config(alembic_config=db.alembic_config(empty_url))
    with pytest_alembic.runner(config=config, engine=engine) as runner:
        yield runner
    postgres.run(engine.dispose())


def _tables(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await engine.dispose()
        return found

    return postgres.run(names()) - {"alembic_version", "sqlite_sequence"}


def test_every_revision_up_down_up(alembic_runner: pytest_alembic.MigrationContext) -> None:
    revisions = 0
    while alembic_runner.roundtrip_next_revision() is not None:
        revisions += 1
    assert revisions >= 4


def test_head_has_every_table_and_base_none(
    alembic_runner: pytest_alembic.MigrationContext, empty_url: str
) -> None:
    alembic_runner.migrate_up_to("heads")
    assert _tables(empty_url) == set(Base.metadata.tables)
    alembic_runner.migrate_down_to("base")
    assert _tables(empty_url) == set()


def test_the_apps_own_upgrade_reaches_head(empty_url: str) -> None:
    db.upgrade(empty_url)
    db.downgrade(empty_url, "base")
    db.upgrade(empty_url)
    assert _tables(empty_url) == set(Base.metadata.tables)


async def test_upgrade_from_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/nested/dir/bot.db"
    await db.aupgrade(url)
    assert (tmp_path / "nested/dir/bot.db").exists()


def test_ids_that_buttons_name_are_never_reused(tmp_path: Path) -> None:
    """A deleted top row must not hand its id to the next row: an old button would name it."""
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    db.upgrade(url)
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        conn.execute("insert into chats (id, type, created_at) values (5, 'private', 0)")
        conn.execute(
            "insert into users (id, first_name, created_at, last_seen_at) values (5, 'a', 0, 0)"
        )
        job = (
            "insert into jobs (chat_id, thread_id, user_id, kind, prompt, dialect, endpoint,"
            " model, status, attempts, created_at, n) values"
            " (5, 0, 5, 'generate', 'p', 'gemini', '', 'm', 'running', 0, 0, 1)"
        )
        image = (
            "insert into images (chat_id, source, sha256, size_bytes, mime, width, height,"
            " created_at) values (5, 'bot', 'x', 1, 'image/png', 1, 1, 0)"
        )
        seen = {}
        for table, insert in (("jobs", job), ("images", image)):
            first = conn.execute(insert).lastrowid
            conn.execute(f"delete from {table} where id = ?", (first,))
            seen[table] = (first, conn.execute(insert).lastrowid)
        shown = (
            "insert into image_messages (chat_id, message_id, image_id, created_at)"
            " values (5, ?, ?, 0)"
        )
        first = conn.execute(shown, (1, seen["images"][1])).lastrowid
        conn.execute("delete from image_messages where id = ?", (first,))
        seen["image_messages"] = (first, conn.execute(shown, (2, seen["images"][1])).lastrowid)
    for table, (first, second) in seen.items():
        assert second == first + 1, table
