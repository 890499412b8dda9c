"""Migrations on a real SQLite file: the whole stairway up, down and up again, and no drift."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from bot.storage import db
from bot.storage.models import Base


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("select name from sqlite_master where type='table'").fetchall()
    return {r[0] for r in rows} - {"alembic_version", "sqlite_sequence"}


def test_stairway_every_revision_up_down_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    script = ScriptDirectory.from_config(db.alembic_config(url))
    revisions = list(reversed(list(script.walk_revisions())))
    assert revisions, "no migrations found"
    for rev in revisions:
        db.upgrade(url, rev.revision)
        db.downgrade(url, rev.down_revision or "base")
        db.upgrade(url, rev.revision)
    assert _tables(tmp_path / "bot.db") == set(Base.metadata.tables)
    db.downgrade(url, "base")
    assert _tables(tmp_path / "bot.db") == set()


def test_models_match_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    db.upgrade(url)
    engine = create_engine(f"sqlite:///{tmp_path}/bot.db")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


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
