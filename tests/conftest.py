"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test reads the developer's .env or environment settings by accident.
for _name in list(os.environ):
    if _name.startswith(("TELEGRAM_", "IMAGE_", "ALLOWED_", "ADMIN_")) or _name in {
        "DATA_DIR",
        "DATABASE_URL",
    }:
        del os.environ[_name]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"
