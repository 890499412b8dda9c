"""extract.answer_object reads every answer as json.loads does: huge base64 strings (plain and
with PHP-style escaped slashes), other escapes, non-ASCII, UTF-16; and anything that is not a
JSON object is the same BAD_RESPONSE. http.encode_json writes request bodies byte for byte as
json.dumps(ensure_ascii=False, compact) did (but for the spelling of exponents)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import answer_object
from bot.providers.http import JSON_IN_THREAD_CHARS, encode_json

LONG = 64 * 1024 + 10
B64 = base64.b64encode(os.urandom(LONG)).decode()


@pytest.mark.parametrize(
    "doc",
    [
        {"choices": [{"message": {"content": f"![img](data:image/png;base64,{B64})"}}]},
        {"data": [{"b64_json": B64}, {"b64_json": B64[::-1]}], "created": 1},
        {"candidates": [{"content": {"parts": [{"inlineData": {"data": B64}}, {"text": "好"}]}}]},
        {"a": "x" * LONG, "b": ["y" * LONG, {"c": 'q"uo\\te', "d": None, "e": 1.5}], "f": True},
        {"x" * LONG: "key too", "big": 12345678901234567890123},
        {"list": [B64, B64]},
    ],
)
def test_same_as_json_loads(doc: dict[str, Any]) -> None:
    for body in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode()):
        assert answer_object(body) == json.loads(body) == doc
        assert answer_object(bytearray(body)) == doc


def test_php_style_escaped_slashes_are_unescaped() -> None:
    body = json.dumps({"data": [{"b64_json": B64}]}).replace("/", "\\/").encode()
    assert answer_object(body) == json.loads(body) == {"data": [{"b64_json": B64}]}


@pytest.mark.parametrize(
    "value",
    [
        "é" * LONG,
        "a\\nb" + "c" * LONG,  # an escape other than \/
        "\\\\/" + "c" * LONG,  # an escaped backslash before a slash
        '\\"' + "c" * LONG,  # an escaped quote
        "\\u00e9\\ud83c\\udf4c" + "c" * LONG,  # unicode escapes, a surrogate pair among them
    ],
)
def test_other_strings_read_as_json_loads_reads_them(value: str) -> None:
    raw = ('{"k": "' + value + '", "n": 1}').encode()
    assert answer_object(raw) == json.loads(raw)


def test_what_only_json_loads_reads_is_still_read() -> None:
    doc = {"data": [{"b64_json": B64}]}
    assert answer_object(json.dumps(doc).encode("utf-16")) == doc
    assert answer_object(b"\xef\xbb\xbf" + json.dumps(doc).encode()) == doc  # a UTF-8 BOM
    assert answer_object(b'{"a": NaN, "b": "\\ud800"}')["b"] == "\ud800"
    assert answer_object(b'{"a": 1}') == {"a": 1}


def bad(body: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        answer_object(body)
    assert caught.value.kind is ProviderErrorKind.BAD_RESPONSE
    return caught.value


def test_invalid_json_is_a_bad_response() -> None:
    good = json.dumps({"data": [{"b64_json": B64}]})
    for broken in (good[:-3], good.replace("]", ""), good + "x", '{"a": "' + B64, ""):
        with pytest.raises(ValueError):
            json.loads(broken.encode())
        assert "answer is not JSON" in str(bad(broken.encode()))
    assert "not JSON" in str(bad(('{"k": "' + "a" * LONG + '\n"}').encode()))  # raw newline
    assert "not JSON" in str(bad(b'{"k": "\xff\xfe"}'))  # not UTF-8
    assert len(str(bad(good[:-3].encode()))) <= 300


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"3", json.dumps([B64]).encode()])
def test_json_that_is_no_object_is_a_bad_response(body: bytes) -> None:
    assert "not an object" in str(bad(body))


@pytest.mark.parametrize("size", [10, JSON_IN_THREAD_CHARS + 1])  # on the loop, and off it
async def test_request_bodies_are_the_bytes_json_dumps_made(size: int) -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": '把它变成蓝色 "now" \\ \n\t\u0001 \u2028 é 🍌'}]},
            {"parts": [{"inlineData": {"mimeType": "image/png", "data": B64[:size]}}]},
        ],
        "generationConfig": {"temperature": 0.7, "candidateCount": 1, "seed": -3},
        "flags": [True, False, None],
        "empty": {},
        "tuple": (1, "2"),
    }
    expected = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert await encode_json(body) == expected
    tiny = await encode_json({"top": 1e-7, "big": 1.5e300})
    assert json.loads(tiny) == {"top": 1e-7, "big": 1.5e300}  # spelt 1e-7, where json said 1e-07
