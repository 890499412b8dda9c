"""/export and /forget end to end: a person's zip holds their images and nobody else's, and
forgetting them leaves other people's (shared) pictures intact and the bot working."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from typing import Any

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, db_rows, jpeg, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

ALICE, BOB = 1001, 1002
GROUP = -1001234567890


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to(chat: int) -> Any:
    return lambda c: str(c.params.get("chat_id")) == str(chat)


async def _draw(tg: FakeTelegram, chat: int, text: str, done: int) -> Call:
    tg.send_text(chat, text, user=tg.user(chat, first_name=f"u{chat}"))
    photos = await tg.wait_for("sendPhoto", _to(chat), count=done)
    return photos[-1]


def _images_of(bot: RunningBot, user: int) -> set[str]:
    rows = db_rows(
        bot.settings,
        "select i.sha256 from images i left join jobs j on j.id = i.job_id"
        " where i.user_id = ? or j.user_id = ?",
        user,
        user,
    )
    return {sha for (sha,) in rows}


def _zip_members(calls: list[Call]) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    for call in calls:
        with zipfile.ZipFile(io.BytesIO(call.files["document"])) as archive:
            for name in archive.namelist():
                assert name not in members, name
                members[name] = archive.read(name)
    return members


async def _two_people_and_a_shared_picture(tg: FakeTelegram, upstream: FakeImageAPI) -> bytes:
    """Alice: a drawing, her own photo and its edit, and a picture Bob has too (same bytes)."""
    await _draw(tg, ALICE, "a fox in the snow", 1)
    tg.send_photo(ALICE, jpeg((20, 40, 220)), caption="make it night", user=tg.user(ALICE))
    await tg.wait_for("sendPhoto", _to(ALICE), count=2)
    shared = png((250, 200, 10), (96, 96))
    upstream.raw_output = (shared, "image/png")
    tg.send_text(ALICE, "/new", user=tg.user(ALICE))
    await tg.wait_for("sendMessage", lambda c: "fresh" in c.params.get("text", ""))
    await _draw(tg, ALICE, "a yellow square", 3)
    await _draw(tg, BOB, "a yellow square", 1)
    upstream.raw_output = None
    tg.send_text(BOB, "/new", user=tg.user(BOB))
    await tg.wait_for("sendMessage", lambda c: _to(BOB)(c) and "fresh" in c.params["text"])
    await _draw(tg, BOB, "a brown bear", 2)
    return shared


async def _export(tg: FakeTelegram, chat: int) -> list[Call]:
    """Every part of one export (the caption of each says how many there are)."""
    tg.send_text(chat, "/export", user=tg.user(chat))
    [first] = await tg.wait_for("sendDocument", _to(chat))
    parts = int(re.search(r"of (\d+)\.", first.params["caption"]).group(1))  # type: ignore[union-attr]
    docs = await tg.wait_for("sendDocument", _to(chat), count=parts)
    assert len(docs) == parts and all(f"of {parts}." in d.params["caption"] for d in docs)
    return docs


async def test_export_holds_every_image_of_the_person_and_nobody_elses(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    shared = await _two_people_and_a_shared_picture(tg, upstream)
    alice, bob = _images_of(bot, ALICE), _images_of(bot, BOB)
    assert len(alice) == 4 and len(bob) == 2 and alice & bob == {_sha(shared)}

    docs = await _export(tg, ALICE)
    assert len(docs) == 1  # one zip: far under 50 MB
    assert docs[0].filenames["document"].endswith("-1of1.zip")
    members = _zip_members(docs)
    pictures = {name: data for name, data in members.items() if name.startswith("images/")}
    assert {_sha(data) for data in pictures.values()} == alice
    assert len(pictures) == 4  # each image row once, the shared one as Alice's own copy
    document = json.loads(members["data.json"])
    assert document["user_id"] == ALICE
    prompts = [job["prompt"] for job in document["jobs"]]
    assert prompts == ["a fox in the snow", "make it night", "a yellow square"]
    assert {job["model"] for job in document["jobs"]} == {"gemini-2.5-flash-image"}
    assert all(job["created_at"] and job["images"] for job in document["jobs"])
    assert sorted(i["file"] for i in document["images"]) == sorted(pictures)
    assert {i["source"] for i in document["images"]} == {"user", "bot"}
    assert "a brown bear" not in members["data.json"].decode()


async def test_a_big_export_comes_in_parts_under_the_limit(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    await _two_people_and_a_shared_picture(tg, upstream)
    personal = bot.app.bot_data["services"].personal
    biggest = max(len(d) for d in upstream.output_bytes)
    personal.part_limit = biggest + 1024  # room for about one picture per zip
    docs = await _export(tg, ALICE)
    assert len(docs) >= 3
    assert all(len(d.files["document"]) <= personal.part_limit for d in docs)
    members = _zip_members(docs)
    assert {_sha(d) for n, d in members.items() if n.startswith("images/")} == _images_of(
        bot, ALICE
    )
    with zipfile.ZipFile(io.BytesIO(docs[0].files["document"])) as first:
        assert "data.json" in first.namelist()
    count = len(docs)
    assert f"part 1 of {count}" in docs[0].params["caption"]
    assert [d.filenames["document"][-9:] for d in docs] == [
        f"-{n}of{count}.zip" for n in range(1, count + 1)
    ]


async def test_forget_keeps_other_peoples_shared_pictures_and_the_next_message_works(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    shared = await _two_people_and_a_shared_picture(tg, upstream)
    alice_only = _images_of(bot, ALICE) - _images_of(bot, BOB)
    blobs = bot.settings.blobs_dir
    path = lambda sha: blobs / sha[:2] / sha[2:4] / sha  # noqa: E731
    assert all(path(sha).is_file() for sha in alice_only)
    tg.send_text(ALICE, "/ratio", user=tg.user(ALICE))
    [ratios] = await tg.wait_for("sendMessage", lambda c: "ratio:" in str(c.params))
    tg.press_button(ALICE, ratios.result["message_id"], "ratio:16:9")
    await tg.wait_for("answerCallbackQuery")
    assert db_rows(bot.settings, "select aspect_ratio from chat_prefs") == [("16:9",)]
    tg.send_text(ALICE, "/style add mine {prompt}, as my grandmother drew", user=tg.user(ALICE))
    tg.send_text(BOB, "/style add his {prompt}, in chalk", user=tg.user(BOB))
    # each one's own answer ("his" alone also matched "this" in an earlier message)
    await tg.wait_for("sendMessage", lambda c: _to(ALICE)(c) and "<b>mine</b>" in str(c.params))
    await tg.wait_for("sendMessage", lambda c: _to(BOB)(c) and "<b>his</b>" in str(c.params))
    assert db_rows(bot.settings, "select count(*) from chat_styles") == [(2,)]

    tg.send_text(ALICE, "/forget", user=tg.user(ALICE))
    [ask] = await tg.wait_for("sendMessage", lambda c: "forget" in str(c.params))
    assert db_rows(bot.settings, "select count(*) from jobs where user_id = ?", ALICE) == [(3,)]
    tg.press_button(ALICE, ask.result["message_id"], button(ask, f"forget:{ALICE}"))
    [done] = await tg.wait_for("editMessageText", _to(ALICE))
    assert "3 prompt(s)" in done.params["text"] and "4 picture(s)" in done.params["text"]
    assert "1 file(s) stay" in done.params["text"]

    assert db_rows(bot.settings, "select count(*) from jobs where user_id = ?", ALICE) == [(0,)]
    assert _images_of(bot, ALICE) == set()
    assert db_rows(bot.settings, "select count(*) from users where id = ?", ALICE) == [(0,)]
    assert not any(path(sha).exists() for sha in alice_only)
    assert db_rows(bot.settings, "select count(*) from chat_prefs") == [(0,)]
    assert db_rows(bot.settings, "select chat_id from chat_styles") == [(BOB,)]  # her words go
    # Bob's pictures, the one he shares with Alice too, are all there
    assert len(_images_of(bot, BOB)) == 2 and path(_sha(shared)).is_file()
    docs = await _export(tg, BOB)
    members = _zip_members(docs)
    assert shared in members.values()
    assert {_sha(d) for n, d in members.items() if n.startswith("images/")} == _images_of(bot, BOB)

    # Alice starts afresh: no current image to refine, her user row written again
    before = len(upstream.requests)
    await _draw(tg, ALICE, "a new beginning", 4)
    assert upstream.requests[before].input_images == []
    assert "16:9" not in json.dumps(upstream.requests[before].json)  # settings back to defaults
    assert db_rows(bot.settings, "select first_name from users where id = ?", ALICE) == [
        (f"u{ALICE}",)
    ]
    assert db_rows(bot.settings, "select prompt from jobs where user_id = ?", ALICE) == [
        ("a new beginning",)
    ]
    tg.send_text(ALICE, "/export", user=tg.user(ALICE))
    [*_, mine] = await tg.wait_for("sendDocument", _to(ALICE))
    assert len([n for n in _zip_members([mine]) if n.startswith("images/")]) == 1


async def test_forget_lets_go_of_pictures_others_built_on_in_a_group(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    """Bob edited Alice's picture in a group: his job and result stay, without her input."""
    group = {"chat_type": "supergroup"}
    tg.send_text(GROUP, "/imagine a castle", user=tg.user(ALICE), **group)
    [castle] = await tg.wait_for("sendPhoto", _to(GROUP))
    tg.send_text(
        GROUP,
        "add a dragon",
        user=tg.user(BOB),
        reply_to_message_id=castle.result["message_id"],
        **group,
    )
    await tg.wait_for("sendPhoto", _to(GROUP), count=2)
    assert db_rows(bot.settings, "select count(*) from job_inputs") == [(1,)]

    tg.send_text(GROUP, "/forget", user=tg.user(ALICE), **group)
    await tg.wait_for("sendMessage", lambda c: "private chat" in c.params.get("text", ""))
    tg.send_text(GROUP, "/export", user=tg.user(ALICE), **group)
    await tg.wait_for("sendMessage", lambda c: "private chat" in c.params.get("text", ""), count=2)
    assert tg.calls_of("sendDocument") == []

    tg.send_text(ALICE, "/forget", user=tg.user(ALICE))
    [ask] = await tg.wait_for("sendMessage", _to(ALICE))
    tg.press_button(ALICE, ask.result["message_id"], button(ask, "forget:"))
    await tg.wait_for("editMessageText", _to(ALICE))
    assert db_rows(bot.settings, "select user_id, status from jobs") == [(BOB, "succeeded")]
    assert db_rows(bot.settings, "select count(*) from job_inputs") == [(0,)]
    assert len(_images_of(bot, BOB)) == 1
    # the group goes on: Bob refines his dragon, Alice draws again
    tg.send_text(GROUP, "/imagine a moat", user=tg.user(BOB), **group)
    await tg.wait_for("sendPhoto", _to(GROUP), count=3)
    tg.send_text(GROUP, "/imagine a flag", user=tg.user(ALICE), **group)
    await tg.wait_for("sendPhoto", _to(GROUP), count=4)


async def test_keep_my_data_deletes_nothing(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    await _draw(tg, ALICE, "a kite", 1)
    tg.send_text(ALICE, "/forget", user=tg.user(ALICE))
    [ask] = await tg.wait_for("sendMessage", lambda c: "forget" in str(c.params))
    tg.press_button(ALICE, ask.result["message_id"], button(ask, "keepdata"))
    [kept] = await tg.wait_for("editMessageText", _to(ALICE))
    assert "Nothing was deleted" in kept.params["text"]
    assert len(_images_of(bot, ALICE)) == 1
    tg.send_text(ALICE, "/export", user=tg.user(ALICE))
    [doc] = await tg.wait_for("sendDocument")
    assert [n for n in _zip_members([doc]) if n.startswith("images/")]
