"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from bot import redaction
from bot.providers.factory import make_http_client
from tests import postgres

if TYPE_CHECKING:
    from tests.fakes.s3_server import S3Bucket, S3Server

# No test reads the developer's .env or environment settings by accident.
for _name in list(os.environ):
    # AWS_ too: the S3 store would take keys or an endpoint from there.
    prefixes = ("TELEGRAM_", "IMAGE_", "ALLOWED_", "ADMIN_", "S3_", "AWS_")
    if _name.startswith(prefixes) or _name in {
        "DATA_DIR",
        "DATABASE_URL",
        "BLOB_STORE_URL",
        "HTTP_LISTEN",
        "LOG_FORMAT",
    }:
        del os.environ[_name]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The app's upstream client for provider tests; environment proxies ignored (every server
    is local)."""
    async with make_http_client(trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-speaking server on 127.0.0.1 for the session; each test takes a bucket of its own."""
    from tests.fakes.s3_server import S3Server  # moto loads slowly: only where it is used

    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    return s3_server.new_bucket(prefix="images")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file (not yet migrated), for tests of what only SQLite does."""
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database at the migrations' head, to copy for each test."""
    name = postgres.make_template()
    yield name
    postgres.drop(name)


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: run on SQLite alone, not on PostgreSQL as well"
    )
    config.addinivalue_line(
        "markers", "postgresql_only: run on PostgreSQL alone (several processes on one database)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a database (the `db_backend` fixture, under `db_url`) runs on
    SQLite and on PostgreSQL, unless marked sqlite_only or postgresql_only."""
    if "db_backend" in metafunc.fixturenames:
        backends = [
            b for b in BACKENDS if not metafunc.definition.get_closest_marker(f"{_other(b)}_only")
        ]
        metafunc.parametrize("db_backend", backends)


def _other(backend: str) -> str:
    return BACKENDS[1 - BACKENDS.index(backend)]


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def db_url(request: pytest.FixtureRequest, db_backend: str, tmp_path: Path) -> Iterator[str]:
    """The database of one test: a SQLite file (not yet migrated), or a fresh PostgreSQL
    database already at head (a copy of the session's template), dropped afterwards."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/bot.db"
        return
    postgres.require()
    name = postgres.create(template=request.getfixturevalue("pg_template"))
    yield postgres.url_of(name)
    postgres.drop(name)


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test starts with no registered secrets: a key masked by one test's bot must not
    change another test's texts."""
    redaction.reset()
