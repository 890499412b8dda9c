"""Groups, access, quotas and costs, end to end against the fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows, jpeg, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

GROUP = -1001234567890
ALICE, BOB, OWNER, ADMIN = 1001, 1002, 1003, 9999
StartBot = Callable[..., Awaitable[RunningBot]]


def _in_group(tg: FakeTelegram, text: str, user: int = ALICE, **kw):  # type: ignore[no-untyped-def]
    return tg.send_text(
        GROUP, text, user=tg.user(user, first_name=f"u{user}"), chat_type="supergroup", **kw
    )


def _sent_to_group(tg: FakeTelegram) -> list:  # type: ignore[type-arg]
    return [
        c
        for c in tg.calls
        if str(c.params.get("chat_id")) == str(GROUP)
        and c.method in ("sendMessage", "sendPhoto", "sendDocument", "sendChatAction")
    ]


async def test_imagine_in_a_group_and_chatter_is_ignored(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    _in_group(tg, "hello everyone")
    tg.send_photo(GROUP, png((1, 2, 3)), user=tg.user(ALICE), chat_type="supergroup")
    _in_group(tg, "/imagine@some_other_bot a cat")
    _in_group(tg, "/unknowncommand")
    await asyncio.sleep(1.0)
    assert _sent_to_group(tg) == [] and upstream.requests == []
    request = _in_group(tg, "/imagine@nano_test_bot a lighthouse in a storm")
    [photo] = await tg.wait_for("sendPhoto")
    assert photo.params["reply_parameters"]["message_id"] == request["message_id"]
    assert upstream.requests[0].json["messages"][0]["content"] == "a lighthouse in a storm"
    _in_group(tg, "/imagine")
    [usage] = await tg.wait_for("sendMessage", lambda c: "/imagine" in c.params.get("text", ""))
    assert len(upstream.requests) == 1 and usage


async def test_edit_as_reply_reply_to_bot_image_and_mention(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    photo_msg = tg.send_photo(
        GROUP, jpeg((200, 100, 0)), user=tg.user(ALICE), chat_type="supergroup"
    )
    _in_group(tg, "/edit make it blue", reply_to_message_id=photo_msg["message_id"])
    [result] = await tg.wait_for("sendPhoto")
    assert close(upstream.requests[0].input_images[0].color, (200, 100, 0))
    _in_group(tg, "now add a moon", reply_to_message_id=result.result["message_id"])
    await tg.wait_for("sendPhoto", count=2)
    assert close(upstream.requests[1].input_images[0].color, upstream.outputs[0])
    _in_group(tg, "@nano_test_bot a small boat")
    await tg.wait_for("sendPhoto", count=3)
    assert upstream.requests[2].json["messages"][0]["content"] == "a small boat"


async def test_captioned_album_composes_in_a_group(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    user = tg.user(ALICE)
    tg.send_photo(
        GROUP,
        png((250, 0, 0)),
        user=user,
        chat_type="supergroup",
        media_group_id="g1",
        caption="/imagine merge these two",
    )
    tg.send_photo(GROUP, png((0, 0, 250)), user=user, chat_type="supergroup", media_group_id="g1")
    await tg.wait_for("sendPhoto")
    [req] = upstream.requests
    assert len(req.input_images) == 2
    assert req.json["messages"][0]["content"][0]["text"] == "merge these two"


async def test_forum_topic_is_kept(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    upstream.latency = 0.6
    _in_group(tg, "/imagine a forest", message_thread_id=77)
    [photo] = await tg.wait_for("sendPhoto")
    assert photo.params["message_thread_id"] == 77
    actions = tg.calls_of("sendChatAction")
    assert actions and all(a.params.get("message_thread_id") == 77 for a in actions)
    # sessions are per topic: /undo in another topic has nothing to undo
    _in_group(tg, "/undo", message_thread_id=78)
    [msg] = await tg.wait_for("sendMessage", lambda c: "Nothing to undo" in c.params["text"])
    assert msg.params["message_thread_id"] == 78


async def test_group_command_menus(tg: FakeTelegram, bot: RunningBot):
    assert any(c["command"] == "imagine" for c in tg.commands[("all_group_chats", "")])
    assert any("画图" in c["description"] for c in tg.commands[("all_group_chats", "zh")])


async def test_another_members_button_press_is_refused(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.chat_admins[GROUP] = [OWNER]
    _in_group(tg, "/imagine a red car", user=ALICE)
    [photo] = await tg.wait_for("sendPhoto")
    regen = button(photo, "regen:")
    tg.press_button(GROUP, photo.result["message_id"], regen, user=tg.user(BOB))
    [answer] = await tg.wait_for("answerCallbackQuery")
    assert "belong to the person who asked" in answer.params["text"]
    await asyncio.sleep(0.5)
    assert len(upstream.requests) == 1
    tg.press_button(GROUP, photo.result["message_id"], regen, user=tg.user(OWNER))
    await tg.wait_for("sendPhoto", count=2)
    tg.press_button(GROUP, photo.result["message_id"], regen, user=tg.user(ALICE))
    await tg.wait_for("sendPhoto", count=3)


async def test_a_stranger_is_refused_at_no_upstream_cost(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(allowed_user_ids=str(ALICE))
    tg.send_text(2002, "draw a cat", user=tg.user(2002))
    [refusal] = await tg.wait_for("sendMessage")
    assert "private" in refusal.params["text"] and "2002" in refusal.params["text"]
    _in_group(tg, "/imagine a dog", user=BOB)
    await tg.wait_for("sendMessage", count=2)
    _in_group(tg, "just chatting", user=BOB)
    await asyncio.sleep(0.5)
    assert len(tg.calls_of("sendMessage")) == 2
    assert upstream.requests == []
    # an admin lets Bob in at run time; later denies him again
    tg.send_text(ADMIN, f"/allow {BOB}", user=tg.user(ADMIN))
    await tg.wait_for("sendMessage", lambda c: "may use the bot" in c.params.get("text", ""))
    _in_group(tg, "/imagine a dog", user=BOB)
    await tg.wait_for("sendPhoto")
    tg.send_text(ADMIN, f"/deny {BOB}", user=tg.user(ADMIN))
    await tg.wait_for("sendMessage", lambda c: "no longer" in c.params.get("text", ""))
    tg.send_text(BOB, "a cat", user=tg.user(BOB))
    await tg.wait_for("sendMessage", lambda c: "private" in c.params.get("text", ""), count=3)
    assert len(upstream.requests) == 1


async def test_quota_runs_out_and_resets(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    running = await start_bot(daily_images_per_user=2)
    for i in range(2):
        tg.send_text(ALICE, "/new")
        tg.send_text(ALICE, f"picture {i}")
        await tg.wait_for("sendPhoto", count=i + 1)
    tg.send_text(ALICE, "one more")
    [refused] = await tg.wait_for(
        "sendMessage", lambda c: "daily limit" in c.params.get("text", "")
    )
    assert "resets at 00:00 UTC" in refused.params["text"]
    assert len(upstream.requests) == 2
    tg.send_text(ALICE, "/usage")
    [usage] = await tg.wait_for("sendPhoto", lambda c: "You:" in c.params.get("caption", ""))
    assert "2 image(s) today, 0 left" in usage.params["caption"]
    # a new day: yesterday's jobs no longer count
    yesterday = (
        "created_at - interval '1 day'"
        if running.settings.database_url.startswith("postgresql")
        else "datetime(created_at, '-1 day')"
    )
    db_rows(running.settings, f"update jobs set created_at = {yesterday}")
    tg.send_text(ALICE, "the next day")
    await tg.wait_for("sendPhoto", count=3)
    # an admin raises Alice's own limit
    tg.send_text(ADMIN, f"/quota user {ALICE} 5", user=tg.user(ADMIN))
    await tg.wait_for("sendMessage", lambda c: "Daily limit" in c.params.get("text", ""))
    tg.send_text(ALICE, "more")
    await tg.wait_for("sendPhoto", count=4)


async def test_stats_equal_the_jobs_made(tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot):
    for i in range(3):
        tg.send_text(ALICE, "/new")
        tg.send_text(ALICE, f"picture {i}")
        await tg.wait_for("sendPhoto", count=i + 1)
    _in_group(tg, "/imagine in the group", user=BOB)
    await tg.wait_for("sendPhoto", count=4)
    rows = db_rows(bot.settings, "select count(*), sum(cost) from jobs where status='succeeded'")
    assert rows == [(4, 4 * 0.039)]
    tg.send_text(ALICE, "/stats")
    await tg.wait_for("sendMessage", lambda c: "Only the bot's admins" in c.params.get("text", ""))
    tg.send_text(ADMIN, "/stats", user=tg.user(ADMIN))
    [stats] = await tg.wait_for("sendMessage", lambda c: "📊" in c.params.get("text", ""))
    text = stats.params["text"]
    assert "4 image(s) in 4 job(s), cost 0.156" in text
    assert f"{ALICE}" in text and f"{GROUP}" in text and "gemini-2.5-flash-image" in text


async def test_a_burst_in_one_group_draws_no_429(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.flood_limit = True
    for i in range(4):
        _in_group(tg, f"/imagine picture {i}", user=ALICE + i)
    await tg.wait_for("sendPhoto", count=4, timeout=60)
    assert not [c for c in tg.calls if c.response and c.response.get("error_code") == 429]
