"""End-to-end harness: the real Application, wired as `python -m bot` wires it, against fakes.

Telegram and the image API are fake servers on 127.0.0.1; the database is a real SQLite file
or a real PostgreSQL database (each test runs on both, see tests/conftest.py), migrated by
Alembic; the bot runs through `bot.app.serve`, the function `python -m bot` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application, serve
from bot.config import Settings, load_settings
from bot.storage import db
from bot.telegram.progress import ProgressTimings
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

# Fast progress so tests see the status message and chat actions within a second.
FAST_PROGRESS = ProgressTimings(
    status_delay=0.3, action_delay=0.0, action_interval=0.4, edit_interval=0.4
)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeImageAPI]:
    api = FakeImageAPI(api_key="sk-test")
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def settings_factory(
    tmp_path: Path,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    monkeypatch: pytest.MonkeyPatch,
    db_backend: str,
    request: pytest.FixtureRequest,
) -> Callable[..., Settings]:
    """Settings as `python -m bot` reads them: from environment variables (strings). An
    override of None leaves that variable unset (the setting's own default applies). On
    SQLite the database is the default file under DATA_DIR; on PostgreSQL a fresh database."""
    database_url = request.getfixturevalue("db_url") if db_backend == "postgresql" else None

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            # The model these tests were written against (its limits: 3 images, no sizes);
            # tests/e2e/test_models_2026.py runs the real default and the other models.
            "image_model": "gemini-2.5-flash-image",
            "telegram_bot_token": tg.token,
            "telegram_api_url": tg.root,
            "image_api_dialect": "openai-chat",
            "image_api_base_url": f"{upstream.root}/v1",
            "image_api_key": "sk-test",
            "data_dir": tmp_path / "data",
            "admin_user_ids": "9999",
            "image_retry_base_delay": 0.05,
            # The progress tests count today's status messages; tests/e2e/test_drafts.py
            # runs the live drafts private chats get by default.
            "live_drafts": "false",
            "database_url": database_url,
        }
        values.update(overrides)
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name.upper(), raising=False)
            else:
                monkeypatch.setenv(name.upper(), str(value))
        return load_settings(_env_file=None)

    return make


@pytest.fixture
def process_db(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> ProcessDb:
    """Where a spawned `python -m bot` keeps its rows: the default SQLite file under DATA_DIR,
    or a fresh PostgreSQL database; and the environment that says so."""
    if db_backend == "postgresql":
        url: str = request.getfixturevalue("db_url")
        return ProcessDb(url, {"DATABASE_URL": url})
    return ProcessDb(tmp_path / "data" / "bot.db", {})


@dataclass(frozen=True)
class ProcessDb:
    where: Path | str  # the SQLite file, or the PostgreSQL URL
    env: dict[str, str]


class RunningBot:
    """A started bot; `restart()` stops it and starts a new process-equivalent on the same data."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop: asyncio.Event | None = None
        self.app: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await db.aupgrade(self.settings.database_url)
        self._stop = asyncio.Event()
        app = build_application(self.settings, progress=FAST_PROGRESS)
        self.app = app  # tests may look at what the running bot keeps in memory
        self._task = asyncio.create_task(serve(app, self._stop))
        await asyncio.sleep(0.2)  # post_init runs (setMyCommands) before polling starts
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 15)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def start_bot(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[RunningBot]]]:
    bots: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        running = RunningBot(settings_factory(**overrides))
        await running.start()
        bots.append(running)
        return running

    yield start
    for running in bots:
        await running.stop()


@pytest.fixture
async def bot(start_bot: Callable[..., Awaitable[RunningBot]]) -> RunningBot:
    return await start_bot()
