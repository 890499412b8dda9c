"""One-tap follow-ups (issue 16 point 3), end to end: 2K / 4K, another ratio and a style under
a result where its model takes them, Retry under every failure and a rephrasing note under a
safety block; the buttons name rows, so they work after a restart, and only in their chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.telegram import callback_data as cd
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

ANN, BEN = 1001, 1002
StartBot = Callable[..., Awaitable[RunningBot]]
PRO, FLASH = "gemini-3-pro-image", "gemini-2.5-flash-image"


async def _start(
    start_bot: StartBot, tmp_path: Path, upstream: FakeImageAPI, model: str
) -> RunningBot:
    """The bot on one Gemini-native endpoint (the fake) serving both models, `model` default."""
    path = tmp_path / "providers.toml"
    path.write_text(
        f'[[endpoint]]\nname = "google"\ndialect = "gemini"\nbase_url = "{upstream.root}"\n'
        f'api_key = "sk-test"\nmodels = ["{PRO}", "{FLASH}"]\n'
    )
    return await start_bot(image_providers_file=str(path), image_model=model)


def _data(call: Call) -> list[str]:
    return [
        b["callback_data"] for row in call.params["reply_markup"]["inline_keyboard"] for b in row
    ]


def _config(req: Any) -> dict[str, str]:
    return dict(req.json["generationConfig"].get("imageConfig", {}))


def _prompt(req: Any) -> str:
    return str(req.json["contents"][-1]["parts"][0]["text"])


def _in(chat: int) -> Callable[[Call], bool]:
    return lambda c: c.params.get("chat_id") == chat


def _answers(tg: FakeTelegram) -> list[str]:
    return [c.params.get("text", "") for c in tg.calls_of("answerCallbackQuery")]


async def test_sizes_and_ratios_are_offered_and_drawn_after_a_restart_in_their_own_chat(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    bot = await _start(start_bot, tmp_path, upstream, PRO)
    tg.send_text(ANN, "a red fox", user=tg.user(ANN, "Ann"))
    [ann] = await tg.wait_for("sendPhoto", _in(ANN), timeout=20)
    tg.send_text(BEN, "a blue whale", user=tg.user(BEN, "Ben"))
    [ben] = await tg.wait_for("sendPhoto", _in(BEN), timeout=20)
    [(ann_job, ann_image)] = db_rows(
        bot.settings,
        "select j.id, i.id from jobs j join images i on i.job_id = j.id where j.chat_id = ?",
        ANN,
    )
    assert _data(ann) == [
        f"regen:{ann_job}",
        f"orig:{ann_image}",
        f"up:{ann_job}:2K",
        f"up:{ann_job}:4K",
        f"arp:{ann_job}",
        f"stg:{ann_image}",
        "new",  # no Variations: the Gemini dialect takes no n for this model
    ]
    assert button(ben, "up:") != button(ann, "up:")

    await bot.restart()
    ann_msg = ann.result["message_id"]
    tg.press_button(ANN, ann_msg, f"up:{ann_job}:4K")
    big = (await tg.wait_for("sendPhoto", _in(ANN), count=2, timeout=20))[1]
    third = upstream.requests[2]
    assert _config(third) == {"imageSize": "4K"} and _prompt(third) == "a red fox"
    # Drawn at 4K, it offers no bigger size; the new job is Ann's, in Ann's chat.
    assert [d for d in _data(big) if d.startswith("up:")] == []
    assert f"arp:{ann_job + 2}" in _data(big)
    assert db_rows(
        bot.settings,
        "select chat_id, user_id, image_size, prompt from jobs where id = ?",
        ann_job + 2,
    ) == [(ANN, ANN, "4K", "a red fox")]

    # Ann's job id pressed in Ben's chat (forged data) names nothing there: nothing is drawn.
    tg.press_button(BEN, ben.result["message_id"], f"up:{ann_job}:2K", user=tg.user(BEN, "Ben"))
    await tg.wait_for("answerCallbackQuery", lambda c: "can't find" in c.params.get("text", ""))
    assert len(upstream.requests) == 3

    # 📐 Ratio: the model's ten ratios, under the picture; one press draws it again in 16:9.
    tg.press_button(ANN, ann_msg, f"arp:{ann_job}")
    [picker] = await tg.wait_for("sendMessage", lambda c: "Pick a ratio" in c.params["text"])
    assert picker.params["reply_parameters"]["message_id"] == ann_msg
    ratios = [d.removeprefix(f"arj:{ann_job}:") for d in _data(picker)]
    assert ratios == ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
    await bot.restart()
    tg.press_button(ANN, picker.result["message_id"], f"arj:{ann_job}:16:9")
    await tg.wait_for("sendPhoto", _in(ANN), count=3, timeout=20)
    fourth = upstream.requests[3]
    assert _config(fourth) == {"aspectRatio": "16:9"} and _prompt(fourth) == "a red fox"
    assert db_rows(
        bot.settings, "select chat_id, aspect_ratio from jobs where id = ?", ann_job + 3
    ) == [(ANN, "16:9")]


async def test_a_model_without_sizes_offers_none_and_refuses_a_forged_size(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    bot = await _start(start_bot, tmp_path, upstream, FLASH)
    tg.send_text(ANN, "a lighthouse")
    [photo] = await tg.wait_for("sendPhoto", timeout=20)
    [(job,)] = db_rows(bot.settings, "select id from jobs")
    data = _data(photo)
    assert not [d for d in data if d.startswith("up:")]
    assert f"arp:{job}" in data and any(d.startswith("stg:") for d in data)
    tg.press_button(ANN, photo.result["message_id"], cd.encode(cd.Rerender(job, "4K")))
    await tg.wait_for("answerCallbackQuery", lambda c: "doesn't take" in c.params.get("text", ""))
    assert len(upstream.requests) == 1
    tg.press_button(ANN, photo.result["message_id"], cd.encode(cd.Reframe(job, "8:1")))
    await tg.wait_for("answerCallbackQuery", count=2)
    assert "doesn't take" in _answers(tg)[-1] and len(upstream.requests) == 1
    tg.send_text(ANN, "the next one works")
    await tg.wait_for("sendPhoto", count=2, timeout=20)


async def test_a_failure_offers_retry_and_a_safety_block_a_rephrasing_note(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    bot = await start_bot()
    upstream.fail_next("content-filter")
    tg.send_text(ANN, "a storm over the sea", user=tg.user(ANN, "Ann"))
    [blocked] = await tg.wait_for("sendMessage", lambda c: "safety filters" in c.params["text"])
    assert "To rephrase" in blocked.params["text"]
    upstream.fail_next("500", times=3)
    tg.send_text(BEN, "a quiet harbour", user=tg.user(BEN, "Ben"))
    [failed] = await tg.wait_for(
        "sendMessage", lambda c: "internal error" in c.params["text"], timeout=20
    )
    assert "To rephrase" not in failed.params["text"]
    jobs = dict(db_rows(bot.settings, "select chat_id, id from jobs where status = 'failed'"))
    assert _data(blocked) == [f"regen:{jobs[ANN]}"] and _data(failed) == [f"regen:{jobs[BEN]}"]

    await bot.restart()
    tg.press_button(
        BEN, failed.result["message_id"], f"regen:{jobs[BEN]}", user=tg.user(BEN, "Ben")
    )
    [photo] = await tg.wait_for("sendPhoto", timeout=20)
    assert photo.params["chat_id"] == BEN
    assert upstream.requests[-1].json["messages"][0]["content"] == "a quiet harbour"
    assert db_rows(bot.settings, "select chat_id, prompt, status from jobs order by id")[-1] == (
        BEN,
        "a quiet harbour",
        "succeeded",
    )


async def test_a_request_refused_before_any_job_has_no_retry(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ANN, "x" * 4001)
    [msg] = await tg.wait_for("sendMessage", lambda c: "too long" in c.params["text"])
    assert "reply_markup" not in msg.params
    assert db_rows(bot.settings, "select count(*) from jobs") == [(0,)]


async def test_in_a_group_only_the_asker_may_press_a_results_follow_ups(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    group = -1001234567890
    ann, ben = tg.user(ANN, "Ann"), tg.user(BEN, "Ben")
    tg.send_text(group, "/imagine a red car", user=ann, chat_type="supergroup")
    [photo] = await tg.wait_for("sendPhoto")
    [(job, image)] = db_rows(
        bot.settings, "select j.id, i.id from jobs j join images i on i.job_id = j.id"
    )
    message = photo.result["message_id"]
    for data in (f"arp:{job}", f"arj:{job}:16:9", f"stg:{image}", f"sty:clay:{image}"):
        query = tg.press_button(group, message, data, user=ben)
        [answer] = await tg.wait_for(
            "answerCallbackQuery", lambda c, q=query: c.params["callback_query_id"] == q["id"]
        )
        assert "belong to the person who asked" in answer.params["text"], data
    assert len(upstream.requests) == 1 and tg.calls_of("sendMessage") == []
    tg.press_button(group, message, f"arj:{job}:16:9", user=ann)
    [_, again] = await tg.wait_for("sendPhoto", count=2, timeout=20)
    assert again.params["chat_id"] == group
    assert db_rows(
        bot.settings, "select user_id, aspect_ratio from jobs where id = ?", job + 1
    ) == [(ANN, "16:9")]
