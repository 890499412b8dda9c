"""Engine, sessions and migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

import migrations

log = logging.getLogger(__name__)


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def _ensure_sqlite_dir(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run migrations (blocking; uses its own event loop)."""
    _ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def aupgrade(database_url: str, revision: str = "head") -> None:
    """Run migrations from inside a running loop (Alembic's env starts a loop of its own)."""
    await asyncio.to_thread(upgrade, database_url, revision)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (the WAL fsynced) before it returns, so a result that was
    # sent after its commit is never forgotten by a power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    _ensure_sqlite_dir(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.get_driver_name() == "aiosqlite":
        engine = create_async_engine(url, async_creator=_inline_sqlite(url.database or ""))
    else:
        engine = create_async_engine(database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _inline_sqlite(database: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    async def connect() -> aiosqlite.Connection:
        return await _InlineConnection(lambda: sqlite3.connect(database), 64)

    return connect


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's API, every SQLite call made right away on the event loop's thread.

    aiosqlite sends each call (cursor, execute, fetch, close: ~4 per statement) to a worker
    thread and back, ~0.1 ms each, and each hand-off lets other tasks run in the middle of a
    transaction. At a few hundred jobs at once, write transactions then held SQLite's lock
    across many turns of a busy loop: the others waited in SQLite's busy handler and failed
    after busy_timeout ("database is locked", 9 of 100 jobs) or convoyed (jobs waited 15+ s
    before reaching the upstream). Run inline, a transaction is one uninterrupted burst of
    well under a millisecond of SQLite work per statement: no other transaction of this
    process can start in its middle, and there are no hand-offs to pay for. WAL with
    synchronous=FULL syncs the WAL once per commit (durable across a power loss).
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], chunk: int) -> None:
        super().__init__(connector, chunk)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    if engine.dialect.driver == "aiosqlite":
        return _InlineSessions(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False)


class _InlineSessions(async_sessionmaker[AsyncSession]):
    """`begin()` commits in the same burst as its last statement.

    SQLAlchemy's own `begin()` block commits from a new task (shielded from cancellation),
    i.e. one turn of the loop later. With SQLite calls made inline, other tasks would then run
    while this transaction holds the write lock, and one of them would wait for that lock in
    SQLite's busy handler -- on the loop's thread, which the commit needs: a stall of
    busy_timeout, then "database is locked". Committed here, a write transaction never yields.
    """

    def begin(self) -> Any:  # an async context manager giving the session, like the original
        return _Transaction(self())


class _Transaction:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __aenter__(self) -> AsyncSession:
        await self.session.begin()
        return self.session

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                await self.session.commit()
            else:
                await self.session.rollback()
        finally:
            await self.session.close()
