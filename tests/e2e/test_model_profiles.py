"""Model profiles end to end: what the configured model can do decides the input image limit,
one call with `n` or n calls, the sizes /settings offers and the flags a prompt may carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.telegram import callback_data as cd
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT, ZH_CHAT = 1001, 1002
UNKNOWN = "acme-imagine-7"  # a relay's own model that no profile describes
COLORS = ((220, 20, 20), (20, 220, 20), (20, 20, 220), (9, 9, 9))
StartBot = Callable[..., Awaitable[RunningBot]]


def _one_endpoint(tmp_path: Path, upstream: FakeImageAPI, dialect: str, more: str) -> str:
    """A providers file with one endpoint (the fake image API) and `more` TOML after it."""
    path = tmp_path / "providers.toml"
    endpoint = f'name = "relay"\ndialect = "{dialect}"\nbase_url = "{upstream.root}/v1"'
    path.write_text(f'[[endpoint]]\n{endpoint}\napi_key = "sk-test"\n{more}\n')
    return str(path)


def _buttons(call: object) -> list[str]:
    markup = call.params["reply_markup"]  # type: ignore[attr-defined]
    return [b["text"] for row in markup["inline_keyboard"] for b in row]


async def test_an_unknown_model_takes_the_safe_number_of_input_images_in_en_and_zh(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(image_model=UNKNOWN)
    zh = tg.user(ZH_CHAT, "李", language_code="zh-hans")
    for color in COLORS:
        tg.send_photo(CHAT, png(color), media_group_id="en-album", caption="combine them")
        tg.send_photo(ZH_CHAT, png(color), media_group_id="zh-album", caption="合成", user=zh)
    await tg.wait_for("sendMessage", count=2, timeout=20)
    answers = {c.params["chat_id"]: c.params["text"] for c in tg.calls_of("sendMessage")}
    assert UNKNOWN in answers[CHAT] and "at most 3" in answers[CHAT]
    assert UNKNOWN in answers[ZH_CHAT] and "最多接受 3 张" in answers[ZH_CHAT]
    assert upstream.requests == []


async def test_three_input_images_are_fine_for_an_unknown_model(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(image_model=UNKNOWN)
    for color in COLORS[:3]:
        tg.send_photo(CHAT, png(color), media_group_id="alb", caption="combine them")
    await tg.wait_for("sendPhoto", timeout=20)
    [req] = upstream.requests
    assert len(req.input_images) == 3 and req.json["model"] == UNKNOWN


@pytest.mark.parametrize(
    ("model", "calls", "n_sent"),
    [("gemini-2.5-flash-image", 1, 3), (UNKNOWN, 3, None)],
)
async def test_n_goes_in_one_call_only_where_the_profile_takes_it(
    model: str,
    calls: int,
    n_sent: int | None,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    start_bot: StartBot,
):
    running = await start_bot(
        image_api_dialect="openai-images",
        image_model=model,
    )
    tg.send_text(CHAT, "three kittens --n 3")
    [album] = await tg.wait_for("sendMediaGroup", timeout=20)
    assert len(album.result) == 3
    assert len(upstream.requests) == calls
    assert [r.json.get("n") for r in upstream.requests] == [n_sent] * calls
    assert db_rows(running.settings, "select n from jobs") == [(3,)]


async def test_an_endpoint_profile_in_the_providers_file_turns_n_off(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    profile = "[endpoint.profile]\nsupports_n = false\nmax_input_images = 1"
    await start_bot(
        image_providers_file=_one_endpoint(tmp_path, upstream, "openai-images", profile)
    )
    tg.send_text(CHAT, "two kittens --n 2")
    await tg.wait_for("sendMediaGroup", timeout=20)
    assert [r.json.get("n") for r in upstream.requests] == [None, None]
    for color in COLORS[:2]:
        tg.send_photo(CHAT, png(color), media_group_id="alb", caption="combine them")
    [refusal] = await tg.wait_for("sendMessage", lambda c: "at most 1" in c.params["text"])
    assert "gemini-2.5-flash-image" in refusal.params["text"]
    assert len(upstream.requests) == 2


@pytest.mark.parametrize(
    ("model", "sizes"),
    [("gemini-2.5-flash-image", []), ("gemini-3-pro-image-preview", ["1K", "2K", "4K"])],
)
async def test_settings_offer_the_sizes_of_the_chats_model(
    model: str, sizes: list[str], tg: FakeTelegram, start_bot: StartBot
):
    await start_bot(image_model=model)
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    tg.press_button(CHAT, menu.result["message_id"], cd.encode(cd.OpenSetting("size")))
    [edited] = await tg.wait_for("editMessageText")
    labels = [label.removeprefix("✅ ") for label in _buttons(edited)]
    assert [label for label in labels if label.endswith("K")] == sizes


async def test_a_size_flag_for_a_model_with_one_size_is_answered_not_ignored(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(image_model="gemini-2.5-flash-image")
    tg.send_text(CHAT, "a lighthouse --size 4K")
    [msg] = await tg.wait_for("sendMessage")
    assert "one size" in msg.params["text"] and "gemini-2.5-flash-image" in msg.params["text"]
    assert upstream.requests == []


async def test_a_size_flag_reaches_a_model_that_takes_it(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(image_model="gemini-3-pro-image-preview")
    tg.send_text(CHAT, "a lighthouse --size 4k")
    await tg.wait_for("sendPhoto", timeout=20)
    [req] = upstream.requests
    assert req.json["extra_body"] == {"google": {"image_config": {"image_size": "4K"}}}


async def test_a_size_kept_for_one_model_is_left_out_for_a_model_without_sizes(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    models = 'models = ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]'
    await start_bot(image_providers_file=_one_endpoint(tmp_path, upstream, "openai-chat", models))
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    presses = [cd.SetModel(1), cd.SetSize("4K"), cd.SetModel(0)]
    for i, press in enumerate(presses, start=1):
        tg.press_button(CHAT, menu.result["message_id"], cd.encode(press))
        await tg.wait_for("answerCallbackQuery", count=i)
    [*_, shown] = await tg.wait_for("editMessageText", count=len(presses))
    assert "Model: gemini-2.5-flash-image" in shown.params["text"]
    assert "Size: automatic" in shown.params["text"]
    tg.send_text(CHAT, "a lighthouse")
    await tg.wait_for("sendPhoto", timeout=20)
    tg.press_button(CHAT, menu.result["message_id"], cd.encode(cd.SetModel(1)))
    [*_, shown] = await tg.wait_for("editMessageText", count=len(presses) + 1)
    assert "Size: 4K" in shown.params["text"]  # kept for the model that takes it
    tg.send_text(CHAT, "a lighthouse")
    await tg.wait_for("sendPhoto", count=2, timeout=20)
    flash, pro = upstream.requests
    assert "extra_body" not in flash.json
    assert pro.json["extra_body"] == {"google": {"image_config": {"image_size": "4K"}}}


async def test_the_chats_model_decides_how_many_pictures_an_album_may_have(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    models = 'models = ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]'
    await start_bot(image_providers_file=_one_endpoint(tmp_path, upstream, "openai-chat", models))
    five = [*COLORS, (90, 90, 90)]
    for color in five:
        tg.send_photo(CHAT, png(color), media_group_id="on-flash", caption="combine them")
    [refusal] = await tg.wait_for("sendMessage")
    assert "at most 3" in refusal.params["text"] and upstream.requests == []
    tg.send_text(CHAT, "/settings")
    [_, menu] = await tg.wait_for("sendMessage", count=2)
    tg.press_button(CHAT, menu.result["message_id"], cd.encode(cd.SetModel(1)))
    await tg.wait_for("editMessageText")
    for color in five:
        tg.send_photo(CHAT, png(color), media_group_id="on-pro", caption="combine them")
    await tg.wait_for("sendPhoto", timeout=20)
    [req] = upstream.requests
    assert req.json["model"] == "gemini-3-pro-image-preview" and len(req.input_images) == 5
