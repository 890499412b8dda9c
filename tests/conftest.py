"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from bot import redaction

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
    """An httpx client for provider tests; environment proxies ignored (every server is local)."""
    async with httpx.AsyncClient(trust_env=False) as client:
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
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test starts with no registered secrets: a key masked by one test's bot must not
    change another test's texts."""
    redaction.reset()
