"""Today's models end to end (issue 13, points 1-3): the default model from a fresh .env, each
family's options in /settings and on the wire in Google's form, Google Search grounding with
its sources under the picture, and a retired model told to the user and (once) to the admins."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.providers.profiles import CLASSIC_RATIOS
from bot.telegram import callback_data as cd
from bot.telegram.replies import shown_length
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows, png
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

CHAT, OTHER, ADMIN = 1001, 1002, 9999
StartBot = Callable[..., Awaitable[RunningBot]]
MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-image")
WIDE = ("1:4", "4:1", "1:8", "8:1")
# Google's list price per image by size (ai.google.dev/gemini-api/docs/pricing).
PRICES: dict[str, dict[str | None, float]] = {
    MODELS[0]: {None: 0.039},
    MODELS[1]: {"1K": 0.134, "2K": 0.134, "4K": 0.24},
    MODELS[2]: {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151},
}
# What Google's docs list per family: ratios, sizes, whether it takes Google Search.
OFFERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    MODELS[0]: (CLASSIC_RATIOS, (), False),
    MODELS[1]: (CLASSIC_RATIOS, ("1K", "2K", "4K"), True),
    MODELS[2]: ((*CLASSIC_RATIOS, *WIDE), ("512", "1K", "2K", "4K"), True),
}


def _gemini_file(tmp_path: Path, upstream: FakeImageAPI, models: tuple[str, ...]) -> str:
    """A providers file with one Gemini-native endpoint (the fake) serving `models`."""
    path = tmp_path / "providers.toml"
    listed = ", ".join(f'"{m}"' for m in models)
    path.write_text(
        f'[[endpoint]]\nname = "google"\ndialect = "gemini"\nbase_url = "{upstream.root}"\n'
        f'api_key = "sk-test"\nmodels = [{listed}]\n'
    )
    return str(path)


async def _start(
    start_bot: StartBot, tmp_path: Path, upstream: FakeImageAPI, models: tuple[str, ...]
) -> RunningBot:
    """The bot on that endpoint, its first model the default (so /settings lists them in order)."""
    return await start_bot(
        image_providers_file=_gemini_file(tmp_path, upstream, models), image_model=models[0]
    )


def _says(words: str) -> Callable[[Call], bool]:
    return lambda c: words in c.params.get("text", "")


def _labels(call: Call) -> list[str]:
    markup = call.params["reply_markup"]
    return [b["text"].removeprefix("✅ ") for row in markup["inline_keyboard"] for b in row]


def _image_config(req: Any) -> dict[str, str]:
    return req.json["generationConfig"].get("imageConfig", {})


async def _open(tg: FakeTelegram, menu_id: int, press: cd.CallbackData, count: int) -> Call:
    tg.press_button(CHAT, menu_id, cd.encode(press))
    edits = await tg.wait_for("editMessageText", count=count, timeout=20)
    return edits[-1]


@pytest.fixture
async def google() -> AsyncIterator[FakeImageAPI]:
    api = FakeImageAPI(api_key="AIza-fresh", auth_style="x-goog-api-key")
    await api.start()
    yield api
    await api.stop()


async def test_a_fresh_env_with_only_a_google_key_draws_with_gemini_3_1_flash_image(
    tg: FakeTelegram, google: FakeImageAPI, start_bot: StartBot
):
    # The README's "Google AI Studio directly" settings, IMAGE_MODEL left to its default.
    running = await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=google.root,
        image_api_key="AIza-fresh",
        image_api_auth="x-goog-api-key",
        image_model=None,
    )
    assert running.settings.image_model == "gemini-3.1-flash-image"
    tg.send_text(CHAT, "a red bicycle")
    [photo] = await tg.wait_for("sendPhoto", timeout=30)
    [req] = google.requests
    assert req.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert req.headers["x-goog-api-key"] == "AIza-fresh"
    assert "gemini-3.1-flash-image" in photo.params["caption"]
    assert db_rows(running.settings, "select model, status from jobs") == [
        ("gemini-3.1-flash-image", "succeeded")
    ]


@pytest.mark.parametrize("index", range(3), ids=MODELS)
async def test_each_model_in_settings_offers_exactly_its_options_and_sends_them_as_google_documents(
    index: int, tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    model = MODELS[index]
    ratios, sizes, grounding = OFFERS[model]
    running = await _start(start_bot, tmp_path, upstream, MODELS)
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    menu_id = menu.result["message_id"]
    shown = await _open(tg, menu_id, cd.SetModel(index), 1)
    assert f"Model: {model}" in shown.params["text"]
    assert ("Google Search" in _labels(shown)) is grounding
    assert ("Size" in _labels(shown)) is bool(sizes)
    assert ("Google Search:" in shown.params["text"]) is grounding
    ratio_menu = await _open(tg, menu_id, cd.OpenSetting("ratio"), 2)
    assert _labels(ratio_menu)[: len(ratios)] == list(ratios)
    assert _labels(ratio_menu)[len(ratios) :] == ["Match input", "Model default", "⬅️ Back"]
    size_menu = await _open(tg, menu_id, cd.OpenSetting("size"), 3)
    assert _labels(size_menu) == [*sizes, "automatic", "⬅️ Back"]

    # Every ratio (and each size, taken in turn) reaches the fake in Google's own form.
    pairs = list(zip(ratios, itertools.cycle(sizes or (None,)), strict=False))
    for ratio, size in pairs:
        tg.send_text(CHAT, f"a lighthouse --ar {ratio}" + (f" --size {size}" if size else ""))
    await tg.wait_for("sendPhoto", count=len(pairs), timeout=120)
    assert [r.path for r in upstream.requests] == [f"/v1beta/models/{model}:generateContent"] * len(
        pairs
    )
    sent = [_image_config(r) for r in upstream.requests]
    expected = [
        {"aspectRatio": ratio, **({"imageSize": size} if size else {})} for ratio, size in pairs
    ]
    assert sent == expected
    assert {s for _, s in pairs if s} == set(sizes)
    # each job's cost is the list price of its size
    jobs = db_rows(running.settings, "select aspect_ratio, image_size, cost from jobs order by id")
    assert jobs == [(r, s, PRICES[model][s]) for r, s in pairs]


async def test_options_a_model_does_not_take_are_refused_in_the_users_language(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await _start(start_bot, tmp_path, upstream, MODELS)
    zh = tg.user(OTHER, "李", language_code="zh-hans")
    tg.send_text(CHAT, "a banner --ar 8:1")  # 2.5 Flash Image has no wide ratios
    tg.send_text(OTHER, "海报 --search", user=zh)  # nor Google Search
    [ratio_no] = await tg.wait_for("sendMessage", _says("doesn't make"), timeout=20)
    assert ratio_no.params["text"] == (
        "gemini-2.5-flash-image doesn't make 8:1 pictures. It takes: "
        + ", ".join(CLASSIC_RATIOS)
        + "."
    )
    [search_no] = await tg.wait_for("sendMessage", _says("不支持 Google 搜索"), timeout=20)
    assert search_no.params["chat_id"] == OTHER
    assert "gemini-2.5-flash-image" in search_no.params["text"]
    tg.send_text(CHAT, "a banner --size 512")
    await tg.wait_for("sendMessage", _says("one size only"), timeout=20)
    assert upstream.requests == []
    # 3 Pro Image: no 512 tier, no wide ratio; refused before anything is sent
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage", _says("Settings for this chat"))
    await _open(tg, menu.result["message_id"], cd.SetModel(1), 1)
    tg.send_text(CHAT, "a banner --size 0.5k")
    [size_no] = await tg.wait_for("sendMessage", _says("512 pictures"), timeout=20)
    assert size_no.params["text"] == (
        "gemini-3-pro-image doesn't make 512 pictures. It takes: 1K, 2K, 4K."
    )
    tg.send_text(CHAT, "a banner --ar 1:8")
    await tg.wait_for("sendMessage", _says("gemini-3-pro-image doesn't make 1:8"), timeout=20)
    assert upstream.requests == []
    tg.send_text(CHAT, "a banner --ar 21:9 --size 4k")  # and the next message works
    await tg.wait_for("sendPhoto", timeout=30)
    [req] = upstream.requests
    assert _image_config(req) == {"aspectRatio": "21:9", "imageSize": "4K"}


async def test_the_image_limit_follows_the_chosen_model(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await _start(start_bot, tmp_path, upstream, MODELS)
    colors = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90)]
    for color in colors:
        tg.send_photo(CHAT, png(color), media_group_id="on-25", caption="combine them")
    [refusal] = await tg.wait_for("sendMessage", timeout=20)
    assert "at most 3" in refusal.params["text"] and upstream.requests == []
    tg.send_text(CHAT, "/settings")
    [_, menu] = await tg.wait_for("sendMessage", count=2)
    await _open(tg, menu.result["message_id"], cd.SetModel(2), 1)
    for color in colors:
        tg.send_photo(CHAT, png(color), media_group_id="on-31", caption="combine them")
    await tg.wait_for("sendPhoto", timeout=30)
    [req] = upstream.requests
    assert req.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert len(req.input_images) == 4


# --- grounding ---------------------------------------------------------------------------------


async def test_search_flag_grounds_one_request_and_shows_its_sources(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    upstream.grounding_sources = [
        ("https://vertexaisearch.cloud.google.com/grounding-api-redirect/A", "BBC <Weather>"),
        ("https://vertexaisearch.cloud.google.com/grounding-api-redirect/B", "Met Office & co"),
    ]
    await _start(start_bot, tmp_path, upstream, ("gemini-3.1-flash-image",))
    tg.send_text(CHAT, "today's weather in London as a poster --search")
    [photo] = await tg.wait_for("sendPhoto", timeout=30)
    tg.send_text(OTHER, "a quiet lake")  # another chat, no search: no tools, no sources
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    grounded, plain = upstream.requests
    assert grounded.json["tools"] == [{"googleSearch": {}}]
    [words] = grounded.json["contents"][-1]["parts"]
    assert words == {"text": "today's weather in London as a poster"}
    assert "tools" not in plain.json
    caption = photo.params["caption"]
    assert (
        '🔎 Sources: [1] <a href="https://vertexaisearch.cloud.google.com/grounding-api-redirect/A-1">'
        "BBC &lt;Weather&gt;</a> · [2] "
        '<a href="https://vertexaisearch.cloud.google.com/grounding-api-redirect/B-1">'
        "Met Office &amp; co</a>"
    ) in caption
    other = tg.calls_of("sendPhoto")[1]
    assert "Sources" not in other.params["caption"]


async def test_search_kept_on_in_settings_for_one_chat_only_and_overflow_follows(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    upstream.grounding_sources = [
        (f"https://vertexaisearch.cloud.google.com/r/{i}", f"A long page title number {i} " * 3)
        for i in range(10)
    ]
    running = await _start(start_bot, tmp_path, upstream, ("gemini-3-pro-image",))
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    assert "Google Search: off" in menu.params["text"]
    shown = await _open(tg, menu.result["message_id"], cd.ToggleSearch(), 1)
    assert "Google Search: on" in shown.params["text"]
    assert db_rows(running.settings, "select chat_id, search from chat_prefs") == [(CHAT, 1)]
    tg.send_text(CHAT, "two posters of the weather " + "with much detail " * 20 + "--n 2")
    [album] = await tg.wait_for("sendMediaGroup", timeout=30)
    tg.send_text(OTHER, "a quiet lake")
    await tg.wait_for("sendPhoto", timeout=30)
    first, second, other = upstream.requests
    assert first.json["tools"] == second.json["tools"] == [{"googleSearch": {}}]
    assert "tools" not in other.json
    caption = album.params["media"][0]["caption"]
    assert shown_length(caption) <= 1024
    [more] = await tg.wait_for(
        "sendMessage", lambda c: "More sources" in c.params.get("text", ""), timeout=20
    )
    assert more.params["reply_parameters"]["message_id"] == album.result[0]["message_id"]
    links = [
        f'href="https://vertexaisearch.cloud.google.com/r/{i}-{n}"'
        for n in (1, 2)
        for i in range(10)
    ]
    assert all((link in caption) != (link in more.params["text"]) for link in links)
    assert db_rows(running.settings, "select search from jobs order by id") == [(1,), (0,)]


# --- a retired model -------------------------------------------------------------------------


async def test_a_retired_model_is_told_plainly_and_the_admins_hear_once_with_its_successor(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    upstream.retired_models = {"gemini-2.5-flash-image"}
    models = ("gemini-2.5-flash-image", "gemini-3.1-flash-image")
    running = await _start(start_bot, tmp_path, upstream, models)
    zh = tg.user(OTHER, "李", language_code="zh-hans")
    tg.send_text(CHAT, "a red bicycle")
    tg.send_text(OTHER, "一辆红色自行车", user=zh)

    def told(chat: int) -> Callable[[Call], bool]:
        return lambda c: c.params["chat_id"] == chat

    [en] = await tg.wait_for("sendMessage", told(CHAT), timeout=20)
    [cn] = await tg.wait_for("sendMessage", told(OTHER), timeout=20)
    assert "gemini-2.5-flash-image is no longer available" in en.params["text"]
    assert "/settings" in en.params["text"]
    assert "gemini-2.5-flash-image" in cn.params["text"] and "已下线" in cn.params["text"]
    [note] = await tg.wait_for("sendMessage", told(ADMIN), timeout=20)
    assert "model gemini-2.5-flash-image is retired" in note.params["text"]
    assert "gemini-3.1-flash-image" in note.params["text"]
    assert "sk-test" not in note.params["text"]
    assert len(upstream.requests) == 2  # a 404 is not retried: each job asked once
    assert db_rows(running.settings, "select error_code from jobs") == [("model_retired",)] * 2
    # A chat that picks the successor in /settings draws again; the admins heard only once.
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage", _says("Settings for this chat"))
    await _open(tg, menu.result["message_id"], cd.SetModel(1), 1)
    tg.send_text(CHAT, "a red bicycle")
    await tg.wait_for("sendPhoto", timeout=30)
    assert upstream.requests[-1].path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert (
        len(tg.calls_of("sendMessage"))
        == len([c for c in tg.calls_of("sendMessage") if c.params["chat_id"] != ADMIN]) + 1
    )


async def test_a_relay_that_withdrew_a_model_is_a_retired_model_too(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    upstream.retired_models = {"gemini-3-pro-image-preview"}
    await start_bot(image_model="gemini-3-pro-image-preview")  # openai-chat relay, new-api 503
    tg.send_text(CHAT, "a red bicycle")
    tg.send_text(CHAT, "a blue bicycle")
    [first, second] = await tg.wait_for(
        "sendMessage", _says("no longer available"), count=2, timeout=30
    )
    for answer in (first, second):
        assert "gemini-3-pro-image-preview is no longer available" in answer.params["text"]
    notes = [c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == ADMIN]
    assert len(notes) == 1
    assert "gemini-3-pro-image-preview" in notes[0].params["text"]
    assert "use gemini-3-pro-image instead (IMAGE_MODEL" in notes[0].params["text"]
    assert len(upstream.requests) == 2  # a 503 that says "withdrawn" is not retried


async def test_search_on_a_chat_relay_is_refused_and_not_offered(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    await start_bot(image_model="gemini-3.1-flash-image")  # openai-chat: no search tool there
    tg.send_text(CHAT, "/settings")
    [menu] = await tg.wait_for("sendMessage")
    assert "Google Search" not in _labels(menu) and "Google Search" not in menu.params["text"]
    tg.send_text(CHAT, "the weather today --search")
    [no] = await tg.wait_for("sendMessage", _says("--search"), timeout=20)
    assert "isn't available with gemini-3.1-flash-image here" in no.params["text"]
    assert upstream.requests == []
    tg.send_text(CHAT, "the weather today --ar 8:1 --size 512")
    await tg.wait_for("sendPhoto", timeout=30)
    [req] = upstream.requests
    assert "tools" not in req.json
    assert req.json["extra_body"] == {
        "google": {"image_config": {"aspect_ratio": "8:1", "image_size": "512"}}
    }


async def test_3_pro_thought_signatures_go_back_in_a_multi_turn_edit(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
):
    upstream.gemini_answer = "thinking"  # thought parts, then the image with its signature
    await _start(start_bot, tmp_path, upstream, ("gemini-3-pro-image",))
    tg.send_text(CHAT, "a lighthouse at dusk")
    await tg.wait_for("sendPhoto", timeout=30)
    tg.send_text(CHAT, "now make it snow")  # refine is on: edits the last result
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    first, second = upstream.requests
    assert len(first.json["contents"]) == 1
    user, model, again = second.json["contents"]
    assert (user["role"], model["role"], again["role"]) == ("user", "model", "user")
    [image_part] = [p for p in model["parts"] if "inlineData" in p]
    assert image_part["thoughtSignature"] == "sig-1"  # sent back exactly as received
    assert not any(p.get("thought") for p in model["parts"])  # thoughts are not history
    assert upstream.signatures_seen == ["sig-1"]
