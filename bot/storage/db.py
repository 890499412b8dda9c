"""Engine, sessions and migrations.

SQLite files are read and written inline, on the event loop's thread, through a plain
(synchronous) SQLAlchemy engine on the same file: a statement is well under a millisecond of
SQLite work, and handing each one to aiosqlite's thread and back cost more than running it and
let other tasks in mid-transaction. Write transactions take turns behind one asyncio lock, so
a writer never meets another inside SQLite (whose busy handler would block the loop). The
async engine stays for everything else: migrations, PostgreSQL, and the tests' own checks.

PostgreSQL (postgresql+asyncpg://) goes through the async engine alone, with a small pool per
process: writers run at once, and what must not race across processes (quotas, Stars) takes
a transaction-scoped advisory lock (bot/storage/locks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
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
    # NORMAL: commits don't fsync; the commits that must survive a power loss are synced by
    # to_disk(), several at once.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


#: Connections each process keeps to a server database (PostgreSQL): several replicas share
#: the server's max_connections (100 by default), so each holds few and borrows a few more.
SERVER_POOL = {
    "pool_size": 5,
    "max_overflow": 10,
    "pool_timeout": 30,
    # a connection the server or a proxy closed while idle is found out before it is used
    "pool_pre_ping": True,
    "pool_recycle": 1800,
}


def create_engine(database_url: str, *, connections: int | None = None) -> AsyncEngine:
    """The engine of DATABASE_URL; on a server, `connections` caps its pool (default:
    SERVER_POOL's)."""
    _ensure_sqlite_dir(database_url)
    if make_url(database_url).get_backend_name() == "sqlite":
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    pool = (
        SERVER_POOL
        if connections is None
        else {**SERVER_POOL, "pool_size": connections, "max_overflow": 0}
    )
    return create_async_engine(database_url, **pool)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    if engine.dialect.name == "sqlite":
        sessions = _SerialWrites(engine, expire_on_commit=False)
        database = engine.url.database
        if database and database != ":memory:":
            sessions.syncer = _WalSyncer(Path(database))
            sessions.inline = _inline_engine(engine)
        return sessions
    return async_sessionmaker(engine, expire_on_commit=False)


def _inline_engine(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the async one's SQLite file, disposed with it. Its pool never
    makes a caller wait (that would block the loop): a connection is opened past the pool's
    size when every pooled one is in use."""
    inline = sqlalchemy.create_engine(
        engine.url.set(drivername="sqlite"), pool_size=8, max_overflow=-1
    )
    event.listen(inline, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "engine_disposed", lambda _: inline.dispose())
    return inline


def inline_engine(sessions: async_sessionmaker[AsyncSession]) -> Engine | None:
    """The synchronous engine to run these sessions' SQLite file inline with, if any."""
    inline: Engine | None = getattr(sessions, "inline", None)
    return inline


def is_shared(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether these sessions' database may have other processes writing (not SQLite)."""
    return not isinstance(sessions, _SerialWrites)


def write_turn(
    sessions: async_sessionmaker[AsyncSession],
) -> contextlib.AbstractAsyncContextManager[None]:
    """This process's turn to write (SQLite); other databases let writers in at once."""
    if isinstance(sessions, _SerialWrites):
        return sessions.turn()
    return contextlib.nullcontext()


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


class _SerialWrites(async_sessionmaker[AsyncSession]):
    """`begin()` blocks, the write transactions, take turns in this process, first come first
    served.

    SQLite lets one writer in at a time. Writers that meet inside SQLite wait in its busy
    handler, which polls with growing sleeps: at a few hundred jobs at once they convoyed, and
    some gave up after busy_timeout ("database is locked"). Queued here, a write transaction
    never meets another one, and readers never wait for writers (WAL).
    """

    syncer: _WalSyncer | None = None  # None: an in-memory database
    inline: Engine | None = None  # None: an in-memory database

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None

    def begin(self) -> Any:  # an async context manager giving the session, like the original
        return self._serial_begin()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for the writers before this one; the caller writes until the block ends."""
        me = asyncio.current_task()
        if me is not None and me is self._writer:
            raise RuntimeError("a write transaction inside another one would wait for itself")
        async with self._turn:
            self._writer = me
            try:
                yield
            finally:
                self._writer = None

    @contextlib.asynccontextmanager
    async def _serial_begin(self) -> AsyncIterator[AsyncSession]:
        async with self.turn(), super().begin() as session:
            yield session
