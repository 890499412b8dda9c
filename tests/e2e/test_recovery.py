"""Restarts with jobs a dead process left, seeded in the database (the process test kills a
real `python -m bot`; these cover the states it cannot time exactly)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows, mean
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
ANN, BEN = 2001, 2002


def _sql(bot: RunningBot, sql: str, *args: object) -> None:
    db_rows(bot.settings, sql, *args)


async def test_a_result_stored_but_never_sent_is_delivered_at_start(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    ann = tg.send_text(ANN, "a lighthouse", user=tg.user(ANN, "Ann"))
    await tg.wait_for("sendPhoto")
    tg.send_text(BEN, "a tree", user=tg.user(BEN, "Ben"))
    await tg.wait_for("sendPhoto", count=2)
    await bot.stop()
    # As if the process had died between the job's commit and its sendPhoto: Ann never got it.
    [(job_id,)] = db_rows(bot.settings, "SELECT id FROM jobs WHERE chat_id = ?", ANN)
    _sql(bot, "UPDATE jobs SET delivered_at = NULL WHERE id = ?", job_id)
    _sql(
        bot,
        "DELETE FROM image_messages WHERE image_id IN (SELECT id FROM images WHERE job_id = ?)",
        job_id,
    )
    tg.calls.clear()

    await bot.start()
    [photo] = await tg.wait_for("sendPhoto", timeout=15)
    assert photo.params["chat_id"] == ANN  # Ben got his: nothing again for him
    assert photo.params["reply_parameters"]["message_id"] == ann["message_id"]
    assert close(mean(photo.files["photo"]), upstream.outputs[0])
    assert button(photo, "regen:") == f"regen:{job_id}"
    assert len(upstream.requests) == 2  # delivered from the store, not made again
    [(delivered,)] = db_rows(bot.settings, "SELECT delivered_at FROM jobs WHERE id = ?", job_id)
    assert delivered is not None

    # Refinement continues from the image Ann now has; and a further restart sends nothing.
    tg.send_text(ANN, "make it night", user=tg.user(ANN, "Ann"))
    await tg.wait_for("sendPhoto", count=2)
    assert close(upstream.requests[2].input_images[0].color, upstream.outputs[0])
    await bot.restart()
    tg.send_text(BEN, "/usage", user=tg.user(BEN, "Ben"))  # its answer is a chart
    await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == BEN)
    assert len([c for c in tg.calls_of("sendPhoto") if c.params["chat_id"] != BEN]) == 2


async def test_a_text_answer_never_sent_is_sent_and_old_jobs_are_left_alone(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    upstream.answer_shape = "text-only"
    tg.send_text(ANN, "a cat", user=tg.user(ANN, "Ann"))
    await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == ANN)
    upstream.answer_shape = "markdown-data"
    tg.send_text(BEN, "a dog", user=tg.user(BEN, "Ben"))
    await tg.wait_for("sendPhoto")
    await bot.stop()
    _sql(bot, "UPDATE jobs SET delivered_at = NULL WHERE chat_id = ?", ANN)
    # A job finished by a bot from before upstream_at existed: never sent again.
    _sql(bot, "UPDATE jobs SET delivered_at = NULL, upstream_at = NULL WHERE chat_id = ?", BEN)
    _sql(bot, "DELETE FROM image_messages")
    tg.calls.clear()

    await bot.start()
    [text] = await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == ANN, timeout=15)
    assert "regen:" in str(text.params["reply_markup"])
    await bot.restart()
    tg.send_text(BEN, "/usage", user=tg.user(BEN, "Ben"))  # its answer is a chart
    await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == BEN)
    assert [c.params["chat_id"] for c in tg.calls_of("sendMessage", "sendPhoto")] == [ANN, BEN]


async def test_a_job_that_never_went_upstream_runs_again_unless_its_user_is_refused_now(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    ann = tg.send_text(ANN, "a lighthouse", user=tg.user(ANN, "Ann"))
    await tg.wait_for("sendPhoto")
    tg.send_text(BEN, "a tree", user=tg.user(BEN, "Ben"))
    await tg.wait_for("sendPhoto", count=2)
    await bot.stop()
    # As if the process had died while both jobs waited for a slot: never sent upstream.
    _sql(bot, "DELETE FROM image_messages")
    _sql(bot, "UPDATE chat_states SET current_image_id = NULL")
    _sql(bot, "DELETE FROM images WHERE job_id IS NOT NULL")
    _sql(
        bot,
        "UPDATE jobs SET status = 'running', upstream_at = NULL, finished_at = NULL,"
        " delivered_at = NULL",
    )
    tg.calls.clear()

    # Restarted with an allow list that no longer has Ben.
    restarted = await start_bot(allowed_user_ids=str(ANN))
    [photo] = await tg.wait_for("sendPhoto", timeout=15)
    assert photo.params["chat_id"] == ANN
    assert photo.params["reply_parameters"]["message_id"] == ann["message_id"]
    assert [r.json["messages"][0]["content"] for r in upstream.requests][2:] == ["a lighthouse"]
    for _ in range(200):
        rows = db_rows(restarted.settings, "SELECT status, error_code FROM jobs ORDER BY id")
        if rows[1][0] != "running":
            break
        await asyncio.sleep(0.05)
    assert rows == [("succeeded", None), ("failed", "interrupted")]
    assert not [c for c in tg.calls if c.params.get("chat_id") == BEN]


async def test_a_chat_that_blocked_the_bot_is_tried_once_not_at_every_start(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    tg.send_text(ANN, "a lighthouse", user=tg.user(ANN, "Ann"))
    await tg.wait_for("sendPhoto")
    await bot.stop()
    [(job_id,)] = db_rows(bot.settings, "SELECT id FROM jobs WHERE chat_id = ?", ANN)
    _sql(bot, "UPDATE jobs SET delivered_at = NULL WHERE id = ?", job_id)
    _sql(bot, "DELETE FROM image_messages")
    tg.calls.clear()
    tg.fail_next(
        "sendPhoto",
        error_code=403,
        description="Forbidden: bot was blocked by the user",
        retry_after=None,
    )
    await bot.start()
    await tg.wait_for("sendPhoto", timeout=15)  # the one try, refused
    await asyncio.sleep(0.3)
    [(delivered,)] = db_rows(bot.settings, "SELECT delivered_at FROM jobs WHERE id = ?", job_id)
    assert delivered is not None  # settled: not tried again
    await bot.restart()
    tg.send_text(BEN, "/usage", user=tg.user(BEN, "Ben"))  # its answer is a chart
    await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == BEN)
    assert len([c for c in tg.calls_of("sendPhoto") if c.params["chat_id"] != BEN]) == 1
