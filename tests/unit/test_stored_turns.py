"""How a job row keeps a neutral turn (bot.providers.turns), on plain data: the shape written
now, and the Gemini-parts shape rows written before it still hold."""

from __future__ import annotations

import json

import pytest

from bot.providers.base import ImagePart, TextPart, TokenPart, Turn
from bot.providers.turns import dumps_turn, loads_turn

SHA_A = "a" * 64
SHA_B = "b" * 64


def test_a_turn_round_trips_by_blob_reference() -> None:
    turn = Turn(
        "model",
        [
            TextPart("Here you are.", {"thoughtSignature": "EvUCAQ+sig/2=="}),
            ImagePart("image/png", sha256=SHA_A, token={"thoughtSignature": "Cq0BAXLI2n=="}),
            ImagePart("image/webp", sha256=SHA_B),
            TextPart(""),
            TokenPart({"functionCall": {"name": "draw"}}),
        ],
    )
    stored = dumps_turn(turn)
    assert json.loads(stored) == {
        "v": 1,
        "role": "model",
        "parts": [
            {"text": "Here you are.", "token": {"thoughtSignature": "EvUCAQ+sig/2=="}},
            {"image": SHA_A, "mime": "image/png", "token": {"thoughtSignature": "Cq0BAXLI2n=="}},
            {"image": SHA_B, "mime": "image/webp"},
            {"text": ""},
            {"token": {"functionCall": {"name": "draw"}}},
        ],
    }
    assert loads_turn(stored) == turn


def test_words_in_any_script_are_kept_as_written() -> None:
    turn = Turn("model", [TextPart("给它戴一顶小礼帽 🎩")])
    assert "给它" in dumps_turn(turn)
    assert loads_turn(dumps_turn(turn)) == turn


def test_bytes_are_never_stored() -> None:
    with pytest.raises(ValueError, match="sha256"):
        dumps_turn(Turn("model", [ImagePart("image/png", data=b"\x89PNG")]))
    stored = dumps_turn(Turn("model", [ImagePart("image/png", sha256=SHA_A, data=b"\x89PNG")]))
    assert "data" not in json.loads(stored)["parts"][0]


def test_a_row_of_the_old_gemini_shape_loads() -> None:
    old = [
        {"inlineData": {"mimeType": "image/png", "blob": SHA_A}, "thoughtSignature": "Cq0B"},
        {"text": "Here is the fox.", "thoughtSignature": "EvUC"},
        {"text": ""},
    ]
    assert loads_turn(json.dumps(old)) == Turn(
        "model",
        [
            ImagePart("image/png", sha256=SHA_A, token={"thoughtSignature": "Cq0B"}),
            TextPart("Here is the fox.", {"thoughtSignature": "EvUC"}),
            TextPart(""),
        ],
    )


def test_an_old_part_that_is_not_a_stored_image_passes_on_verbatim() -> None:
    odd = {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}
    assert loads_turn(json.dumps([odd, "junk"])) == Turn("model", [TokenPart(odd)])


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        loads_turn(json.dumps({"v": 99, "role": "model", "parts": []}))
