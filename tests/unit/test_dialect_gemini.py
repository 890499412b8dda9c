"""The gemini dialect on JSON alone: golden request bodies and every answer shape of §1A/§2."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from bot.providers.base import Endpoint, ImageRequest, InputImage, Turn
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.extract import error_from_http
from bot.providers.gemini import build_request, model_takes_image_size, parse_response

EP = Endpoint(name="g", dialect="gemini", base_url="https://x", api_key="k")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()


def test_text_to_image_body() -> None:
    body = build_request(ImageRequest(prompt="a cat", model="gemini-2.5-flash-image"), EP)
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "a cat"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_edit_and_composition_bodies() -> None:
    images = [InputImage(PNG, "image/png"), InputImage(b"\xff\xd8\xffjpeg", "image/jpeg")]
    body = build_request(ImageRequest(prompt="merge", model="m", images=images), EP)
    assert body["contents"][0]["parts"] == [
        {"text": "merge"},
        {"inlineData": {"mimeType": "image/png", "data": B64}},
        {
            "inlineData": {
                "mimeType": "image/jpeg",
                "data": base64.b64encode(b"\xff\xd8\xffjpeg").decode(),
            }
        },
    ]


def test_aspect_ratio_and_size_only_where_the_model_takes_it() -> None:
    pro = build_request(
        ImageRequest(
            prompt="p", model="gemini-3-pro-image-preview", aspect_ratio="16:9", image_size="2k"
        ),
        EP,
    )
    assert pro["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    flash = build_request(
        ImageRequest(
            prompt="p", model="gemini-2.5-flash-image", aspect_ratio="16:9", image_size="2K"
        ),
        EP,
    )
    assert flash["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert model_takes_image_size("gemini-3.1-flash-image-preview")
    assert not model_takes_image_size("gemini-2.5-flash-image-hd")


def test_history_is_sent_verbatim_and_extra_body_merged() -> None:
    model_parts = [
        {"inlineData": {"mimeType": "image/png", "data": B64}, "thoughtSignature": "sig-1"}
    ]
    history = [Turn("user", [{"text": "draw"}]), Turn("model", model_parts)]
    ep = Endpoint(
        name="g",
        dialect="gemini",
        base_url="https://x",
        api_key="k",
        extra_body={"safetySettings": []},
    )
    body = build_request(ImageRequest(prompt="bluer", model="m", history=history), ep)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "draw"}]},
        {"role": "model", "parts": model_parts},
        {"role": "user", "parts": [{"text": "bluer"}]},
    ]
    assert body["safetySettings"] == []


def _answer(parts: list[dict], finish: str = "STOP", **extra: object) -> bytes:
    return json.dumps(
        {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
            **extra,
        }
    ).encode()


def test_camel_case_image_and_text() -> None:
    parsed = parse_response(
        _answer(
            [{"text": "Here."}, {"inlineData": {"mimeType": "image/png", "data": B64}}],
            usageMetadata={"totalTokenCount": 1300},
        )
    )
    assert [i.data for i in parsed.images] == [PNG] and parsed.text == "Here."
    assert parsed.usage == {"totalTokenCount": 1300}


def test_snake_case_image() -> None:
    parsed = parse_response(_answer([{"inline_data": {"mime_type": "image/png", "data": B64}}]))
    assert parsed.images[0].mime == "image/png"


def test_thinking_parts_are_skipped_and_the_signature_kept() -> None:
    final = {"inlineData": {"mimeType": "image/png", "data": B64}, "thoughtSignature": "s9"}
    parsed = parse_response(
        _answer(
            [
                {"text": "planning", "thought": True},
                {"inlineData": {"mimeType": "image/png", "data": B64}, "thought": True},
                {"inlineData": {"mimeType": "image/png", "data": B64}, "thought": True},
                final,
            ]
        )
    )
    assert len(parsed.images) == 1
    assert parsed.model_turn is not None and parsed.model_turn.parts == [final]


def test_text_only_stop_is_an_answer_not_an_error() -> None:
    parsed = parse_response(_answer([{"text": "I can only describe it."}]))
    assert parsed.images == [] and parsed.text == "I can only describe it."


@pytest.mark.parametrize(
    ("finish", "kind"),
    [
        ("SAFETY", K.BLOCKED),
        ("IMAGE_SAFETY", K.BLOCKED),
        ("PROHIBITED_CONTENT", K.BLOCKED),
        ("IMAGE_PROHIBITED_CONTENT", K.BLOCKED),
        ("RECITATION", K.BLOCKED),
        ("IMAGE_RECITATION", K.BLOCKED),
        ("BLOCKLIST", K.BLOCKED),
        ("SPII", K.BLOCKED),
        ("NO_IMAGE", K.NO_IMAGE),
        ("IMAGE_OTHER", K.NO_IMAGE),
        ("OTHER", K.NO_IMAGE),
        ("MAX_TOKENS", K.NO_IMAGE),
    ],
)
def test_finish_reasons(finish: str, kind: K) -> None:
    body = json.dumps({"candidates": [{"finishReason": finish, "finishMessage": "nope"}]})
    with pytest.raises(ProviderError) as info:
        parse_response(body.encode())
    assert info.value.kind == kind and info.value.reason == finish
    assert "nope" in info.value.detail


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "OTHER", "IMAGE_SAFETY"])
def test_prompt_blocked(reason: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(json.dumps({"promptFeedback": {"blockReason": reason}}).encode())
    assert info.value.kind == K.BLOCKED and info.value.reason == reason


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        _answer([{"inlineData": {"mimeType": "image/png", "data": B64[: len(B64) // 2 + 1]}}]),
    ],
)
def test_malformed_answers(body: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind == K.BAD_RESPONSE


def test_no_candidates_and_no_reason() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(b'{"candidates": []}')
    assert info.value.kind == K.NO_IMAGE


def _google(status: int, name: str, details: list | None = None) -> bytes:
    return json.dumps(
        {"error": {"code": status, "message": "m", "status": name, "details": details or []}}
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "kind", "retry_after"),
    [
        (
            429,
            _google(
                429,
                "RESOURCE_EXHAUSTED",
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"}],
            ),
            K.RATE_LIMITED,
            27.0,
        ),
        (
            429,
            _google(
                429,
                "RESOURCE_EXHAUSTED",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "52758s"},
                ],
            ),
            K.QUOTA_EXHAUSTED,
            None,
        ),
        (404, _google(404, "NOT_FOUND"), K.NOT_FOUND, None),
        (400, _google(400, "INVALID_ARGUMENT"), K.BAD_REQUEST, None),
        (403, _google(403, "PERMISSION_DENIED"), K.AUTH, None),
        (503, _google(503, "UNAVAILABLE"), K.SERVER, None),
        (504, _google(504, "DEADLINE_EXCEEDED"), K.TIMEOUT, None),
    ],
)
def test_google_error_bodies(status: int, body: bytes, kind: K, retry_after: float | None) -> None:
    err = error_from_http(status, body, {}, "g")
    assert err.kind == kind
    if retry_after is not None:
        assert err.retry_after == retry_after
