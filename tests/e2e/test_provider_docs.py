"""One end-to-end run per provider document in shared/seeds, configured exactly as the README's
example for it (only the host is the fake's), plus Google's API directly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import close, db_rows, jpeg
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import FakeTelegram

CHAT = 1001
StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[FakeImageAPI]:
    key, auth = request.param
    api = FakeImageAPI(api_key=key, auth_style=auth)
    await api.start()
    yield api
    await api.stop()


async def _generate_and_edit(tg: FakeTelegram, relay: FakeImageAPI) -> None:
    tg.send_text(CHAT, "a red panda, watercolor")
    await tg.wait_for("sendPhoto", timeout=30)
    tg.send_text(CHAT, "/new")
    tg.send_photo(CHAT, jpeg((30, 160, 90)), caption="give it a hat")
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    assert close(relay.requests[-1].input_images[0].color, (30, 160, 90))


def _gemini_parts(req: Any) -> list[dict[str, Any]]:
    return [p for turn in req.json["contents"] for p in turn["parts"]]


@pytest.mark.parametrize("relay", [("sk-aicore", "bearer")], indirect=True)
async def test_aicore_seed_000_001(tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot):
    await start_bot(
        image_api_dialect="openai-chat",
        image_api_base_url=f"{relay.root}/v1",
        image_api_key="sk-aicore",
        image_model="gemini-3.1-flash-image",
    )
    await _generate_and_edit(tg, relay)
    assert relay.requests[0].path == "/v1/chat/completions"
    assert relay.requests[0].headers["authorization"] == "Bearer sk-aicore"


@pytest.mark.parametrize("relay", [("sk-rainboxs", "raw")], indirect=True)
async def test_rainboxs_seed_004_hd(tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot):
    relay.answer_shape = "markdown-url"
    await start_bot(
        image_api_dialect="openai-chat",
        image_api_base_url=f"{relay.root}/v1",
        image_api_key="sk-rainboxs",
        image_api_auth="raw",
        image_api_extra_body='{"group":"default"}',
        image_model="gemini-2.5-flash-image-hd",
    )
    await _generate_and_edit(tg, relay)
    body = relay.requests[0].json
    assert body["group"] == "default" and body["stream"] is False
    assert body["model"] == "gemini-2.5-flash-image-hd"
    assert relay.requests[0].headers["authorization"] == "sk-rainboxs"
    relay.big_output_bytes = 16_000_000  # the -hd model's 4K answer, 10-20 MB
    tg.send_text(CHAT, "now in 4K")
    [doc] = await tg.wait_for("sendDocument", timeout=60)
    assert doc.files["document"] == relay.output_bytes[-1]


@pytest.mark.parametrize("relay", [("sk-qiniu", "bearer")], indirect=True)
async def test_qiniu_seed_002_images_api(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await start_bot(
        image_api_dialect="openai-images",
        image_api_base_url=f"{relay.root}/v1",
        image_api_key="sk-qiniu",
        image_model="gemini-3.1-flash-image",
    )
    await _generate_and_edit(tg, relay)
    assert [r.path for r in relay.requests] == ["/v1/images/generations", "/v1/images/edits"]
    assert relay.requests[1].json["image"].startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize("relay", [("sk-qiniu", "bearer")], indirect=True)
async def test_qiniu_async_task_shows_progress(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    relay.images_answer = "task"
    relay.latency = 0.3
    await start_bot(
        image_api_dialect="openai-images",
        image_api_base_url=f"{relay.root}/v1",
        image_api_key="sk-qiniu",
        image_model="kling-v2",
    )
    tg.send_text(CHAT, "a comic of two cats")
    await tg.wait_for("sendPhoto", timeout=40)
    assert any(r.path.startswith("/v1/images/tasks/") for r in relay.requests)
    notes = [c.params.get("text", "") for c in tg.calls_of("sendMessage", "editMessageText")]
    assert any("Task:" in n for n in notes)


@pytest.mark.parametrize("relay", [("sk-aaigc", "bearer")], indirect=True)
async def test_aaigc_seed_003_gemini_native(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="sk-aaigc",
        image_model="gemini-3.1-flash-image",
    )
    await _generate_and_edit(tg, relay)
    req = relay.requests[0]
    assert req.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert req.json["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert req.headers["authorization"] == "Bearer sk-aaigc"


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
async def test_google_direct_multi_turn_history(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    relay.gemini_answer = "thinking"
    await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="AIza-google",
        image_api_auth="x-goog-api-key",
        image_model="gemini-3-pro-image-preview",
    )
    await _generate_and_edit(tg, relay)
    assert relay.requests[0].headers["x-goog-api-key"] == "AIza-google"
    tg.send_text(CHAT, "now make it blue")
    await tg.wait_for("sendPhoto", count=3, timeout=30)
    third = relay.requests[-1]
    roles = [turn["role"] for turn in third.json["contents"]]
    assert roles == ["user", "model", "user"]
    # the model turn carries the previous result (by pixels) and its thought signature
    assert any(close(i.color, relay.outputs[1]) for i in third.input_images)
    assert any("thoughtSignature" in p for p in _gemini_parts(third))
    assert not any(p.get("thought") for p in _gemini_parts(third))


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
async def test_a_job_row_in_the_old_gemini_shape_still_continues(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    """Jobs kept before turns were neutral hold Gemini parts, images as {"blob": sha256}."""
    relay.gemini_answer = "thinking"
    bot = await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="AIza-google",
        image_api_auth="x-goog-api-key",
        image_model="gemini-3-pro-image-preview",
    )
    tg.send_text(CHAT, "a red panda, watercolor")
    await tg.wait_for("sendPhoto", timeout=30)
    sql = "select jobs.id, sha256, mime from jobs join images on images.job_id = jobs.id"
    [(job_id, sha, mime)] = db_rows(bot.settings, sql)
    old = [
        {"text": "Here it is.", "thoughtSignature": "sig-old-text"},
        {"inlineData": {"mimeType": mime, "blob": sha}, "thoughtSignature": "sig-old-image"},
    ]
    db_rows(bot.settings, "update jobs set model_parts = ? where id = ?", json.dumps(old), job_id)
    tg.send_text(CHAT, "now make it blue")
    await tg.wait_for("sendPhoto", count=2, timeout=30)
    second = relay.requests[-1]
    assert [turn["role"] for turn in second.json["contents"]] == ["user", "model", "user"]
    model = second.json["contents"][1]["parts"]
    assert model[0] == {"text": "Here it is.", "thoughtSignature": "sig-old-text"}
    assert model[1]["thoughtSignature"] == "sig-old-image"
    [earlier] = second.input_images  # the first result, its bytes back inline
    assert close(earlier.color, relay.outputs[0])


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
async def test_gemini_safety_block_is_explained(
    tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="AIza-google",
        image_api_auth="x-goog-api-key",
    )
    relay.fail_next("safety-block")
    tg.send_text(CHAT, "something unsafe")
    await tg.wait_for("sendMessage", lambda c: "safety filters" in c.params.get("text", ""))
    tg.send_text(CHAT, "something fine")
    await tg.wait_for("sendPhoto", timeout=30)


@pytest.mark.parametrize("relay", [("AIza-google", "x-goog-api-key")], indirect=True)
@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("finish-IMAGE_SAFETY", "safety filters"),
        ("finish-NO_IMAGE", "didn't produce a picture"),
        ("finish-RECITATION", "existing (copyrighted) content"),
        ("quota-per-day", "quota"),
    ],
)
async def test_gemini_refusals_are_explained(
    fault: str, words: str, tg: FakeTelegram, relay: FakeImageAPI, start_bot: StartBot
):
    await start_bot(
        image_api_dialect="gemini",
        image_api_base_url=relay.root,
        image_api_key="AIza-google",
        image_api_auth="x-goog-api-key",
    )
    relay.fail_next(fault)
    tg.send_text(CHAT, "a picture")
    await tg.wait_for("sendMessage", lambda c: words in c.params.get("text", ""))
    tg.send_text(CHAT, "another picture")
    await tg.wait_for("sendPhoto", timeout=30)
