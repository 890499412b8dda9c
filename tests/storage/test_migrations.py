"""Migrations on a real SQLite file: pytest-alembic's stairway (one head, base to head, every
revision up, down and up again, all the way up and down) and no drift from the models;
plus what our own code adds (migrating from a running loop, ids that are never reused)."""

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
from sqlalchemy import create_engine

from bot.storage import db
from bot.storage.models import Base

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_runner(tmp_path: Path) -> Iterator[pytest_alembic.MigrationContext]:
    """pytest-alembic's runner on a real SQLite file, with the app's Alembic config (its
    automatic test collection is off in pyproject.toml: it does not run under pytest 9)."""
    url = f"sqlite:///{tmp_path}/bot.db"
    engine = create_engine(url)
    config = pytest_alembic.Config(alembic_config=db.alembic_config(url))
    with pytest_alembic.runner(config=config, engine=engine) as runner:
        yield runner
    engine.dispose()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("select name from sqlite_master where type='table'").fetchall()
    return {r[0] for r in rows} - {"alembic_version", "sqlite_sequence"}


def test_every_revision_up_down_up(alembic_runner: pytest_alembic.MigrationContext) -> None:
    revisions = 0
    while alembic_runner.roundtrip_next_revision() is not None:
        revisions += 1
    assert revisions >= 4


def test_head_has_every_table_and_base_none(
    alembic_runner: pytest_alembic.MigrationContext, tmp_path: Path
) -> None:
    alembic_runner.migrate_up_to("heads")
    assert _tables(tmp_path / "bot.db") == set(Base.metadata.tables)
    alembic_runner.migrate_down_to("base")
    assert _tables(tmp_path / "bot.db") == set()


def test_the_apps_own_upgrade_reaches_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    db.upgrade(url)
    db.downgrade(url, "base")
    db.upgrade(url)
    assert _tables(tmp_path / "bot.db") == set(Base.metadata.tables)


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
