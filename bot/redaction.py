"""The one redaction function: every secret the bot knows, and anything shaped like one, masked.

Secrets are registered once at start-up (the Telegram token, every endpoint's API key and auth
header value); `redact` is then applied to everything that leaves the process as text: error
details (job rows, admin notifications, the `check` table) and every log line. A relay may
echo a key in odd forms, so besides the literal value it masks its URL-encoded and
JSON-escaped forms and any run of `PARTIAL_RUN` characters copied out of a long key
(`sk-abcd1234…` cut short, or a key glued to other text).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4  # shorter values are too common to mask without mangling ordinary text
PARTIAL_RUN = 8  # this many characters copied from a long secret are masked
PARTIAL_MIN_SECRET = 12  # secrets at least this long are also matched in part

# Shapes of secrets the bot was never told about (another relay's key, a token in a URL).
_PATTERNS = (
    (re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}"), MASK),  # a Telegram bot token
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}"), "sk-" + MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{10,}"), "AIza" + MASK),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[^\s\"',;]+"), r"\1 " + MASK),
    (re.compile(r"(?i)\b((?:x-goog-)?(?:api[_-]?)?key\s*[=:]\s*)[\"']?[^\s&\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(authorization\s*[=:]\s*)[\"']?[^\s&\"',;]+"), r"\1" + MASK),
)

_lock = threading.Lock()
_literals: tuple[str, ...] = ()  # longest first, so a key is masked before a piece of it
_runs: frozenset[str] = frozenset()  # every PARTIAL_RUN-long piece of every long secret


def _forms(secret: str) -> set[str]:
    """The ways a relay may write the secret back: as is, URL-encoded, JSON-escaped."""
    return {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        secret.replace("/", "\\/"),
    }


def register(secrets: Iterable[str | None]) -> None:
    """Add secrets to mask from now on (idempotent; empty and very short values are ignored)."""
    global _literals, _runs
    new = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET}
    with _lock:
        literals = set(_literals)
        runs = set(_runs)
        for secret in new:
            literals |= _forms(secret)
            if len(secret) >= PARTIAL_MIN_SECRET:
                for i in range(len(secret) - PARTIAL_RUN + 1):
                    piece = secret[i : i + PARTIAL_RUN]
                    if not piece.isdigit():  # a bot token's numeric id is public
                        runs.add(piece)
        _literals = tuple(sorted(literals, key=len, reverse=True))
        _runs = frozenset(runs)


def reset() -> None:
    """Forget every registered secret (tests start many bots in one process)."""
    global _literals, _runs
    with _lock:
        _literals, _runs = (), frozenset()


def _mask_runs(text: str, runs: frozenset[str]) -> str:
    """Text with every stretch made of overlapping pieces of a secret replaced by MASK."""
    hits: list[tuple[int, int]] = []
    for i in range(len(text) - PARTIAL_RUN + 1):
        if text[i : i + PARTIAL_RUN] in runs:
            end = i + PARTIAL_RUN
            if hits and i <= hits[-1][1]:
                hits[-1] = (hits[-1][0], end)
            else:
                hits.append((i, end))
    if not hits:
        return text
    pieces, pos = [], 0
    for start, end in hits:
        pieces += [text[pos:start], MASK]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every registered secret (and `extra` ones), and anything that looks like a
    key or token, replaced by `***`."""
    literals, runs = _literals, _runs
    for secret in extra:
        if secret and len(secret) >= MIN_SECRET:
            for form in sorted(_forms(secret), key=len, reverse=True):
                text = text.replace(form, MASK)
    for secret in literals:
        if secret in text:
            text = text.replace(secret, MASK)
    if runs:
        text = _mask_runs(text, runs)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
