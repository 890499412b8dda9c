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
