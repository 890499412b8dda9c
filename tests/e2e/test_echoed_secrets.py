"""A relay that echoes the API key back never gets it into a job row, an admin's chat, the
`check` table or the logs: whole, in a header, URL-encoded or cut short."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows
from tests.e2e.test_process import _spawn, bot_env
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
# No "sk-" prefix, so only the bot's knowledge of its own key can mask it; "/", "+" and "="
# change under URL encoding.
KEY = "relayKey/9f8e7d6c5b4a+3210=Zq"
ADMIN = 9999
FAULTS = {"200-error-echo-key": "couldn't use", "401-echo-key": "was refused"}


def leaks(text: str) -> list[str]:
    """The forms of KEY (and pieces of it) found in `text`."""
    forms = [KEY, quote(KEY, safe=""), KEY[:10], KEY[-12:], "9f8e7d6c5b4a"]
    return [form for form in forms if form in text]


@pytest.fixture
def echoing(upstream: FakeImageAPI) -> FakeImageAPI:
    upstream.api_key = KEY
    return upstream


async def test_an_echoed_key_is_masked_in_the_job_row_the_admin_message_and_the_logs(
    tg: FakeTelegram,
    echoing: FakeImageAPI,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    running = await start_bot(image_api_key=KEY)
    for chat, (fault, words) in zip((1001, 1002), FAULTS.items(), strict=True):
        echoing.fail_next(fault)
        tg.send_text(chat, "a lantern", user={"id": chat, "is_bot": False, "first_name": "u"})
        await tg.wait_for(
            "sendMessage",
            lambda c, chat=chat, words=words: (
                c.params.get("chat_id") == chat and words in c.params.get("text", "")
            ),
            timeout=20,
        )
    rows = db_rows(running.settings, "select error_code, error_detail from jobs order by id")
    assert [code for code, _ in rows] == ["bad_response", "auth"]
    for _, detail in rows:
        assert "***" in detail and leaks(detail) == [], detail
    [note] = await tg.wait_for("sendMessage", lambda c: c.params.get("chat_id") == ADMIN)
    assert "auth" in note.params["text"] and leaks(note.params["text"]) == []
    assert leaks(caplog.text) == []
    assert all(leaks(c.params.get("text", "")) == [] for c in tg.calls_of("sendMessage"))


async def test_the_check_table_and_the_bot_logs_mask_an_echoed_key(
    tmp_path: Path, tg: FakeTelegram, echoing: FakeImageAPI
) -> None:
    env = bot_env(
        tmp_path,
        tg,
        echoing,
        KEY,
        IMAGE_RETRY_BASE_DELAY="0.05",
        ADMIN_USER_IDS=str(ADMIN),
        LOG_LEVEL="DEBUG",
    )
    echoing.fail_next("401-echo-key")
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(check.communicate(), 60)
    table = out.decode()
    assert check.returncode == 1 and "auth" in table, table + err.decode()
    assert leaks(table + err.decode()) == []

    proc = await _spawn(env, tmp_path)
    output = asyncio.create_task(proc.communicate())
    try:
        for chat, fault in zip((1001, 1002), FAULTS, strict=True):
            echoing.fail_next(fault)
            tg.send_text(chat, "a lantern", user={"id": chat, "is_bot": False, "first_name": "u"})
        await tg.wait_for(
            "sendMessage", lambda c: c.params.get("chat_id") in (1001, 1002), count=2, timeout=30
        )
        await tg.wait_for("sendMessage", lambda c: c.params.get("chat_id") == ADMIN, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(output, 30)
    logs = (out + err).decode()
    assert "HTTP 401" in logs or "auth" in logs, logs[-2000:]
    assert leaks(logs) == [], logs[-3000:]
