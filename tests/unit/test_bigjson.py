"""bigjson.loads gives what json.loads gives, with long strings parsed apart."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from bot.providers import bigjson

LONG = bigjson.LIFT_CHARS + 10
B64 = base64.b64encode(os.urandom(LONG)).decode()


def lifted(body: bytes) -> dict[str, str]:
    result = bigjson._lift(body)
    return {} if result is None else result[1]


@pytest.mark.parametrize(
    "doc",
    [
        {"choices": [{"message": {"content": f"![img](data:image/png;base64,{B64})"}}]},
        {"data": [{"b64_json": B64}, {"b64_json": B64[::-1]}], "created": 1},
        {"candidates": [{"content": {"parts": [{"inlineData": {"data": B64}}, {"text": "好"}]}}]},
        {"a": "x" * LONG, "b": ["y" * LONG, {"c": 'q"uo\\te', "d": None, "e": 1.5}], "f": True},
        {"x" * LONG: "key too"},
        [B64, B64],
    ],
)
def test_same_as_json_loads(doc: Any) -> None:
    for body in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode()):
        assert bigjson.loads(body) == json.loads(body)
        assert lifted(body)  # the long strings were parsed apart


def test_php_style_escaped_slashes_are_lifted_and_unescaped() -> None:
    body = json.dumps({"data": [{"b64_json": B64}]}).replace("/", "\\/").encode()
    assert lifted(body)
    assert bigjson.loads(body) == json.loads(body) == {"data": [{"b64_json": B64}]}


@pytest.mark.parametrize(
    "value",
    [
        "é" * LONG,  # non-ASCII: left to json.loads
        "a\\nb" + "c" * LONG,  # an escape other than \/
        "\\\\/" + "c" * LONG,  # an escaped backslash before a slash
        '\\"' + "c" * LONG,  # an escaped quote
    ],
)
def test_other_strings_are_left_to_json_loads(value: str) -> None:
    raw = ('{"k": "' + value + '", "n": 1}').encode()
    assert not lifted(raw)
    assert bigjson.loads(raw) == json.loads(raw)


def test_invalid_json_fails_like_json_loads() -> None:
    good = json.dumps({"data": [{"b64_json": B64}]})
    for broken in (good[:-3], good.replace("]", ""), good + "x", '{"a": "' + B64):
        with pytest.raises(ValueError):
            json.loads(broken.encode())
        with pytest.raises(ValueError):
            bigjson.loads(broken.encode())
    raw_newline = ('{"k": "' + "a" * LONG + '\n"}').encode()
    with pytest.raises(ValueError):
        bigjson.loads(raw_newline)


def test_utf16_and_small_bodies_go_straight_to_json_loads() -> None:
    doc = {"data": [{"b64_json": B64}]}
    assert bigjson.loads(json.dumps(doc).encode("utf-16")) == doc
    assert bigjson.loads(b'{"a": 1}') == {"a": 1}


def test_a_token_in_the_answer_itself_is_not_replaced() -> None:
    doc = {"data": [{"b64_json": B64}], "note": "__lifted_0000000000000000_0__"}
    assert bigjson.loads(json.dumps(doc).encode()) == doc
