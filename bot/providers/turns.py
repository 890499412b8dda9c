"""A neutral turn as one job row keeps it (jobs.model_parts): JSON of blob references, no bytes.

    {"v": 1, "role": "model", "parts": [{"text": "…", "token": {…}},
                                        {"image": "<sha256>", "mime": "image/png", "token": {…}},
                                        {"token": {…}}]}

Rows written before turns were neutral hold a JSON list of Gemini parts instead (the only
dialect that kept turns then); they still load, through the gemini dialect's reader.
"""

from __future__ import annotations

import json
from typing import Any

from bot.providers.base import ImagePart, Part, TextPart, TokenPart, Turn
from bot.providers.gemini import stored_model_turn

VERSION = 1


def _part_json(part: Part) -> dict[str, Any]:
    if isinstance(part, TokenPart):
        return {"token": part.token}
    if isinstance(part, TextPart):
        out: dict[str, Any] = {"text": part.text}
    else:
        if part.sha256 is None:
            raise ValueError("an image part is stored by its blob: it has no sha256")
        out = {"image": part.sha256, "mime": part.mime}
    if part.token:
        out["token"] = part.token
    return out


def _part_of(obj: dict[str, Any]) -> Part:
    token = obj.get("token") or None
    if "image" in obj:
        return ImagePart(mime=obj["mime"], sha256=obj["image"], token=token)
    if "text" in obj:
        return TextPart(obj["text"], token)
    return TokenPart(obj["token"])


def dumps_turn(turn: Turn) -> str:
    """The turn as stored; every image part must name its blob (its bytes are not kept)."""
    parts = [_part_json(p) for p in turn.parts]
    return json.dumps({"v": VERSION, "role": turn.role, "parts": parts}, ensure_ascii=False)


def loads_turn(stored: str) -> Turn:
    """A stored turn, image parts by blob only (the caller loads the bytes it needs)."""
    obj = json.loads(stored)
    if isinstance(obj, list):
        return stored_model_turn(obj)
    if obj.get("v") != VERSION:
        raise ValueError(f"stored turn of unknown version {obj.get('v')!r}")
    return Turn(obj["role"], [_part_of(p) for p in obj["parts"]])
