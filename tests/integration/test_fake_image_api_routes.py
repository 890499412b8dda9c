"""The fake image API itself, spoken to with raw httpx: the gemini and openai-images routes
answer in their real shapes, and record what tests need (input pixels, turns, signatures)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.image_api import DRAFT_COLOR, TEXT_ONLY_ANSWER, FakeImageAPI, describe_image

MODEL = "gemini-2.5-flash-image"
GEN = f"/v1beta/models/{MODEL}:generateContent"


@pytest.fixture
async def api() -> AsyncIterator[FakeImageAPI]:
    fake = FakeImageAPI(api_key="AIza-test", auth_style="x-goog-api-key")
    fake.output_size = (24, 16)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http(api: FakeImageAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.root, trust_env=False) as client:
        yield client


def b64png(color: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def text_turn(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def gen(http: httpx.AsyncClient, contents: list[dict[str, Any]], **kw: Any) -> httpx.Response:
    kw.setdefault("headers", {"x-goog-api-key": "AIza-test"})
    return await http.post(GEN, json={"contents": contents}, **kw)


def parts_of(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    parts: list[dict[str, Any]] = resp.json()["candidates"][0]["content"]["parts"]
    return parts


def color_of(b64: str) -> tuple[int, int, int]:
    return describe_image(base64.b64decode(b64)).color


# --- gemini -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "kw"),
    [
        ("x-goog-api-key", {"headers": {"x-goog-api-key": "AIza-test"}}),
        ("query-key", {"headers": {}, "params": {"key": "AIza-test"}}),
        ("bearer", {"headers": {"Authorization": "Bearer AIza-test"}}),
        ("raw", {"headers": {"Authorization": "AIza-test"}}),
    ],
)
async def test_gemini_auth_styles(
    api: FakeImageAPI, http: httpx.AsyncClient, style: str, kw: dict[str, Any]
) -> None:
    api.auth_style = style
    assert (await gen(http, [text_turn("a cat")], **kw)).status_code == 200


async def test_gemini_wrong_key_is_googles_400_api_key_invalid(http: httpx.AsyncClient) -> None:
    resp = await gen(http, [text_turn("a cat")], headers={"x-goog-api-key": "AIza-wrong"})
    error = resp.json()["error"]
    assert (resp.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


async def test_gemini_image_answer_and_recorded_history(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    contents = [
        {
            "role": "user",
            "parts": [
                {"text": "draw"},
                {"inlineData": {"mimeType": "image/png", "data": b64png((9, 9, 9))}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {
                    "inline_data": {"mime_type": "image/png", "data": b64png((50, 60, 70))},
                    "thoughtSignature": "sig-old",
                }
            ],
        },
        text_turn("now blue"),
    ]
    body = (await gen(http, contents)).json()
    assert body["candidates"][0]["finishReason"] == "STOP" and body["usageMetadata"]
    [text, image] = body["candidates"][0]["content"]["parts"]
    assert text["text"] and color_of(image["inlineData"]["data"]) == api.outputs[0]
    [sent] = api.requests
    assert sent.turns == 3
    assert [i.color for i in sent.input_images] == [(9, 9, 9), (50, 60, 70)]
    assert api.signatures_seen == ["sig-old"]


async def test_gemini_snake_thinking_and_text_only(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.gemini_answer = "snake"
    assert "inline_data" in parts_of(await gen(http, [text_turn("x")]))[1]
    api.gemini_answer = "thinking"
    parts = parts_of(await gen(http, [text_turn("x")]))
    thoughts = [p for p in parts if p.get("thought")]
    assert len([p for p in thoughts if "inlineData" in p]) == 2
    drafts = [p for p in thoughts if "inlineData" in p]
    assert all(color_of(p["inlineData"]["data"]) == DRAFT_COLOR for p in drafts)
    assert [p["text"] for p in thoughts if "text" in p] == api.thoughts
    final = parts[-1]
    assert final["thoughtSignature"] == "sig-2" and not final.get("thought")
    assert color_of(final["inlineData"]["data"]) == api.outputs[-1]
    api.gemini_answer = "text-only"
    assert parts_of(await gen(http, [text_turn("x")])) == [{"text": TEXT_ONLY_ANSWER}]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "safety-block",
            lambda b: b["promptFeedback"]["blockReason"] == "SAFETY" and "candidates" not in b,
        ),
        ("finish-IMAGE_SAFETY", lambda b: b["candidates"][0]["finishReason"] == "IMAGE_SAFETY"),
        ("finish-NO_IMAGE", lambda b: b["candidates"][0]["finishReason"] == "NO_IMAGE"),
        ("finish-RECITATION", lambda b: b["candidates"][0]["finishReason"] == "RECITATION"),
    ],
)
async def test_gemini_refusals_are_200s(
    api: FakeImageAPI, http: httpx.AsyncClient, fault: str, check: Any
) -> None:
    api.fail_next(fault)
    resp = await gen(http, [text_turn("x")])
    assert resp.status_code == 200 and check(resp.json())


@pytest.mark.parametrize(
    ("fault", "status", "google_status"),
    [
        ("429", 429, "RESOURCE_EXHAUSTED"),
        ("quota-per-day", 429, "RESOURCE_EXHAUSTED"),
        ("404-model", 404, "NOT_FOUND"),
        ("500", 500, "INTERNAL"),
        ("400", 400, "INVALID_ARGUMENT"),
    ],
)
async def test_gemini_http_errors_in_googles_shape(
    api: FakeImageAPI, http: httpx.AsyncClient, fault: str, status: int, google_status: str
) -> None:
    api.fail_next(fault)
    resp = await gen(http, [text_turn("x")])
    error = resp.json()["error"]
    assert (resp.status_code, error["code"], error["status"]) == (status, status, google_status)
    details = {d["@type"].rsplit(".", 1)[1]: d for d in error.get("details", [])}
    if fault == "429":
        assert details["RetryInfo"]["retryDelay"] == "1s"
    if fault == "quota-per-day":
        assert "PerDay" in details["QuotaFailure"]["violations"][0]["quotaId"]
    if fault == "404-model":
        assert f"models/{MODEL} is not found" in error["message"]


async def test_gemini_malformed_and_truncated(api: FakeImageAPI, http: httpx.AsyncClient) -> None:
    api.fail_next("malformed-json")
    resp = await gen(http, [text_turn("x")])
    assert resp.content.startswith(b'{"candidates"')
    with pytest.raises(ValueError):
        resp.json()
    api.fail_next("truncated-base64")
    data = parts_of(await gen(http, [text_turn("x")]))[1]["inlineData"]["data"]
    assert len(data) % 4 == 2


STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"


async def sse_events(http: httpx.AsyncClient, **kw: Any) -> tuple[int, list[dict[str, Any]]]:
    """The status and the JSON of each event of a streamed call (`data: {json}` CRLF CRLF)."""
    resp = await http.post(
        STREAM,
        params={"alt": "sse"},
        headers={"x-goog-api-key": "AIza-test"},
        json={"contents": [text_turn("x")]},
        **kw,
    )
    if resp.status_code != 200:
        return resp.status_code, [resp.json()]
    assert resp.headers["content-type"].startswith("text/event-stream")
    raw = resp.content
    assert raw.endswith(b"\r\n\r\n")
    events = raw.split(b"\r\n\r\n")[:-1]
    assert all(e.startswith(b"data: ") for e in events)
    return 200, [json.loads(e.removeprefix(b"data: ")) for e in events]


def chunk_parts(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = chunk["candidates"][0]["content"]["parts"]
    return parts


async def test_gemini_stream_sends_thoughts_first_then_the_image_then_the_finish(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.gemini_answer = "thinking"
    status, events = await sse_events(http)
    assert status == 200
    parts = [p for e in events for p in chunk_parts(e)]
    thoughts = [p["text"] for p in parts if p.get("thought") and "text" in p]
    assert thoughts == api.thoughts
    first_real = next(i for i, p in enumerate(parts) if not p.get("thought"))
    assert all(p.get("thought") for p in parts[:first_real])
    assert color_of(parts[first_real]["inlineData"]["data"]) == api.outputs[-1]
    assert parts[first_real]["thoughtSignature"] == "sig-1"
    last = events[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["totalTokenCount"] == 1300
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])


async def test_gemini_stream_cuts_words_and_spaces_thoughts(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    status, events = await sse_events(http)
    texts = [p["text"] for e in events for p in chunk_parts(e) if "text" in p]
    assert status == 200 and len(texts) == 3 and "".join(texts) == "Here is your image."
    api.gemini_answer, api.thought_delay = "thinking", 0.2
    task = asyncio.ensure_future(sse_events(http))
    await asyncio.sleep(0.3)  # the first thought is out, the image not yet: it waits its turn
    assert not task.done()
    status, events = await task
    assert status == 200 and len(api.outputs) == 2


async def test_gemini_stream_errors_before_it_starts_are_json_and_refusals_are_events(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.fail_next("429")
    status, [body] = await sse_events(http)
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    api.fail_next("safety-block")
    status, [event] = await sse_events(http)
    assert status == 200 and event["promptFeedback"]["blockReason"] == "SAFETY"
    api.fail_next("finish-IMAGE_SAFETY")
    status, [event] = await sse_events(http)
    assert event["candidates"][0]["finishReason"] == "IMAGE_SAFETY"


async def test_gemini_stream_can_break_off_with_an_error_event(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.gemini_answer = "thinking"
    api.fail_next("mid-stream")
    status, events = await sse_events(http)
    assert status == 200 and events[-1]["error"]["status"] == "INTERNAL"
    assert all(p.get("thought") for e in events[:-1] for p in chunk_parts(e))
    assert len(events) > 1


async def test_gemini_stream_without_sse_is_one_json_array(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    resp = await http.post(
        STREAM, headers={"x-goog-api-key": "AIza-test"}, json={"contents": [text_turn("x")]}
    )
    chunks = resp.json()
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_gemini_unknown_method_is_not_found(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        f"/v1beta/models/{MODEL}:countTokens", headers={"x-goog-api-key": "AIza-test"}, json={}
    )
    assert resp.status_code == 404 and resp.json()["error"]["status"] == "NOT_FOUND"


# --- openai-images ----------------------------------------------------------------------------


async def test_images_edit_records_images_then_mask_and_answers_n(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.auth_style = "bearer"
    body = {
        "model": MODEL,
        "prompt": "p",
        "n": 2,
        "image": [
            f"data:image/png;base64,{b64png((1, 2, 3))}",
            f"data:image/png;base64,{b64png((4, 5, 6))}",
        ],
        "mask": f"data:image/png;base64,{b64png((255, 255, 255))}",
    }
    resp = await http.post(
        "/v1/images/edits", json=body, headers={"Authorization": "Bearer AIza-test"}
    )
    data = resp.json()["data"]
    assert [color_of(d["b64_json"]) for d in data] == api.outputs and len(data) == 2
    assert [i.color for i in api.requests[0].input_images] == [
        (1, 2, 3),
        (4, 5, 6),
        (255, 255, 255),
    ]
    assert api.requests[0].turns == 1


async def test_images_errors_are_openai_shaped(api: FakeImageAPI, http: httpx.AsyncClient) -> None:
    api.auth_style = "bearer"
    resp = await http.post("/v1/images/generations", json={"model": MODEL, "prompt": "p"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    api.fail_next("404-model")
    resp = await http.post(
        "/v1/images/generations",
        json={"model": MODEL, "prompt": "p"},
        headers={"Authorization": "Bearer AIza-test"},
    )
    assert resp.status_code == 404 and MODEL in resp.json()["error"]["message"]


def test_poll_faults_are_checked() -> None:
    with pytest.raises(ValueError):
        FakeImageAPI().fail_next_poll("task-failed")


async def test_over_capacity_the_gemini_route_answers_google_429_with_retry_info(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.capacity = 1
    api.capacity_retry_after = 3
    api.hold_next()
    first = asyncio.create_task(gen(http, [text_turn("one")]))
    await api.wait_requests(1)
    busy = await gen(http, [text_turn("two")])
    assert busy.status_code == 429
    error = busy.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"} in error[
        "details"
    ]
    api.release()
    assert (await first).status_code == 200
    assert (api.over_capacity, api.most_in_flight, api.in_flight) == (1, 1, 0)


async def test_over_capacity_the_openai_routes_answer_429_with_retry_after() -> None:
    fake = FakeImageAPI(api_key="sk-test")
    await fake.start()
    try:
        fake.capacity = 1
        fake.capacity_retry_after = 0.5
        fake.hold_next()
        async with httpx.AsyncClient(base_url=fake.root, trust_env=False) as client:
            headers = {"Authorization": "Bearer sk-test"}
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            first = asyncio.create_task(
                client.post("/v1/chat/completions", json=body, headers=headers)
            )
            await fake.wait_requests(1)
            busy = await client.post(
                "/v1/images/generations", json={"model": MODEL, "prompt": "hi"}, headers=headers
            )
            fake.release()
            assert (await first).status_code == 200
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "0.5"
        assert busy.json()["error"]["code"] == "rate_limit_exceeded"
    finally:
        await fake.stop()


# --- Google's checks of imageConfig, grounding and retired models ------------------------------


async def _gen_as(http: httpx.AsyncClient, model: str, body: dict[str, Any]) -> httpx.Response:
    return await http.post(
        f"/v1beta/models/{model}:generateContent",
        json={"contents": [text_turn("a cat")], **body},
        headers={"x-goog-api-key": "AIza-test"},
    )


@pytest.mark.parametrize(
    ("model", "config", "ok"),
    [
        ("gemini-3.1-flash-image", {"aspectRatio": "8:1", "imageSize": "512"}, True),
        ("gemini-3.1-flash-image-preview", {"aspectRatio": "1:4", "imageSize": "4K"}, True),
        ("gemini-3-pro-image", {"aspectRatio": "21:9", "imageSize": "4K"}, True),
        ("gemini-3-pro-image", {"imageSize": "512"}, False),
        ("gemini-3-pro-image-preview", {"aspectRatio": "8:1"}, False),
        ("gemini-3-pro-image", {"imageSize": "4k"}, False),  # lowercase is rejected (GI)
        ("gemini-2.5-flash-image", {"aspectRatio": "16:9"}, True),
        ("gemini-2.5-flash-image", {"imageSize": "1K"}, False),
        ("gemini-2.5-flash-image", {"aspectRatio": "4:1"}, False),
    ],
)
async def test_image_config_is_checked_per_model_like_google(
    http: httpx.AsyncClient, model: str, config: dict[str, str], ok: bool
) -> None:
    body = {"generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": config}}
    resp = await _gen_as(http, model, body)
    if ok:
        assert resp.status_code == 200
        return
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert model in error["message"]


async def test_google_search_is_answered_with_grounding_metadata(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    grounded = await _gen_as(http, "gemini-3.1-flash-image", {"tools": [{"googleSearch": {}}]})
    plain = await _gen_as(http, "gemini-3.1-flash-image", {})
    meta = grounded.json()["candidates"][0]["groundingMetadata"]
    assert [c["web"]["title"] for c in meta["groundingChunks"]] == [
        t for _, t in api.grounding_sources
    ]
    assert all(c["web"]["uri"].endswith("-1") for c in meta["groundingChunks"])
    assert "renderedContent" in meta["searchEntryPoint"]
    assert "groundingMetadata" not in plain.json()["candidates"][0]
    refused = await _gen_as(http, "gemini-2.5-flash-image", {"tools": [{"googleSearch": {}}]})
    assert refused.status_code == 400


async def test_a_retired_model_is_googles_404_and_new_apis_503(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.retired_models = {"gemini-2.5-flash-image"}
    resp = await _gen_as(http, "gemini-2.5-flash-image", {})
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert error["status"] == "NOT_FOUND"
    assert error["message"].startswith("models/gemini-2.5-flash-image is not found")
    assert (await _gen_as(http, "gemini-3.1-flash-image", {})).status_code == 200
    api.api_key, api.auth_style = "sk-relay", "bearer"
    chat = await http.post(
        "/v1/chat/completions",
        json={"model": "gemini-2.5-flash-image", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": "Bearer sk-relay"},
    )
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "model_not_found"
    assert "无可用渠道" in chat.json()["error"]["message"]
