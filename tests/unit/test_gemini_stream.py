"""The streamed gemini answer (alt=sse) on golden bytes: put back together it reads exactly as
the same answer unstreamed, thought summaries come out in order, and every refusal or error
raises what the unstreamed answer raises."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bot.providers.base import Endpoint, ImageRequest, ParsedAnswer, TextPart
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.extract import error_from_http
from bot.providers.gemini import (
    StreamedAnswer,
    build_request,
    endpoint_url,
    parse_answer,
    parse_response,
    stream_chunk,
)
from bot.providers.sse import SseFramer

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
DRAFT_B64 = base64.b64encode(base64.b64decode(PNG_B64)[:-1] + b"\x82").decode()  # an interim one
PRO = "gemini-3-pro-image"
GOOGLE = Endpoint("google", "gemini", "https://generativelanguage.googleapis.com", "AIza-x")
THOUGHT_1 = "**Planning the layout**\n\nI'm placing the fox left of centre."
THOUGHT_2 = "**Choosing the light**\n\nLow sun, long shadows."
USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 1290,
    "thoughtsTokenCount": 180,
    "totalTokenCount": 1477,
}

# What Google streams for one 3 Pro Image answer, event by event (CRLF CRLF between events).
STREAM_EVENTS: list[dict[str, Any]] = [
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": THOUGHT_1, "thought": True}]},
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "inlineData": {"mimeType": "image/png", "data": DRAFT_B64},
                            "thought": True,
                        }
                    ],
                }
            }
        ],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    },
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": THOUGHT_2, "thought": True}]}}
        ]
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "inlineData": {"mimeType": "image/png", "data": PNG_B64},
                            "thoughtSignature": "Cq0BAXLI2n==",
                        }
                    ],
                }
            }
        ]
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "Here is your ", "thoughtSignature": "sig-text"}],
                }
            }
        ]
    },
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "fox at sunset."}]}}]},
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": ""}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-3-pro-image",
    },
]
# The same answer as generateContent gives it in one body.
WHOLE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": THOUGHT_1, "thought": True},
                    {"inlineData": {"mimeType": "image/png", "data": DRAFT_B64}, "thought": True},
                    {"text": THOUGHT_2, "thought": True},
                    {
                        "inlineData": {"mimeType": "image/png", "data": PNG_B64},
                        "thoughtSignature": "Cq0BAXLI2n==",
                    },
                    {"text": "Here is your fox at sunset.", "thoughtSignature": "sig-text"},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": USAGE,
    "modelVersion": "gemini-3-pro-image",
}


def sse(events: list[dict[str, Any] | bytes]) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\r\n\r\n"
        for e in events
    )


def read_stream(raw: bytes, step: int = 17) -> tuple[ParsedAnswer, list[str]]:
    """What the provider does with a stream: frame, read each chunk, then parse the whole."""
    framer, answer, thoughts = SseFramer(), StreamedAnswer(), []
    for i in range(0, len(raw), step):
        for data in framer.feed(raw[i : i + step]):
            chunk = stream_chunk(data)
            if chunk is not None:
                thoughts += answer.add(chunk, data)
    return parse_answer(answer.take()), thoughts


def stream_error(raw: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        read_stream(raw)
    return info.value


def whole_error(body: dict[str, Any] | bytes) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        parse_response(body if isinstance(body, bytes) else json.dumps(body).encode())
    return info.value


@pytest.mark.parametrize("step", [1, 17, 4096, 1 << 20])
def test_the_assembled_stream_reads_exactly_as_the_whole_answer(step: int) -> None:
    streamed, thoughts = read_stream(sse(STREAM_EVENTS), step)
    assert streamed == parse_response(json.dumps(WHOLE).encode())
    assert thoughts == [THOUGHT_1, THOUGHT_2]
    assert streamed.text == "Here is your fox at sunset."
    assert streamed.usage == USAGE  # the last chunk's count, as the bill is made from it
    [image] = streamed.images
    assert image.data == base64.b64decode(PNG_B64)  # the result, never the interim draft


def test_thoughts_are_never_the_words_nor_the_history() -> None:
    streamed, _ = read_stream(sse(STREAM_EVENTS))
    assert streamed.model_turn is not None
    words = [p.text for p in streamed.model_turn.parts if isinstance(p, TextPart)]
    assert words == ["Here is your fox at sunset."]
    kept = json.dumps([getattr(p, "token", None) for p in streamed.model_turn.parts])
    assert "Planning" not in kept and 'thought"' not in kept
    # the signatures stay beside their parts, to be sent back in the next edit
    assert '"Cq0BAXLI2n=="' in kept and '"sig-text"' in kept


def test_snake_case_words_only_and_a_relays_done_marker() -> None:
    events: list[dict[str, Any] | bytes] = [
        {"candidates": [{"content": {"parts": [{"text": "I can only describe it: "}]}}]},
        {
            "candidates": [{"content": {"parts": [{"text": "a fox."}]}, "finish_reason": "STOP"}],
            "usage_metadata": {"totalTokenCount": 9},
        },
        b"[DONE]",
    ]
    streamed, thoughts = read_stream(sse(events))
    whole = {
        "candidates": [
            {
                "content": {"parts": [{"text": "I can only describe it: a fox."}]},
                "finish_reason": "STOP",
            }
        ],
        "usage_metadata": {"totalTokenCount": 9},
    }
    assert streamed == parse_response(json.dumps(whole).encode()) and thoughts == []
    assert streamed.images == [] and streamed.text == "I can only describe it: a fox."


@pytest.mark.parametrize(
    "whole",
    [
        {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}},
        {"candidates": [{"finishReason": "IMAGE_SAFETY", "finishMessage": "Unable to show."}]},
        {"candidates": [{"finishReason": "NO_IMAGE"}]},
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "no", "thought": True}]},
                    "finishReason": "IMAGE_RECITATION",
                }
            ]
        },
        {"usageMetadata": {"promptTokenCount": 3}},
    ],
    ids=["blocked-prompt", "image-safety", "no-image", "recitation", "no-candidates"],
)
def test_a_refusal_in_one_event_is_the_same_error(whole: dict[str, Any]) -> None:
    streamed, unstreamed = stream_error(sse([whole])), whole_error(whole)
    assert (streamed.kind, streamed.reason, streamed.detail) == (
        unstreamed.kind,
        unstreamed.reason,
        unstreamed.detail,
    )


def test_a_refusal_after_thoughts_is_the_same_error() -> None:
    thought = {"candidates": [{"content": {"parts": [{"text": THOUGHT_1, "thought": True}]}}]}
    stop = {"candidates": [{"finishReason": "IMAGE_SAFETY"}]}
    assert stream_error(sse([thought, stop])).kind == K.BLOCKED


@pytest.mark.parametrize(
    ("code", "status"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (429, "RESOURCE_EXHAUSTED")]
)
def test_an_error_event_mid_stream_is_the_error_its_status_would_be(code: int, status: str) -> None:
    error = {
        "error": {"code": code, "message": "An internal error has occurred.", "status": status}
    }
    thought = {"candidates": [{"content": {"parts": [{"text": THOUGHT_1, "thought": True}]}}]}
    got = stream_error(sse([thought, error]))
    expected = error_from_http(code, json.dumps(error).encode(), {}, "")
    assert (got.kind, got.transient) == (expected.kind, expected.transient)
    assert got.kind == whole_error(error).kind


def test_a_broken_event_is_a_bad_response() -> None:
    broken = b'{"candidates":[{"content":{"parts":[{"inlineData":{"data":"iVBOR'
    assert stream_error(sse([broken])).kind == whole_error(broken).kind == K.BAD_RESPONSE


def test_a_stream_cut_inside_the_image_is_a_bad_response() -> None:
    raw = sse(STREAM_EVENTS[:3]) + b'data: {"candidates":[{"content":{"parts":[{"inlineData'
    framer, answer = SseFramer(), StreamedAnswer()
    with pytest.raises(ProviderError) as info:
        for data in [*framer.feed(raw), framer.close()]:
            assert data is not None
            chunk = stream_chunk(data)
            assert chunk is not None
            answer.add(chunk, data)
    assert info.value.kind == K.BAD_RESPONSE


def test_take_hands_the_parts_over() -> None:
    answer = StreamedAnswer()
    answer.add(STREAM_EVENTS[3])
    first = answer.take()
    assert len(first["candidates"][0]["content"]["parts"]) == 1
    assert answer.take()["candidates"][0]["content"]["parts"] == []


# --- request ------------------------------------------------------------------------------


def test_the_streaming_url() -> None:
    base = "https://generativelanguage.googleapis.com"
    assert endpoint_url(base, f"models/{PRO}", stream=True) == (
        f"{base}/v1beta/models/{PRO}:streamGenerateContent?alt=sse"
    )
    assert endpoint_url(f"{base}/v1beta/", PRO) == f"{base}/v1beta/models/{PRO}:generateContent"


@pytest.mark.parametrize(
    ("model", "asks"),
    [
        (PRO, True),
        ("gemini-3-pro-image-preview", True),
        ("nano-banana-pro", True),
        ("gemini-2.5-flash-image", False),
        ("gemini-3.1-flash-image", False),
        ("some-unknown-model", False),
    ],
)
def test_only_models_that_think_are_asked_for_thought_summaries(model: str, asks: bool) -> None:
    config = build_request(ImageRequest(prompt="a fox", model=model), GOOGLE)["generationConfig"]
    assert ("thinkingConfig" in config) is asks
    if asks:
        assert config["thinkingConfig"] == {"includeThoughts": True}


def test_an_operators_thinking_config_is_kept_beside_include_thoughts() -> None:
    extra = {
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "high", "includeThoughts": False}}
    }
    endpoint = Endpoint("g", "gemini", GOOGLE.base_url, "k", extra_body=extra)
    config = build_request(ImageRequest(prompt="a fox", model=PRO), endpoint)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


@pytest.mark.parametrize(
    ("base_url", "stream", "streams"),
    [
        ("https://generativelanguage.googleapis.com", None, True),
        ("https://generativelanguage.googleapis.com/v1beta", None, True),
        ("https://generativelanguage.googleapis.com", False, False),
        ("https://relay.example.com/v1beta", None, False),
        ("https://relay.example.com", True, True),
        ("https://generativelanguage.googleapis.com.evil.example", None, False),
    ],
)
def test_who_streams(base_url: str, stream: bool | None, streams: bool) -> None:
    assert Endpoint("e", "gemini", base_url, "k", stream=stream).streams() is streams
