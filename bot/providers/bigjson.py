"""`json.loads` for answers that carry images, without holding the GIL for the whole parse.

A 4K image comes back as a ~22 MB base64 string inside the JSON. `json.loads` is one C call:
~40 ms on the benchmark machine (longer when both cores are busy) during which no other
thread -- the event loop included -- runs. Here the long string literals are found with
`bytes.find` (memchr speed), cut out, the small rest is parsed, and the strings are put back
as `str`; each step is a short C call, so the event loop gets its turns in between.

Only plain ASCII strings are lifted, with `\\/` as their only escape (PHP-based relays escape
every slash, and base64 has many); anything else stays for `json.loads`. The result is what
`json.loads(body)` gives, with one exception: a long string holding raw control characters
other than tab, CR and LF (invalid JSON) is taken as it is; it still cannot pass for base64.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

LIFT_CHARS = 64 * 1024  # string literals at least this long are lifted out


def loads(body: bytes | bytearray) -> Any:
    """`json.loads(body)`, with long string literals parsed apart from the rest."""
    if len(body) < 2 * LIFT_CHARS or b"\x00" in body[:4]:  # small, or UTF-16/32
        return json.loads(body)
    lifted = _lift(body)
    if lifted is None:
        return json.loads(body)
    skeleton, values = lifted
    return _restore(json.loads(skeleton), values)


def _lift(raw: bytes | bytearray) -> tuple[bytes, dict[str, str]] | None:
    """The body with each long string replaced by a token, and the strings by token; None
    when there is nothing to lift or the body is not what it seems (json.loads decides)."""
    nonce = secrets.token_hex(8)
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    values: dict[str, str] = {}
    copied = scan = 0
    while (start := raw.find(b'"', scan)) >= 0:
        end = _closing_quote(raw, start + 1)
        if end < 0:
            return None
        scan = end + 1
        if end - start - 1 < LIFT_CHARS:
            continue
        value = _plain_string(raw, view, start + 1, end)
        if value is None:
            continue
        token = f"__lifted_{nonce}_{len(values)}__"
        values[token] = value
        pieces += [view[copied : start + 1], token.encode("ascii")]
        copied = end
    if not values:
        return None
    pieces.append(view[copied:])
    return b"".join(pieces), values


def _closing_quote(raw: bytes | bytearray, pos: int) -> int:
    """Index of the quote that ends the string starting at `pos`, -1 if there is none."""
    while (quote := raw.find(b'"', pos)) >= 0:
        slashes = 0
        while raw[quote - 1 - slashes] == 0x5C:  # backslashes right before it
            slashes += 1
        if slashes % 2 == 0:
            return quote
        pos = quote + 1
    return -1


def _plain_string(raw: bytes | bytearray, view: memoryview, start: int, end: int) -> str | None:
    """raw[start:end] as a str if it is ASCII whose only escape is `\\/`, else None."""
    if any(raw.find(c, start, end) >= 0 for c in (b"\n", b"\r", b"\t")):
        return None  # raw line breaks are invalid in JSON strings: let json.loads say so
    escaped = raw.find(b"\\", start, end) >= 0
    if escaped and raw.count(b"\\", start, end) != raw.count(b"\\/", start, end):
        return None
    try:
        text = str(view[start:end], "ascii")
    except UnicodeDecodeError:
        return None
    return text.replace("\\/", "/") if escaped else text


def _restore(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return values.get(node, node)
    if isinstance(node, list):
        return [_restore(item, values) for item in node]
    if isinstance(node, dict):
        return {values.get(k, k): _restore(v, values) for k, v in node.items()}
    return node
