"""The runtime contract: `python -m bot` as a process, configured only by the environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.e2e.helpers import close, jpeg
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.ports import free_port
from tests.fakes.telegram_api import FakeTelegram

API_KEY = "sk-test"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "IMAGE_", "ALLOWED_", "ADMIN_"))
    }
    env.update({"DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def bot_env(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, key: str = API_KEY, **extra: str
) -> dict[str, str]:
    """The environment of a `python -m bot` talking to these fakes."""
    return _env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_API_URL=tg.root,
        IMAGE_API_BASE_URL=f"{upstream.root}/v1",
        IMAGE_API_KEY=key,
        **extra,
    )


async def _spawn(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_python_m_bot_answers_then_stops_on_sigterm(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI
) -> None:
    env = bot_env(tmp_path, tg, upstream, LOG_LEVEL="DEBUG")
    proc = await _spawn(env, tmp_path)
    # Read its output all along: a DEBUG log fills a pipe nobody reads, and the bot then blocks.
    output = asyncio.create_task(proc.communicate())
    try:
        tg.send_text(1001, "a paper boat")
        await tg.wait_for("sendPhoto", timeout=30)
        tg.send_photo(1001, jpeg((10, 120, 240)), caption="make it red")
        await tg.wait_for("sendPhoto", count=2, timeout=30)
        assert close(upstream.requests[1].input_images[0].color, (10, 120, 240))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(output, 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = (out + err).decode()
    assert "stopped" in logs
    assert " ERROR " not in logs and "Task was destroyed" not in logs, logs[-3000:]
    assert tg.token not in logs and tg.token.split(":")[1] not in logs
    assert API_KEY not in logs
    assert (tmp_path / "data" / "bot.db").exists()


async def test_a_missing_setting_stops_the_bot_with_one_clear_line(tmp_path: Path) -> None:
    env = _env(tmp_path, IMAGE_API_KEY="sk-very-secret-value")
    proc = await _spawn(env, tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == ["error: setting TELEGRAM_BOT_TOKEN is required but not set"]
    assert b"sk-very-secret-value" not in out + err


async def test_a_malformed_setting_is_named(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        TELEGRAM_BOT_TOKEN="123:abc",
        IMAGE_API_BASE_URL="https://x/v1",
        ALLOWED_USER_IDS="12,twelve",
    )
    proc = await _spawn(env, tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "ALLOWED_USER_IDS" in err.decode() and len(err.decode().strip().splitlines()) == 1


async def test_json_logs_and_ops_endpoints_of_the_process(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI
) -> None:
    """LOG_FORMAT=json: every line of output is one JSON object, secrets masked even where a
    relay echoes the key in an error; HTTP_LISTEN serves the ops endpoints of the process."""
    port = free_port()
    env = bot_env(
        tmp_path,
        tg,
        upstream,
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        HTTP_LISTEN=f"127.0.0.1:{port}",
        IMAGE_RETRY_BASE_DELAY="0.05",
    )
    proc = await _spawn(env, tmp_path)
    output = asyncio.create_task(proc.communicate())
    root = f"http://127.0.0.1:{port}"
    try:
        upstream.fail_next("401-echo-key")  # the relay's error message carries the key
        tg.send_text(1001, "a paper boat")
        await tg.wait_for("sendMessage", lambda c: "boat" not in str(c.params), timeout=30)
        tg.send_text(1002, "a paper plane")
        await tg.wait_for("sendPhoto", timeout=30)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{root}/healthz") as health:
                assert health.status == 200
            for _ in range(100):
                async with session.get(f"{root}/metrics") as scrape:
                    metrics = await scrape.text()
                if 'nanobanana_images_delivered_total{model="gemini' in metrics:
                    break
                await asyncio.sleep(0.1)
            async with session.get(f"{root}/readyz") as ready:
                assert (ready.status, await ready.json()) == (200, {"status": "ready"})
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(output, 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert 'nanobanana_jobs_total{dialect="openai-chat",status="failed"} 1.0' in metrics
    assert 'nanobanana_jobs_total{dialect="openai-chat",status="succeeded"} 1.0' in metrics
    lines = [line for line in (out + err).decode().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert len(records) > 10
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert {r["level"] for r in records} >= {"DEBUG", "INFO"}
    assert any(r["message"] == "stopped" for r in records)
    text = "\n".join(lines)
    assert any("***" in r["message"] or "***" in r.get("exception", "") for r in records)
    assert API_KEY not in text and "sk-test" not in text
    assert tg.token not in text and tg.token.split(":")[1] not in text


async def test_an_http_listen_address_in_use_stops_the_bot_with_one_clear_line(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(tmp_path, tg, upstream, HTTP_LISTEN=f"127.0.0.1:{port}")
        proc = await _spawn(env, tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith(f"error: cannot listen on 127.0.0.1:{port} (HTTP_LISTEN): ")
    assert "Traceback" not in err.decode()
    assert tg.token not in (out + err).decode()
