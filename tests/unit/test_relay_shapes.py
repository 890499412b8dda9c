"""The answers of new-api / one-api style relays (what many resellers run) on JSON alone.

Shapes from QuantumNous/new-api's Gemini adaptor (PROTOCOLS.md, "Relays in the wild"): images
as markdown data URIs inside a string `content`, thoughts in `reasoning_content`, every
non-STOP finish as `content_filter`, a blocked prompt as HTTP 400 and empty candidates as
HTTP 500, both in new-api's error object."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from bot.providers.errors import EMPTY_RESPONSE, ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.extract import error_from_http
from bot.providers.openai_chat import parse_response


def _image(fmt: str, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, fmt)
    return buf.getvalue()


PNG, JPEG = _image("PNG", (200, 0, 0)), _image("JPEG", (0, 200, 0))
WEBP = _image("WEBP", (0, 0, 200))


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _answer(message: dict[str, object], finish: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-20261202053700123456789",
            "model": "gemini-3.1-flash-image",
            "object": "chat.completion",
            "created": 1764653820,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1290, "total_tokens": 1299},
        }
    ).encode()


def test_markdown_data_uris_of_every_image_type_joined_by_newlines() -> None:
    content = "\n".join(
        [
            "Here you go.",
            f"![image]({_uri(PNG, 'image/png')})",
            f"![image]({_uri(JPEG, 'image/jpeg')})",
            f"![image]({_uri(WEBP, 'image/webp')})",
        ]
    )
    parsed = parse_response(
        _answer(
            {
                "role": "assistant",
                "content": content,
                "reasoning_content": "**Composing** three swatches",
            }
        )
    )
    assert [(r.data, r.mime) for r in parsed.images] == [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
    ]
    assert parsed.text == "Here you go."  # the thoughts are no part of the answer


def test_reasoning_content_alone_is_no_answer() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(
            _answer(
                {"role": "assistant", "content": "", "reasoning_content": "Thinking about a cat"}
            )
        )
    assert info.value.kind is K.NO_IMAGE


def test_content_filter_without_an_image_is_a_refusal_never_retried() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(_answer({"role": "assistant", "content": ""}, finish="content_filter"))
    assert info.value.kind is K.BLOCKED and info.value.reason == "content_filter"
    assert not info.value.transient


def test_a_message_without_content_is_no_image() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(_answer({"role": "assistant"}))
    assert info.value.kind is K.NO_IMAGE and not info.value.transient


def _new_api_error(message: str, code: str) -> bytes:
    return json.dumps(
        {
            "error": {
                "message": f"{message} (request id: 20261202053700123456789)",
                "type": code,
                "param": "",
                "code": code,
            }
        }
    ).encode()


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "OTHER"])
def test_a_blocked_prompt_as_http_400_is_blocked_with_googles_reason(reason: str) -> None:
    body = _new_api_error(f"request blocked by Gemini API: {reason}", "prompt_blocked")
    err = error_from_http(400, body, {}, "relay")
    assert err.kind is K.BLOCKED and err.reason == reason and not err.transient


def test_a_blocked_recitation_keeps_its_reason() -> None:
    body = _new_api_error("request blocked by Gemini API: RECITATION", "prompt_blocked")
    assert error_from_http(400, body, {}, "relay").reason == "RECITATION"


def test_empty_candidates_as_http_500_are_a_busy_upstream_retried() -> None:
    err = error_from_http(
        500, _new_api_error("empty response from Gemini API", EMPTY_RESPONSE), {}, "relay"
    )
    assert err.kind is K.SERVER and err.reason == EMPTY_RESPONSE and err.transient


def test_googles_retry_info_gives_the_seconds() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"},
                ],
            }
        }
    ).encode()
    err = error_from_http(429, body, {}, "google")
    assert err.kind is K.RATE_LIMITED and err.retry_after == pytest.approx(34.4)
