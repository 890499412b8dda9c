"""Engine, sessions and migrations."""

from __future__ import annotations

import asyncio
import logging
import os
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
from bot.storage.blobs import fsync_dir

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
    # NORMAL: commits don't fsync (FULL made the 500-chat storage benchmark ~3x slower: each
    # commit's fsync held the event loop); the commits that matter are synced by to_disk().
    cursor.execute("PRAGMA synchronous=NORMAL")
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
    synchronous=NORMAL keeps commits free of fsync; only an occasional checkpoint syncs, and
    `to_disk()` syncs the WAL, off the loop, where a commit must survive a power loss.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], chunk: int) -> None:
        super().__init__(connector, chunk)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    if engine.dialect.driver == "aiosqlite":
        sessions = _InlineSessions(engine, expire_on_commit=False)
        database = engine.url.database
        if database and database != ":memory:":
            sessions.syncer = _WalSyncer(Path(database))
        return sessions
    return async_sessionmaker(engine, expire_on_commit=False)


async def to_disk(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every commit made so far is on disk when this returns (a power loss keeps it).

    SQLite: an fsync of the WAL, in a thread, shared by the callers that wait at the same time.
    Other databases make each commit durable themselves. A failed fsync is logged, not raised:
    the commit stands, and the user had better get a result the disk may lose than none."""
    syncer: _WalSyncer | None = getattr(sessions, "syncer", None)
    if syncer is not None:
        try:
            await syncer.sync()
        except OSError as exc:
            log.warning("could not sync the database to disk: %s", exc)


class _WalSyncer:
    """Group fsync: callers that arrive while one runs share the next one, and all of them
    wake together (one waiter's wake-up does not wait for another's).

    A commit sits in the WAL until a checkpoint copies it into the database file (syncing
    that file before the WAL is reused); so syncing the WAL, or the database file once the
    WAL is gone, puts every earlier commit on disk."""

    def __init__(self, database: Path) -> None:
        self._files = (database.with_name(database.name + "-wal"), database)
        self._next: asyncio.Future[None] | None = None  # the sync not yet started
        self._runner: asyncio.Task[None] | None = None
        self._synced_inode: int | None = None

    async def sync(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        await asyncio.shield(waiting)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                # Whoever asks from here on committed after this fsync may have begun: next one.
                waiting, self._next = self._next, None
                try:
                    await asyncio.to_thread(self._fsync)
                except Exception as exc:
                    waiting.set_exception(exc)
                else:
                    waiting.set_result(None)
        finally:
            self._runner = None

    def _fsync(self) -> None:
        for path in self._files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # no WAL (the last connection checkpointed it away): the file itself
            try:
                os.fsync(fd)
                inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            if inode != self._synced_inode:  # a new file: its directory entry must last too
                fsync_dir(path.parent)
                self._synced_inode = inode
            return


class _InlineSessions(async_sessionmaker[AsyncSession]):
    """`begin()` commits in the same burst as its last statement.

    SQLAlchemy's own `begin()` block commits from a new task (shielded from cancellation),
    i.e. one turn of the loop later. With SQLite calls made inline, other tasks would then run
    while this transaction holds the write lock, and one of them would wait for that lock in
    SQLite's busy handler -- on the loop's thread, which the commit needs: a stall of
    busy_timeout, then "database is locked". Committed here, a write transaction never yields.
    """

    syncer: _WalSyncer | None = None  # None: an in-memory database

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
