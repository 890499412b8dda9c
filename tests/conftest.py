"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot import redaction

# No test reads the developer's .env or environment settings by accident.
for _name in list(os.environ):
    if _name.startswith(("TELEGRAM_", "IMAGE_", "ALLOWED_", "ADMIN_")) or _name in {
        "DATA_DIR",
        "DATABASE_URL",
    }:
        del os.environ[_name]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for provider tests; environment proxies ignored (every server is local)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test starts with no registered secrets: a key masked by one test's bot must not
    change another test's texts."""
    redaction.reset()
