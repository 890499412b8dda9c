"""Upstream behaviour end to end: several images, failover between endpoints, `check`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def backup() -> AsyncIterator[FakeImageAPI]:
    api = FakeImageAPI(api_key="sk-backup", auth_style="raw")
    await api.start()
    yield api
    await api.stop()


def _providers_file(tmp_path: Path, first: FakeImageAPI, second: FakeImageAPI) -> Path:
    path = tmp_path / "providers.toml"
    path.write_text(f"""
[[endpoint]]
name = "primary"
dialect = "openai-chat"
base_url = "{first.root}/v1"
api_key_env = "PRIMARY_KEY"
price_per_image = 0.02

[[endpoint]]
name = "backup"
dialect = "openai-chat"
base_url = "{second.root}/v1"
api_key = "sk-backup"
auth = "raw"
price_per_image = 0.05
""")
    return path


async def test_several_images_in_one_answer_arrive_as_an_album(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    upstream.images_per_answer = 3
    tg.send_text(CHAT, "three kittens")
    [album] = await tg.wait_for("sendMediaGroup")
    assert len(album.result) == 3
    [buttons] = await tg.wait_for("sendMessage", lambda c: "reply_markup" in c.params)
    datas = [
        b["callback_data"] for row in buttons.params["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert sum(d.startswith("orig:") for d in datas) == 3
    assert db_rows(bot.settings, "select count(*) from images where source='bot'") == [(3,)]


async def test_failover_moves_the_job_to_the_second_endpoint(
    tmp_path: Path,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    backup: FakeImageAPI,
    start_bot: StartBot,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("PRIMARY_KEY", "sk-test")
    running = await start_bot(image_providers_file=str(_providers_file(tmp_path, upstream, backup)))
    upstream.fail_next("500", times=10)
    tg.send_text(CHAT, "a windmill")
    await tg.wait_for("sendPhoto", timeout=20)
    assert len(upstream.requests) == 3 and len(backup.requests) == 1
    assert backup.requests[0].headers["authorization"] == "sk-backup"
    rows = db_rows(running.settings, "select endpoint, cost, status from jobs")
    assert rows == [("backup", 0.05, "succeeded")]


async def test_a_bad_key_is_reported_to_admins_and_the_backup_serves(
    tmp_path: Path,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    backup: FakeImageAPI,
    start_bot: StartBot,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("PRIMARY_KEY", "sk-wrong")
    await start_bot(image_providers_file=str(_providers_file(tmp_path, upstream, backup)))
    tg.send_text(CHAT, "a mill")
    await tg.wait_for("sendPhoto", timeout=20)
    [note] = await tg.wait_for("sendMessage", lambda c: int(c.params["chat_id"]) == 9999)
    assert "primary" in note.params["text"] and "auth" in note.params["text"]
    assert "sk-wrong" not in note.params["text"]
    assert len(upstream.requests) == 1  # not retried


async def test_check_command_prints_a_table(
    tmp_path: Path, upstream: FakeImageAPI, backup: FakeImageAPI
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMAGE_"))}
    env.update(
        TELEGRAM_BOT_TOKEN="123:abc",
        PRIMARY_KEY="sk-wrong",
        DATA_DIR=str(tmp_path),
        IMAGE_PROVIDERS_FILE=str(_providers_file(tmp_path, upstream, backup)),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    table = out.decode()
    assert proc.returncode == 1, err.decode()
    lines = table.strip().splitlines()
    assert lines[0].split() == ["endpoint", "dialect", "model", "result", "seconds"]
    primary = next(line for line in lines if line.startswith("primary"))
    backup_line = next(line for line in lines if line.startswith("backup"))
    assert "auth" in primary and "ok (1024x1024 image/png)" in backup_line
    assert "sk-wrong" not in table + err.decode()
