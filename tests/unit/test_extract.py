"""Pure helpers: image sniffing and decoding, the chat-message extractor, HTTP error mapping."""

from __future__ import annotations

import base64
import json
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from bot import redaction
from bot.imaging import sniff_mime
from bot.providers.base import ImageRef
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import (
    checked_mime,
    error_from_http,
    images_from_chat_message,
    parse_retry_after,
    ref_from_url_or_data,
    split_data_uri,
    text_of_chat_message,
    text_without_images,
)

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PNG = base64.b64decode(PNG_B64)
PNG_URI = f"data:image/png;base64,{PNG_B64}"
K = ProviderErrorKind


def bad(exc_info: pytest.ExceptionInfo[ProviderError]) -> bool:
    return exc_info.value.kind is K.BAD_RESPONSE


# --- sniffing and decoding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"<html><body>", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"", None),
    ],
)
def test_sniff_mime(head: bytes, mime: str | None) -> None:
    assert sniff_mime(head) == mime


def test_split_data_uri() -> None:
    assert split_data_uri(PNG_URI) == (PNG, "image/png")
    assert split_data_uri("https://x/y.png") is None


def test_split_data_uri_tolerates_whitespace_missing_padding_and_params() -> None:
    wrapped = "\n".join(PNG_B64[i : i + 20] for i in range(0, len(PNG_B64), 20))
    assert split_data_uri(f"data:image/png;base64,{wrapped}") == (PNG, "image/png")
    unpadded = base64.b64encode(b"abcde").decode().rstrip("=")
    assert split_data_uri(f"data:image/png;name=a.png;base64,{unpadded}") == (b"abcde", "image/png")


@pytest.mark.parametrize(
    "uri",
    [
        f"data:image/png;base64,{PNG_B64[:41]}",  # truncated: 41 % 4 == 1
        "data:image/png;base64,iVBO%Rw0K",  # not base64
        "data:image/png;base64,iVBO=Rw0K",  # padding in the middle
        "data:image/png,rawbytes",  # not base64 at all
        "data:image/png;base64,",  # empty
        "data:;;;",  # malformed head
    ],
)
def test_split_data_uri_rejects_broken_data(uri: str) -> None:
    with pytest.raises(ProviderError) as info:
        split_data_uri(uri)
    assert bad(info)


def test_ref_from_url_or_data() -> None:
    assert ref_from_url_or_data(f"  {PNG_URI} ") == ImageRef(data=PNG, mime="image/png")
    assert ref_from_url_or_data("https://cdn/x.png") == ImageRef(url="https://cdn/x.png")
    assert ref_from_url_or_data("HTTP://cdn/x.png") == ImageRef(url="HTTP://cdn/x.png")
    assert ref_from_url_or_data(PNG_B64) == ImageRef(data=PNG, mime="image/png")  # bare base64


@pytest.mark.parametrize("target", ["ftp://x/y.png", "file:///etc/passwd", "/files/1.png", "x"])
def test_ref_from_url_or_data_rejects_other_schemes(target: str) -> None:
    with pytest.raises(ProviderError) as info:
        ref_from_url_or_data(target)
    assert bad(info)


def test_checked_mime_resniffs_and_rejects_non_images_and_truncated_images() -> None:
    assert checked_mime(PNG, "image/jpeg") == "image/png"
    with pytest.raises(ProviderError) as info:
        checked_mime(b"<html>oops</html>", "image/png")
    assert bad(info) and "not an image" in info.value.detail
    with pytest.raises(ProviderError) as info:  # an image, but not one an answer may hold
        checked_mime(b"BM" + bytes(60), "image/bmp")
    assert bad(info) and "not an image" in info.value.detail
    with pytest.raises(ProviderError) as info:
        checked_mime(PNG[:40], "image/png")
    assert bad(info) and "truncated" in info.value.detail


# --- the chat-message extractor --------------------------------------------------------------


def test_text_without_images() -> None:
    assert text_without_images("这是修改后的图片:![image](data:image/png;base64,AAAA)") == (
        "这是修改后的图片:"
    )
    assert text_without_images(" a ![x](https://h/1.png) b ![y]() ") == "a  b"
    assert text_without_images("![image](https://h/1.png)") == ""


def test_markdown_with_title_and_angle_brackets() -> None:
    message = {"content": '![a](<https://h/1.png>) ![b](https://h/2.png "title")'}
    assert images_from_chat_message(message) == [
        ImageRef(url="https://h/1.png"),
        ImageRef(url="https://h/2.png"),
    ]


def test_images_field_wins_over_the_same_image_repeated_in_markdown() -> None:
    message = {
        "content": "![image](https://h/1.png)",
        "images": [{"type": "image_url", "image_url": {"url": "https://h/1.png"}}],
    }
    assert images_from_chat_message(message) == [ImageRef(url="https://h/1.png")]


def test_content_array_variants_are_understood() -> None:
    message = {
        "content": [
            {"type": "text", "text": "two images"},
            {"type": "image_url", "image_url": "https://h/plain-string.png"},
            {"type": "output_image", "url": "https://h/output.png"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
            },
            {"type": "image", "b64_json": PNG_B64},
        ]
    }
    assert images_from_chat_message(message) == [
        ImageRef(url="https://h/plain-string.png"),
        ImageRef(url="https://h/output.png"),
        ImageRef(data=PNG, mime="image/png"),
        ImageRef(data=PNG, mime="image/png"),
    ]
    assert text_of_chat_message(message) == "two images"


def test_markdown_inside_text_parts_of_a_content_array() -> None:
    message = {"content": [{"type": "text", "text": "here ![i](https://h/1.png)"}]}
    assert images_from_chat_message(message) == [ImageRef(url="https://h/1.png")]
    assert text_of_chat_message(message) == "here"


def test_images_field_items_as_plain_strings() -> None:
    assert images_from_chat_message({"images": [PNG_URI], "content": None}) == [
        ImageRef(data=PNG, mime="image/png")
    ]


def test_message_without_anything() -> None:
    assert images_from_chat_message({"role": "assistant"}) == []
    assert text_of_chat_message({"role": "assistant", "content": None}) is None


# --- error_from_http --------------------------------------------------------------------------


def openai_error(
    message: str = "请求失败", type_: str = "invalid_request_error", code: str | None = None
) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}
    ).encode()


def gemini_error(code: int, status: str, message: str, details: list[Any]) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": details}}
    ).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, K.BAD_REQUEST),
        (422, K.BAD_REQUEST),
        (413, K.BAD_REQUEST),
        (401, K.AUTH),
        (403, K.AUTH),
        (404, K.NOT_FOUND),
        (408, K.TIMEOUT),
        (504, K.TIMEOUT),
        (429, K.RATE_LIMITED),
        (500, K.SERVER),
        (502, K.SERVER),
        (503, K.SERVER),
        (409, K.SERVER),
    ],
)
def test_status_mapping(status: int, kind: ProviderErrorKind) -> None:
    err = error_from_http(status, openai_error(), {}, "relay")
    assert err.kind is kind
    assert err.status == status
    assert err.endpoint == "relay"


def test_openai_body_gives_message_and_reason() -> None:
    err = error_from_http(
        400, openai_error("Invalid value for 'messages'.", code="invalid_value"), {}, "r"
    )
    assert err.detail == "HTTP 400: Invalid value for 'messages'."
    assert err.reason == "invalid_value"
    assert not err.transient


def test_openai_body_without_code_uses_type_as_reason() -> None:
    err = error_from_http(500, openai_error(type_="server_error"), {}, "r")
    assert err.reason == "server_error"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "garbage"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert error_from_http(429, openai_error(), headers, "r").retry_after == seconds


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"Retry-After": formatdate(now - 30, usegmt=True)}, now=now) == 0.0


def test_retry_after_from_httpx_headers() -> None:
    headers = httpx.Headers({"Retry-After": "3"})
    assert error_from_http(503, b"", headers, "r").retry_after == 3.0


RETRY_27S: dict[str, object] = {
    "@type": "type.googleapis.com/google.rpc.RetryInfo",
    "retryDelay": "27s",
}


def quota(quota_id: str) -> dict[str, object]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": quota_id,
            }
        ],
    }


def test_gemini_per_minute_quota_is_rate_limited_with_retry_info() -> None:
    body = gemini_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota.",
        [quota("GenerateRequestsPerMinutePerProjectPerModel"), RETRY_27S],
    )
    err = error_from_http(429, body, {}, "google")
    assert err.kind is K.RATE_LIMITED
    assert err.transient
    assert err.retry_after == 27.0
    assert err.reason == "RESOURCE_EXHAUSTED"
    assert "You exceeded your current quota." in err.detail


def test_gemini_per_day_quota_is_exhausted_not_transient() -> None:
    body = gemini_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
        [
            quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "52758s"},
        ],
    )
    err = error_from_http(429, body, {}, "google")
    assert err.kind is K.QUOTA_EXHAUSTED
    assert not err.transient
    assert err.retry_after == 52758.0


def test_header_retry_after_wins_over_retry_info() -> None:
    body = gemini_error(429, "RESOURCE_EXHAUSTED", "slow down", [RETRY_27S])
    assert error_from_http(429, body, {"Retry-After": "2"}, "g").retry_after == 2.0


def unavailable(info: dict[str, object]) -> bytes:
    return gemini_error(503, "UNAVAILABLE", "The model is overloaded.", [info])


def test_retry_delay_with_fraction_and_as_object() -> None:
    info: dict[str, object] = {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1.5s",
    }
    assert error_from_http(503, unavailable(info), {}, "g").retry_after == 1.5
    info = {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": {"seconds": 3, "nanos": 500_000_000},
    }
    assert error_from_http(503, unavailable(info), {}, "g").retry_after == 3.5


def test_gemini_invalid_key_400_is_auth() -> None:
    body = gemini_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ],
    )
    err = error_from_http(400, body, {}, "google")
    assert err.kind is K.AUTH
    assert err.reason == "API_KEY_INVALID"


def test_gemini_error_wrapped_in_a_list() -> None:
    body = b"[" + gemini_error(404, "NOT_FOUND", "models/x is not found", []) + b"]"
    err = error_from_http(404, body, {}, "google")
    assert err.kind is K.MODEL_RETIRED
    assert "models/x is not found" in err.detail


def test_model_not_found_code_is_a_retired_model_even_with_503() -> None:
    message = "当前分组 default 下对于模型 x 无可用渠道"
    body = openai_error(message, "new_api_error", "model_not_found")
    assert error_from_http(503, body, {}, "relay").kind is K.MODEL_RETIRED


@pytest.mark.parametrize(
    ("status", "message", "code", "kind"),
    [
        (503, "model gemini-2.5-flash-image has been withdrawn", "upstream_error", K.MODEL_RETIRED),
        (503, "当前分组 vip 下对于模型 gemini-2.5-flash-image 无可用渠道", None, K.MODEL_RETIRED),
        (
            404,
            "The model `gemini-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            K.MODEL_RETIRED,
        ),
        (404, "model not found", None, K.MODEL_RETIRED),
        (404, "Invalid URL (POST /v1/chat/completionz)", None, K.NOT_FOUND),  # a wrong path
        (503, "Service temporarily unavailable", None, K.SERVER),
        (429, "model gemini-x is overloaded", None, K.RATE_LIMITED),
    ],
)
def test_a_model_gone_is_told_apart_from_a_wrong_path_or_a_busy_relay(
    status: int, message: str, code: str | None, kind: K
) -> None:
    body = openai_error(message, "error", code)
    assert error_from_http(status, body, {}, "relay").kind is kind


@pytest.mark.parametrize(
    ("status", "code"), [(429, "insufficient_quota"), (403, "insufficient_user_quota"), (402, None)]
)
def test_out_of_credit_is_quota_exhausted(status: int, code: str | None) -> None:
    assert error_from_http(status, openai_error(code=code), {}, "r").kind is K.QUOTA_EXHAUSTED


def test_html_error_page_uses_its_title() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>api.x | 502: Bad gateway</title>"
        b"<style>p{}</style></head><body><h1>Bad gateway</h1></body></html>"
    )
    err = error_from_http(502, page, {"Content-Type": "text/html"}, "relay")
    assert err.kind is K.SERVER
    assert err.detail == "HTTP 502: api.x | 502: Bad gateway"


def test_html_without_title_and_plain_text_and_empty_bodies() -> None:
    err = error_from_http(503, b"<html><body><p>upstream   down</p></body></html>", {}, "r")
    assert err.detail == "HTTP 503: upstream down"
    assert error_from_http(500, b"oops", {}, "r").detail == "HTTP 500: oops"
    assert error_from_http(500, b"", {}, "r").detail == "HTTP 500: (empty body)"
    assert error_from_http(500, b"\xff\xfe\x00garbage", {}, "r").kind is K.SERVER


def test_detail_is_truncated() -> None:
    err = error_from_http(400, openai_error("x" * 5000), {}, "r")
    assert len(err.detail) <= 300


@pytest.mark.parametrize(
    "leak",
    [
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234",
        "header was Bearer abc.def-ghi_123",
        "GET https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSyA1234567890abcdefgh",
        "api_key: secretvalue123",
        "key=AIzaSyA1234567890abcdefgh&alt=sse",
    ],
)
def test_keys_are_redacted_from_detail(leak: str) -> None:
    err = error_from_http(401, openai_error(leak), {}, "r")
    for secret in (
        "sk-proj-abcdefghijklmnop1234",
        "abc.def-ghi_123",
        "AIzaSyA1234567890abcdefgh",
        "secretvalue123",
    ):
        assert secret not in err.detail
        assert secret not in str(err)


def test_the_endpoint_key_itself_is_redacted_whatever_it_looks_like() -> None:
    err = error_from_http(
        401, openai_error("token 2SiNPJ-custom is invalid"), {}, "r", secrets=["2SiNPJ-custom"]
    )
    assert "2SiNPJ-custom" not in err.detail


def test_redact_leaves_ordinary_words() -> None:
    text = "API key not valid. Please pass a valid API key."
    assert redaction.redact(text) == text


def test_things_that_only_look_like_image_links() -> None:
    text = "see ![x] (https://h/1.png) and ![y](https://h/2.png bad title) and ![z](no-close"
    assert images_from_chat_message({"content": text}) == []
    assert text_without_images(text) == text


def test_data_uri_wrapped_over_lines_inside_markdown() -> None:
    wrapped = PNG_B64[:30] + "\n" + PNG_B64[30:]
    message = {"content": f"![image](data:image/png;base64,{wrapped})"}
    assert images_from_chat_message(message) == [ImageRef(data=PNG, mime="image/png")]


def test_other_json_error_shapes() -> None:
    assert error_from_http(404, b'{"detail":"Not Found"}', {}, "r").detail == "HTTP 404: Not Found"
    assert error_from_http(400, b'{"error":"bad model"}', {}, "r").detail == "HTTP 400: bad model"
    err = error_from_http(500, b'{"error":{"code":"x1"}}', {}, "r")
    assert err.detail == 'HTTP 500: {"code": "x1"}'
    assert err.reason == "x1"


def test_failed_precondition_is_an_endpoint_fault() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "status": "FAILED_PRECONDITION",
                "message": "User location is not supported for the API use.",
            }
        }
    )
    err = error_from_http(400, body.encode(), {}, "google")
    assert err.kind == ProviderErrorKind.AUTH


def test_markdown_targets_located_without_copies_keep_their_exact_text() -> None:
    text = (
        "![a](  data:image/png;base64,AAAA\nBBBB  ) ![b]( <https://h/1.png> ) "
        '![c](https://h/2.png "t") ![d](https://h/3.png no-title) ![e](<>) ![f]( )'
    )
    assert images_from_chat_message({"content": text}) == [
        ImageRef(data=base64.b64decode("AAAABBBB"), mime="image/png"),
        ImageRef(url="https://h/1.png"),
        ImageRef(url="https://h/2.png"),
    ]
    assert text_without_images(text) == "![d](https://h/3.png no-title)"


def test_data_uri_scheme_and_type_in_capitals() -> None:
    from bot.providers.extract import split_data_uri

    raw = b"\x89PNG\r\n\x1a\n"
    uri = "DATA:IMAGE/PNG;BASE64," + base64.b64encode(raw).decode()
    assert split_data_uri(uri) == (raw, "image/png")
