"""The relays people use, end to end, each configured exactly as its README example (only the
host is the fake's): OpenRouter, a new-api / one-api style reseller, a relay that bills every
200, and Google's RetryInfo of half a minute."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows, jpeg
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
StartBot = Callable[..., Awaitable[RunningBot]]
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(title: str, fake_root: str) -> dict[str, str]:
    """The settings of the README's example under **title**, its host swapped for the fake's."""
    text = README.read_text("utf-8")
    at = text.index(f"**{title}")
    block = re.search(r"```sh\n(.*?)```", text[at:], re.S)
    assert block is not None, title
    settings = dict(line.split("=", 1) for line in block.group(1).splitlines() if line)
    url = urlsplit(settings["IMAGE_API_BASE_URL"])
    settings["IMAGE_API_BASE_URL"] = fake_root + url.path
    return {k.lower(): v for k, v in settings.items()}


@pytest.fixture
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[FakeImageAPI]:
    key, auth = request.param
    api = FakeImageAPI(api_key=key, auth_style=auth)
    await api.start()
    yield api
    await api.stop()


def _texts(tg: FakeTelegram) -> list[str]:
    return [str(c.params.get("text", "")) for c in tg.calls_of("sendMessage")]


def _has_retry(call: Any) -> bool:
    markup = call.params.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return any(b.get("callback_data", "").startswith("regen:") for row in rows for b in row)


# --- OpenRouter ---------------------------------------------------------------------------


@pytest.mark.parametrize("relay", [("sk-or-v1-test", "bearer")], indirect=True)
async def test_openrouter_example(tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot):
    relay.answer_shape = "openrouter"
    example = readme_example("OpenRouter", relay.root)
    assert example["image_api_key"] == "sk-or-v1-..."
    await start_bot(**{**example, "image_api_key": "sk-or-v1-test"})
    tg.send_text(CHAT, "a fox in the snow --ar 16:9 --size 512")
    await tg.wait_for("sendPhoto", timeout=30)
    first = relay.requests[0]
    assert first.path == "/api/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-or-v1-test"
    assert first.json["modalities"] == ["image", "text"]
    # Google's 512 tier is OpenRouter's 0.5K
    assert first.json["image_config"] == {"aspect_ratio": "16:9", "image_size": "0.5K"}
    assert "extra_body" not in first.json
    assert first.json["model"] == "google/gemini-3.1-flash-image"
    tg.send_text(CHAT, "/new")
    tg.send_photo(CHAT, jpeg((30, 160, 90)), caption="give it a hat")
    [_, edited] = await tg.wait_for("sendPhoto", count=2, timeout=30)
    assert close(relay.requests[-1].input_images[0].color, (30, 160, 90))
    assert edited.params.get("caption")


# --- new-api / one-api style relays -------------------------------------------------------


async def _new_api_bot(relay: FakeImageAPI, start_bot: StartBot) -> RunningBot:
    example = readme_example("new-api / one-api resellers", relay.root)
    assert example["image_api_key"] == "sk-..." and "image_api_auth" not in example
    return await start_bot(**{**example, "image_api_key": "sk-newapi"})


@pytest.mark.parametrize("relay", [("sk-newapi", "bearer")], indirect=True)
async def test_new_api_markdown_images_of_any_type_and_thoughts_left_out(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    relay.answer_shape = "new-api"
    relay.new_api_formats = ("jpeg", "webp")
    bot = await _new_api_bot(relay, start_bot)
    tg.send_text(CHAT, "two swatches")
    [album] = await tg.wait_for("sendMediaGroup", timeout=30)
    assert len(album.params["media"]) == 2
    rows = db_rows(bot.settings, "select mime from images where job_id is not null order by id")
    assert rows == [("image/jpeg",), ("image/webp",)]
    shown = " ".join(_texts(tg)) + " ".join(
        str(c.params.get("caption", "")) for c in tg.calls_of("sendPhoto", "sendMediaGroup")
    )
    assert "Planning" not in shown
    [(model_text,)] = db_rows(bot.settings, "select coalesce(model_text, '') from jobs")
    assert "Planning" not in model_text


@pytest.mark.parametrize("relay", [("sk-newapi", "bearer")], indirect=True)
async def test_new_api_blocked_prompt_is_told_and_never_retried(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await _new_api_bot(relay, start_bot)
    relay.fail_next("new-api-blocked", reason="PROHIBITED_CONTENT")
    tg.send_text(CHAT, "something forbidden")
    [told] = await tg.wait_for("sendMessage", lambda c: "safety filters" in c.params["text"])
    # never resent by the bot; the user may try again (with the note on how to rephrase)
    assert len(relay.requests) == 1 and _has_retry(told) and "\n\n" in told.params["text"]
    tg.send_text(CHAT, "something fine")
    await tg.wait_for("sendPhoto", timeout=30)


@pytest.mark.parametrize("relay", [("sk-newapi", "bearer")], indirect=True)
async def test_new_api_content_filter_is_no_image_with_a_retry_button(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await _new_api_bot(relay, start_bot)
    relay.fail_next("new-api-filter")
    tg.send_text(CHAT, "a cat")
    [told] = await tg.wait_for("sendMessage", lambda c: "content filter" in c.params["text"])
    assert len(relay.requests) == 1 and _has_retry(told)
    tg.press_button(CHAT, told.result["message_id"], button(told, "regen:"))
    await tg.wait_for("sendPhoto", timeout=30)
    assert len(relay.requests) == 2 and relay.requests[1].json["messages"][-1]["content"] == "a cat"


@pytest.mark.parametrize("relay", [("sk-newapi", "bearer")], indirect=True)
async def test_new_api_empty_500_is_retried_like_a_busy_upstream(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await _new_api_bot(relay, start_bot)
    relay.fail_next("new-api-empty")
    tg.send_text(CHAT, "a cat")
    await tg.wait_for("sendPhoto", timeout=30)
    assert len(relay.requests) == 2
    relay.fail_next("new-api-empty", times=3)
    tg.send_text(CHAT, "a dog")
    [told] = await tg.wait_for("sendMessage", lambda c: "busy" in c.params["text"], timeout=30)
    assert len(relay.requests) == 5 and _has_retry(told)


# --- a relay that bills every 200 ---------------------------------------------------------


@pytest.mark.parametrize("relay", [("sk-bills", "bearer")], indirect=True)
@pytest.mark.parametrize(
    ("dialect", "fault", "words"),
    [
        ("openai-chat", "no-content", "didn't produce a picture"),
        ("openai-chat", "200-error-500", "internal error"),
        ("gemini", "finish-NO_IMAGE", "didn't produce a picture"),
        ("gemini", "200-error-500", "internal error"),
        ("openai-images", "200-error-500", "internal error"),
    ],
)
async def test_a_200_without_an_image_is_never_resent(
    dialect: str,
    fault: str,
    words: str,
    tg: FakeTelegram,
    relay: FakeImageAPI,
    start_bot: StartBot,
):
    relay.bills_every_200 = True
    base = relay.root if dialect == "gemini" else f"{relay.root}/v1"
    await start_bot(
        image_api_dialect=dialect,
        image_api_base_url=base,
        image_api_key="sk-bills",
        image_model="gemini-3.1-flash-image",
    )
    relay.fail_next(fault)
    tg.send_text(CHAT, "a lighthouse")
    [told] = await tg.wait_for("sendMessage", lambda c: words in c.params["text"], timeout=30)
    await asyncio.sleep(0.3)  # a resend, if any, would have gone out by now
    assert (len(relay.requests), relay.charges) == (1, 1) and _has_retry(told)
    tg.press_button(CHAT, told.result["message_id"], button(told, "regen:"))
    await tg.wait_for("sendPhoto", timeout=30)
    assert (len(relay.requests), relay.charges) == (2, 2)


@pytest.mark.parametrize("relay", [("sk-bills", "bearer")], indirect=True)
async def test_the_models_words_come_with_a_retry_and_no_resend(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    relay.bills_every_200 = True
    relay.answer_shape = "text-only"
    await start_bot(image_api_key="sk-bills", image_api_base_url=f"{relay.root}/v1")
    tg.send_text(CHAT, "a lighthouse")
    [told] = await tg.wait_for("sendMessage", lambda c: "without a picture" in c.params["text"])
    assert "彩虹桥" in told.params["text"] and _has_retry(told)
    assert (len(relay.requests), relay.charges) == (1, 1)


# --- Gemini's RetryInfo -------------------------------------------------------------------


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
async def test_a_retry_info_of_34_s_is_told_at_once_on_the_only_endpoint(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="AIza-google",
        image_api_auth="x-goog-api-key",
    )
    relay.fail_next("429", retry_after=34.4)
    tg.send_text(CHAT, "a red panda")
    [told] = await tg.wait_for("sendMessage", lambda c: "35 s" in c.params["text"], timeout=10)
    assert len(relay.requests) == 1 and _has_retry(told)
    # a second request while the endpoint cools down hears the same, and costs no call
    tg.send_text(CHAT, "a blue panda")
    await tg.wait_for("sendMessage", lambda c: "wait about" in c.params["text"], count=2)
    assert len(relay.requests) == 1


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
async def test_a_retry_info_of_34_s_moves_to_the_next_endpoint_at_once(
    tg: FakeTelegram,
    relay: FakeImageAPI,
    upstream: FakeImageAPI,
    start_bot: StartBot,
    tmp_path: Path,
):
    path = tmp_path / "providers.toml"
    path.write_text(f"""
[[endpoint]]
name = "google"
dialect = "gemini"
base_url = "{relay.root}"
api_key = "AIza-google"
auth = "x-goog-api-key"

[[endpoint]]
name = "relay"
dialect = "openai-chat"
base_url = "{upstream.root}/v1"
api_key = "sk-test"
""")
    bot = await start_bot(image_providers_file=str(path))
    relay.fail_next("429", retry_after=34.4)
    tg.send_text(CHAT, "a red panda")
    await tg.wait_for("sendPhoto", timeout=10)
    assert (len(relay.requests), len(upstream.requests)) == (1, 1)
    assert db_rows(bot.settings, "select endpoint from jobs") == [("relay",)]
