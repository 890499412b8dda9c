"""Throwaway PostgreSQL databases for tests, on the server `TEST_DATABASE_URL` names.

That URL (`postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`, a superuser who may
CREATE and DROP DATABASE) comes from `.ci/postgres`. Unset, PostgreSQL tests are skipped,
unless `TEST_POSTGRES_REQUIRED=1` (CI), where a missing server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

T = TypeVar("T")

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")
REQUIRED = os.environ.get("TEST_POSTGRES_REQUIRED") == "1"
TEMPLATE = f"bot_test_template_{os.getpid()}"


def require() -> str:
    """The server's URL; skips the test (fails it under TEST_POSTGRES_REQUIRED=1) without one."""
    if not SERVER_URL:
        if REQUIRED:
            pytest.fail("TEST_POSTGRES_REQUIRED=1 but TEST_DATABASE_URL is not set")
        pytest.skip("no PostgreSQL: set TEST_DATABASE_URL (see .ci/postgres)")
    return SERVER_URL


def url_of(database: str) -> str:
    """The SQLAlchemy URL of one database on the test server."""
    return make_url(require()).set(database=database).render_as_string(hide_password=False)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, also while a loop runs on this thread."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as exc:  # handed to the caller's thread
            box.append((False, exc))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


async def _admin(sql: str) -> None:
    url = make_url(require())
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create(template: str | None = None) -> str:
    """A new empty database (or a copy of `template`); its name."""
    name = f"bot_test_{uuid.uuid4().hex[:16]}"
    suffix = f' TEMPLATE "{template}"' if template else ""
    run(_admin(f'CREATE DATABASE "{name}"{suffix}'))
    return name


def drop(name: str) -> None:
    """Drop it, closing whatever connections a test left open to it."""
    run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_template() -> str:
    """A database migrated to head, created once per session: copying it is much faster
    than running every migration for each test."""
    from bot.storage import db

    drop(TEMPLATE)
    run(_admin(f'CREATE DATABASE "{TEMPLATE}"'))
    db.upgrade(url_of(TEMPLATE))
    return TEMPLATE


def fetch(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on a test database (the PostgreSQL side of tests/e2e db_rows);
    SQLite's `?` placeholders become PostgreSQL's `$1`, `$2`, …"""
    parts = sql.split("?")
    sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))

    async def go() -> list[tuple[Any, ...]]:
        u = make_url(url)
        conn = await asyncpg.connect(
            host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
        )
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return run(go())
