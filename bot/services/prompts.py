"""One-off overrides written into a prompt: `--ar 16:9`, `--size 2K`, `--n 3`, `--search`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.providers.profiles import size_named
from bot.services.errors import UserInputError
from bot.services.prefs import RATIOS, SIZES

_FLAG = re.compile(r"(?<!\S)--(ar|aspect|size|n)(?:=|\s+)(\S+)", re.IGNORECASE)
_SEARCH = re.compile(r"(?<!\S)--(search|grounding)(?!\S)", re.IGNORECASE)


@dataclass(frozen=True)
class PromptFlags:
    prompt: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    n: int | None = None
    search: bool = False


def parse_flags(text: str) -> PromptFlags:
    """Strip the flags from the prompt and return them; a bad value is a clear user error."""
    found: dict[str, str] = {}
    for match in _FLAG.finditer(text):
        name = match.group(1).lower()
        found["ar" if name == "aspect" else name] = match.group(2)
    search = bool(_SEARCH.search(text))
    prompt = " ".join(_SEARCH.sub(" ", _FLAG.sub(" ", text)).split())
    ratio = found.get("ar")
    if ratio is not None and ratio not in RATIOS:
        raise UserInputError("bad_ratio", ratios=", ".join(RATIOS))
    size = size_named(found["size"]) if "size" in found else None
    if size is not None and size not in SIZES:
        raise UserInputError("bad_size", sizes=", ".join(SIZES))
    n = None
    if "n" in found:
        if not found["n"].isdigit() or not 1 <= int(found["n"]) <= 4:
            raise UserInputError("bad_n")
        n = int(found["n"])
    return PromptFlags(prompt, ratio, size, n, search)


def nearest_ratio(width: int, height: int, ratios: tuple[str, ...] = RATIOS) -> str:
    """The aspect ratio of `ratios` closest to an image's shape (for "match input")."""
    target = width / height

    def distance(r: str) -> float:
        w, h = (int(x) for x in r.split(":"))
        return abs(w / h - target)

    return min(ratios, key=distance)
