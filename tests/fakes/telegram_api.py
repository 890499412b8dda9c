"""A fake Telegram Bot API server for end-to-end tests.

The real python-telegram-bot ``Application`` runs against it unmodified::

    fake = FakeTelegram()
    root = await fake.start()
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .build()
    )

It serves ``{root}/bot{token}/{method}`` (GET or POST; query string, form-urlencoded, JSON and
multipart bodies, as the real server accepts) and ``{root}/file/bot{token}/{file_path}``. It binds
127.0.0.1 only and never touches the network (it takes no file by URL: the bot sends none).

Answers have the real shapes: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}`` (plus ``parameters.retry_after`` for 429),
and the HTTP status equals ``error_code``. Error texts are the real server's. HTML parsing follows
TDLib's parser (same error texts and byte offsets), so a bot that sends broken markup fails here as
it would in production. HTML is the only parse mode the bot uses, so it is the only one parsed:
MarkdownV2 and Markdown are refused like an unknown mode, and a change that starts sending them
fails here at once.

Updates go out by ``getUpdates`` or, once ``setWebhook`` is called, by POST to the webhook
(JSON, with ``X-Telegram-Bot-Api-Secret-Token``; up to ``max_connections`` at once; each sent
again after ``webhook_retry_delay`` until it gets a 2xx; one chat's updates one at a time, in
order, as Telegram does; ``getUpdates`` then answers 409). Unlike
Telegram, which wants HTTPS, the webhook may be ``http://127.0.0.1``. ``deliver_again`` sends a
delivered update once more (a redelivery); ``webhook_attempts`` lists every POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.web_request import FileField
from PIL import Image

__all__ = ["Call", "FakeTelegram"]

# --------------------------------------------------------------------------------------------
# Limits (see /work/shared/PROTOCOLS.md section 5)

TEXT_MAX = 4096  # code points after entity parsing (TDLib uses utf8_length)
CAPTION_MAX = 1024
CALLBACK_DATA_MAX = 64  # bytes, UTF-8
INLINE_RESULTS_MAX = 50  # answerInlineQuery: "No more than 50 results per query are allowed"
INLINE_ID_MAX = 64  # bytes: a result's id
INLINE_OFFSET_MAX = 64  # bytes: next_offset
PHOTO_UPLOAD_MAX = 10_000_000
UPLOAD_MAX = 50_000_000  # api.telegram.org refuses bigger requests with 413
DOWNLOAD_MAX = 20 * 1024 * 1024  # getFile
FILE_CHUNK = 64 * 1024
PHOTO_DIMENSIONS_SUM_MAX = 10_000
PHOTO_RATIO_MAX = 20
THUMB_SIDE = 90
LONG_POLL_MAX = 50  # the real server caps timeout at 50 s
# sendMessageDraft (core.telegram.org/bots/api#sendmessagedraft): private chats only, a
# non-zero draft_id, 0-4096 characters; a draft is a preview that fades after about 30 s
# unless sent again, and the next message the bot sends in the chat takes its place.
DRAFT_LIFETIME = 30.0
# Payments (core.telegram.org/bots/api#sendinvoice, #answerprecheckoutquery)
INVOICE_TITLE_MAX = 32
INVOICE_DESCRIPTION_MAX = 255
INVOICE_PAYLOAD_MAX = 128  # bytes
STARS_AMOUNT_MAX = 100_000
PRE_CHECKOUT_TIMEOUT = 10.0  # seconds the bot has to answer a pre-checkout query
_STALE_QUERY = "query is too old and response timeout expired or query ID is invalid"

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Update types delivered when allowed_updates is unset or empty.
DEFAULT_UPDATE_TYPES_EXCLUDED = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)

# Inline keyboard button fields that give the button an action.
BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# Parameters whose form value is a plain string, never JSON (PTB sends str values raw).
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "action",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "sticker",
        "animation",
        "thumbnail",
        "url",
        "emoji",
        "business_connection_id",
        "message_effect_id",
        "language_code",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "filename",
        "file_name",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "pre_checkout_query_id",
        "error_message",
        "telegram_payment_charge_id",
        "inline_query_id",
        "next_offset",
    }
)
CHAT_ID_PARAMS = frozenset({"chat_id", "from_chat_id"})
# Parameters whose value is a JSON object/array; a JSON body may still give them as strings.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "media",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "message_ids",
        "reaction",
        "prices",
        "suggested_tip_amounts",
        "results",
    }
)

_CAPTIONED = ("photo", "document", "video", "audio", "animation")  # messages that have a caption


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def _chat_of(update: dict[str, Any]) -> int | None:
    """The chat an update is about (None: none, e.g. an inline query)."""
    for kind, value in update.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        holder = value.get("message") if kind == "callback_query" else value
        chat = (holder or {}).get("chat") if isinstance(holder, dict) else None
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
    return None


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


#: Telegram's rule for setWebhook's secret_token.
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: How long the fake waits before it POSTs an update again after a failed delivery.
WEBHOOK_RETRY_DELAY = 0.2
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of an update to the webhook: its HTTP status, or None and the error."""

    update_id: int
    status: int | None
    error: str | None = None


@dataclass
class Call:
    """One API call the bot made.

    ``params`` are decoded: form strings holding JSON (reply_markup, media, entities, ...) are
    parsed back into objects and numbers into ints. ``files`` holds multipart uploads by field
    name. ``at`` is ``time.monotonic()`` on arrival. ``response`` is the full JSON answer and
    ``result`` its ``result`` (``None`` for an error answer); both are set once answered, and
    ``answered`` is ``time.monotonic()`` at that moment.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    response: dict[str, Any] | None = None
    result: Any = None
    filenames: dict[str, str] = field(default_factory=dict)
    answered: float | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The error description, if the call failed."""
        if self.response is None or self.response.get("ok"):
            return None
        return str(self.response.get("description"))


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    data: bytes
    size: int
    kind: str  # photo | document | sticker | voice | animation | video | audio
    path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class _Upload:
    data: bytes
    filename: str | None
    content_type: str | None


# --------------------------------------------------------------------------------------------
# Entity parsing, ported from TDLib (td/telegram/MessageEntity.cpp): parse_html, with the same
# error texts and byte offsets.

_SPACE = frozenset(b" \t\r\n\x00\x0b")


def _is_first_unit(c: int) -> bool:
    return (c & 0xC0) != 0x80


def _utf16_step(c: int) -> int:
    return 1 + (c >= 0xF0)


class _Bytes:
    """Bytes with C-string semantics: reading past the end gives 0."""

    def __init__(self, data: bytes) -> None:
        self.b = data
        self.n = len(data)

    def __getitem__(self, i: int) -> int:
        return self.b[i] if 0 <= i < self.n else 0


def _checked_link(url: str) -> str:
    url = url.strip()
    if not url or any(ch in url for ch in ' \n\t<>"'):
        return ""
    scheme, _, rest = url.partition("://")
    if rest:
        if scheme.lower() in ("http", "https", "tg", "ton", "tonsite"):
            return url
        return ""
    if re.match(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+([/:?#].*)?$", url):
        return "http://" + url
    return ""


def _decode_html_entity(t: _Bytes, pos: int) -> tuple[int, int]:
    end = pos + 1
    res = 0
    if t[pos + 1] == ord("#"):
        end += 1
        if t[pos + 2] == ord("x"):
            end += 1
            while chr(t[end]) in "0123456789abcdefABCDEF" and t[end]:
                res = res * 16 + int(chr(t[end]), 16)
                end += 1
        else:
            while ord("0") <= t[end] <= ord("9"):
                res = res * 10 + t[end] - ord("0")
                end += 1
        if res == 0 or res >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(t[end]).isascii() and chr(t[end]).isalpha():
            end += 1
        name = t.b[pos + 1 : end]
        res = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}.get(name, 0)
        if not res:
            return 0, pos
    if t[end] == ord(";"):
        return res, end + 1
    return res, end


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)


_MDV2_MARKUP = frozenset("_*[]~`|")
_MDV2_RESERVED = frozenset("()>#+-={}.!")


def _parse_markdown_v2_plain(text: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2 text without markup (escapes only), as Telegram reads it; markup itself is
    not modelled and is refused as an unsupported parse mode."""
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, ""))
        elif ch in _MDV2_MARKUP:
            raise _bad("unsupported parse_mode: the fake reads MarkdownV2 escapes, not markup")
        elif ch in _MDV2_RESERVED:
            raise ValueError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            out.append(ch)
    return "".join(out), []


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    t = _Bytes(text.encode("utf-8"))
    out = bytearray()
    entities: list[dict[str, Any]] = []
    utf16 = 0
    nested: list[dict[str, Any]] = []
    i = 0
    while i < t.n:
        c = t[i]
        if c == ord("&"):
            code, new_i = _decode_html_entity(t, i)
            if code:
                if 0xD800 <= code <= 0xDFFF:
                    raise ValueError(
                        "Text contains invalid Unicode characters after decoding HTML entities, "
                        "check for unmatched surrogate code units"
                    )
                utf16 += 1 + (code > 0xFFFF)
                out += chr(code).encode("utf-8")
                i = new_i
                continue
        if c != ord("<"):
            if _is_first_unit(c):
                utf16 += _utf16_step(c)
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if t[i] != ord("/"):
            while t[i] not in _SPACE and t[i] != ord(">"):
                i += 1
            if t[i] == 0:
                raise ValueError(f"Unclosed start tag at byte offset {begin}")
            tag = t.b[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise ValueError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            expandable = False
            while t[i] != ord(">"):
                while t[i] != 0 and t[i] in _SPACE:
                    i += 1
                if t[i] == ord(">"):
                    break
                attr_begin = i
                while t[i] not in _SPACE and t[i] != ord("="):
                    if t[i] == ord(">") and tag == "blockquote":
                        break
                    i += 1
                attr = t.b[attr_begin:i].decode("utf-8", "replace")
                if not attr:
                    raise ValueError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while t[i] != 0 and t[i] in _SPACE:
                    i += 1
                if tag == "blockquote" and attr.lower() == "expandable" and t[i] != ord("="):
                    expandable = True  # the Bot API allows a bare `expandable` attribute
                    if t[i] == 0:
                        raise ValueError(f"Unclosed start tag at byte offset {begin}")
                    continue
                if t[i] != ord("="):
                    raise ValueError(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {begin}'
                    )
                i += 1
                while t[i] != 0 and t[i] in _SPACE:
                    i += 1
                if t[i] == 0:
                    raise ValueError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if t[i] not in (ord("'"), ord('"')):
                    token_begin = i
                    while chr(t[i]).isascii() and (chr(t[i]).isalnum() or t[i] in b".-") and t[i]:
                        i += 1
                    value = t.b[token_begin:i].decode("utf-8", "replace").lower()
                    if t[i] not in _SPACE and t[i] != ord(">"):
                        raise ValueError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    end_ch = t[i]
                    i += 1
                    val = bytearray()
                    while t[i] != end_ch and t[i] != 0:
                        if t[i] == ord("&"):
                            code, new_i = _decode_html_entity(t, i)
                            if code:
                                val += chr(code).encode("utf-8", "surrogatepass")
                                i = new_i
                                continue
                        val.append(t[i])
                        i += 1
                    if t[i] == end_ch:
                        i += 1
                    value = val.decode("utf-8", "replace")
                if t[i] == 0:
                    raise ValueError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and attr == "href":
                    argument = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise ValueError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
            nested.append(
                {
                    "tag": tag,
                    "arg": argument,
                    "offset": utf16,
                    "begin": len(out),
                    "expandable": expandable,
                }
            )
        else:
            if not nested:
                raise ValueError(f"Unexpected end tag at byte offset {begin}")
            while t[i] not in _SPACE and t[i] != ord(">"):
                i += 1
            end_tag = t.b[begin + 2 : i].decode("utf-8", "replace").lower()
            while t[i] in _SPACE and t[i] != 0:
                i += 1
            if t[i] != ord(">"):
                raise ValueError(f"Unclosed end tag at byte offset {begin}")
            top = nested[-1]
            tag = top["tag"]
            if end_tag and end_tag != tag:
                raise ValueError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                    f'found "</{end_tag}>"'
                )
            if utf16 > top["offset"]:
                off = top["offset"]
                length = utf16 - off
                ent: dict[str, Any] | None = None
                if tag in ("i", "em"):
                    ent = {"type": "italic"}
                elif tag in ("b", "strong"):
                    ent = {"type": "bold"}
                elif tag in ("s", "strike", "del"):
                    ent = {"type": "strikethrough"}
                elif tag in ("u", "ins"):
                    ent = {"type": "underline"}
                elif tag in ("tg-spoiler", "span"):
                    ent = {"type": "spoiler"}
                elif tag == "tg-emoji":
                    if not top["arg"].isdigit() or int(top["arg"]) == 0:
                        raise ValueError("Invalid custom emoji identifier specified")
                    ent = {"type": "custom_emoji", "custom_emoji_id": top["arg"]}
                elif tag == "a":
                    url = top["arg"] or out[top["begin"] :].decode("utf-8", "replace")
                    url = _checked_link(url)
                    if url:
                        ent = {"type": "text_link", "url": url}
                elif tag == "pre":
                    last = entities[-1] if entities else None
                    if (
                        last is not None
                        and last["type"] == "code"
                        and last["offset"] == off
                        and last["length"] == length
                        and last.get("language")
                    ):
                        last["type"] = "pre"
                    else:
                        ent = {"type": "pre"}
                elif tag == "code":
                    last = entities[-1] if entities else None
                    if (
                        last is not None
                        and last["type"] == "pre"
                        and last["offset"] == off
                        and last["length"] == length
                        and top["arg"]
                    ):
                        last["language"] = top["arg"]
                    else:
                        ent = {"type": "code"}
                        if top["arg"]:
                            ent["language"] = top["arg"]
                elif tag == "blockquote":
                    ent = {"type": "expandable_blockquote" if top["expandable"] else "blockquote"}
                if ent is not None:
                    ent["offset"] = off
                    ent["length"] = length
                    entities.append(ent)
            nested.pop()
        i += 1
    if nested:
        raise ValueError(f"Can't find end tag corresponding to start tag {nested[-1]['tag']}")
    for ent in entities:
        if ent["type"] == "code":
            ent.pop("language", None)
    return out.decode("utf-8", "replace"), _sorted_entities(entities)


def _sorted_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


_TRIM = " \t\r\n\x0b\x0c"


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim leading/trailing whitespace like TDLib's fix_formatted_text, shifting entities."""
    lead = len(text) - len(text.lstrip(_TRIM))
    stripped = text.strip(_TRIM)
    total = _utf16_len(stripped)
    fixed = []
    for ent in entities:
        start = max(ent["offset"] - lead, 0)
        end = min(ent["offset"] + ent["length"] - lead, total)
        if end > start:
            fixed.append({**ent, "offset": start, "length": end - start})
    return stripped, fixed


def _bot_command_entity(text: str) -> list[dict[str, Any]] | None:
    m = re.match(r"/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_/<>])", text)
    if not m:
        return None
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(m.group(0))}]


# --------------------------------------------------------------------------------------------
# Parameter access


class _Params:
    def __init__(self, data: dict[str, Any]) -> None:
        self.d = data

    def has(self, name: str) -> bool:
        return self.d.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        v = self.d.get(name)
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict | list):
            return json.dumps(v)
        return str(v)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        v = self.d.get(name)
        if v is None or v == "":
            return default
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return int(v)
        try:
            return int(str(v).strip())
        except ValueError:
            try:
                return int(float(str(v).strip()))
            except ValueError:
                raise _bad(f'field "{name}" must be a valid Number') from None

    def get_float(self, name: str, default: float) -> float:
        v = self.d.get(name)
        if v is None or v == "":
            return default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise _bad(f'field "{name}" must be a valid Number') from None

    def get_bool(self, name: str) -> bool:
        v = self.d.get(name)
        if isinstance(v, str):
            return v.strip().lower() in ("true", "1")
        return bool(v)

    def get_obj(self, name: str, what: str | None = None) -> Any:
        v = self.d.get(name)
        if isinstance(v, str):
            if v == "":
                return None
            try:
                return json.loads(v)
            except ValueError:
                raise _bad(f"can't parse {what or name} JSON object") from None
        return v


def _decode_form_value(name: str, value: str) -> Any:
    if name in STRING_PARAMS:
        return value
    if name in CHAT_ID_PARAMS:
        return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return value
    return parsed


def _strip_reply(msg: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(msg)
    out.pop("reply_to_message", None)  # one level deep only
    return out


# --------------------------------------------------------------------------------------------
# Flood limits


class _Flood:
    """~30 msg/s global, 1 msg/s per private chat (burst 3), 20 msg/min per group."""

    GLOBAL_PER_SECOND = 30
    PRIVATE_RATE = 1.0
    PRIVATE_BURST = 3.0
    GROUP_PER_MINUTE = 20

    def __init__(self) -> None:
        self.global_sends: deque[float] = deque()
        self.private: dict[int, tuple[float, float]] = {}  # chat -> (tokens, last)
        self.group_sends: dict[int, deque[float]] = {}

    def check(self, chat_id: int, count: int = 1) -> None:
        now = time.monotonic()
        while self.global_sends and now - self.global_sends[0] >= 1.0:
            self.global_sends.popleft()
        if len(self.global_sends) + count > self.GLOBAL_PER_SECOND:
            raise _too_many(1)
        if chat_id > 0:
            tokens, last = self.private.get(chat_id, (self.PRIVATE_BURST, now))
            tokens = min(self.PRIVATE_BURST, tokens + (now - last) * self.PRIVATE_RATE)
            if tokens < count:
                raise _too_many(math.ceil((count - tokens) / self.PRIVATE_RATE))
            self.private[chat_id] = (tokens - count, now)
        else:
            sends = self.group_sends.setdefault(chat_id, deque())
            while sends and now - sends[0] >= 60.0:
                sends.popleft()
            if len(sends) + count > self.GROUP_PER_MINUTE:
                raise _too_many(max(1, math.ceil(sends[0] + 60.0 - now)) if sends else 60)
            sends.extend([now] * count)
        self.global_sends.extend([now] * count)


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (128, 128, 128)).save(buf, "JPEG", quality=50)
    return buf.getvalue()


_TINY_JPEG = _tiny_jpeg()


def _too_many(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


# --------------------------------------------------------------------------------------------


class FakeTelegram:
    """A fake Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "nano_test_bot",
        bot_id: int = 123456,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Nano Test Bot",
            "username": bot_username,
        }
        self.root = ""
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        # Inline mode: queries waiting for their one answer (id -> query), the answers given,
        # and the messages people posted through the bot (inline_message_id -> message).
        self._inline_queries: dict[str, dict[str, Any]] = {}
        self.inline_answers: dict[str, dict[str, Any]] = {}
        self.inline_messages: dict[str, dict[str, Any]] = {}
        self.inline_feedback = True  # @BotFather's /setinlinefeedback: chosen results reported
        self.inline_mode = True  # @BotFather's /setinline: inline queries reach the bot
        self.chats: dict[int, dict[str, Any]] = {}
        self.flood_limit = False
        # When True, group messages reach the bot only as under Telegram's privacy mode:
        # commands, replies to the bot's messages, and messages mentioning the bot.
        self.privacy_mode = False
        self.chat_admins: dict[int, list[int]] = {}  # for getChatMember; first id is the owner
        # Exceptions raised inside the fake while answering (should stay empty).
        self.server_errors: list[BaseException] = []
        # When False, photos the bot sends are not decoded to make their thumbnail size (the
        # dimensions still come from the header): for benchmarks, where the fake's own CPU
        # must stay small next to the bot's.
        self.photo_thumbnails = True
        self.file_bytes_sent: dict[str, int] = {}  # file_id -> bytes written to a downloader
        # (chat_id, message_id) of each message update -> time.monotonic() when a getUpdates
        # answer first carried it to the bot.
        self.delivered_at: dict[tuple[int, int], float] = {}
        # The draft each private chat shows now: {"draft_id", "text", "at"} (time.monotonic()),
        # and the drafts a message took the place of: (chat_id, draft_id, message_id).
        self.drafts: dict[int, dict[str, Any]] = {}
        self.replaced_drafts: list[tuple[int, int, int]] = []

        self._all: dict[tuple[int, int], dict[str, Any]] = {}  # user and bot messages
        self._next_mid: dict[int, int] = {}
        self._files: dict[str, _File] = {}
        self._files_by_path: dict[str, _File] = {}
        self._photo_sizes: dict[str, list[dict[str, Any]]] = {}  # any size's id -> all sizes
        self._file_seq = itertools.count(1)
        self._pending: list[dict[str, Any]] = []
        self._update_seq = itertools.count(700_000_001)
        self._allowed_updates: list[str] | None = None
        self._poll_gen = 0
        self._updates_event = asyncio.Event()
        self._calls_event = asyncio.Event()
        self._failures: dict[str, deque[ApiError]] = {}
        self._callbacks: set[str] = set()
        # Payments in Stars: invoices by (chat, message), pre-checkout queries waiting for
        # their answer (id -> (query, when asked, chat, lose the payment's update)), the
        # payments made (successful_payment messages) and the bot's Star transactions.
        self.invoices: dict[tuple[int, int], dict[str, Any]] = {}
        self.pre_checkout_timeout = PRE_CHECKOUT_TIMEOUT
        self.pre_checkout_answers: dict[str, dict[str, Any]] = {}
        self.payments: list[dict[str, Any]] = []
        self.star_transactions: list[dict[str, Any]] = []
        self.refunded: set[str] = set()
        self._pre_checkouts: dict[str, tuple[dict[str, Any], float, int, bool]] = {}
        self._payment_updates: dict[str, dict[str, Any]] = {}
        self._flood = _Flood()
        # Webhook mode (setWebhook): the webhook's settings, every POST made to it, the last
        # failed delivery's words; updates being POSTed now (by id() of the queued dict).
        self.webhook: dict[str, Any] | None = None
        self.last_update_id = 0  # the update_id of the update queued last
        self.webhook_attempts: list[WebhookAttempt] = []
        self.webhook_last_error: str | None = None
        self.webhook_retry_delay = WEBHOOK_RETRY_DELAY
        self._delivered: dict[int, dict[str, Any]] = {}  # update_id -> update, once delivered
        self._in_flight: set[int] = set()
        self._webhook_task: asyncio.Task[None] | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, tuple[str, Callable[..., Any]]] = {
            name.lower(): (name, fn)
            for name, fn in {
                "getMe": self._get_me,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "setMyCommands": self._set_my_commands,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendMediaGroup": self._send_media_group,
                "editMessageText": lambda p, _: self._edit(p, "text"),
                "editMessageCaption": lambda p, _: self._edit(p, "caption"),
                "editMessageReplyMarkup": lambda p, _: self._edit(p, None),
                "deleteMessage": self._delete_message,
                "sendChatAction": self._send_chat_action,
                "sendMessageDraft": self._send_message_draft,
                "answerCallbackQuery": self._answer_callback_query,
                "answerInlineQuery": self._answer_inline_query,
                "editMessageMedia": self._edit_message_media,
                "getFile": self._get_file,
                "getChatMember": self._get_chat_member,
                "sendInvoice": self._send_invoice,
                "answerPreCheckoutQuery": self._answer_pre_checkout_query,
                "refundStarPayment": self._refund_star_payment,
                "getStarTransactions": self._get_star_transactions,
            }.items()
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        self._closing = False
        return self.root

    async def stop(self) -> None:
        self._closing = True
        self._kick_updates()
        await self._stop_webhook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- things a person does

    def user(
        self,
        user_id: int = 1001,
        first_name: str = "Alice",
        language_code: str | None = "en",
        username: str | None = None,
    ) -> dict[str, Any]:
        u: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            u["username"] = username
        if language_code is not None:
            u["language_code"] = language_code
        return u

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: dict[str, Any] | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        ents = entities if entities is not None else _bot_command_entity(text)
        if ents:
            content["entities"] = ents
        return self._user_message(
            chat_id, user, chat_type, reply_to_message_id, message_thread_id, content
        )

    def send_photo(
        self,
        chat_id: int,
        image: bytes,
        *,
        caption: str | None = None,
        user: dict[str, Any] | None = None,
        chat_type: str = "private",
        media_group_id: str | None = None,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"photo": self._make_photo_sizes(image)}
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        self._add_caption(content, caption)
        return self._user_message(
            chat_id, user, chat_type, reply_to_message_id, message_thread_id, content
        )

    def send_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        user: dict[str, Any] | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        rec = self._store_file(data, "document", file_name=file_name, mime_type=mime_type)
        content: dict[str, Any] = {"document": self._document_dict(rec)}
        self._add_caption(content, caption)
        return self._user_message(chat_id, user, chat_type, reply_to_message_id, None, content)

    def send_sticker(self, chat_id: int, *, user: dict[str, Any] | None = None) -> dict[str, Any]:
        buf = io.BytesIO()
        Image.new("RGBA", (512, 512), (255, 200, 0, 255)).save(buf, "WEBP")
        rec = self._store_file(buf.getvalue(), "sticker", width=512, height=512)
        sticker = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
            "set_name": "TestStickers",
            "file_size": rec.size,
        }
        return self._user_message(chat_id, user, "private", None, None, {"sticker": sticker})

    def send_voice(self, chat_id: int, *, user: dict[str, Any] | None = None) -> dict[str, Any]:
        rec = self._store_file(b"OggS\x00\x02" + bytes(200), "voice", mime_type="audio/ogg")
        voice = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "duration": 2,
            "mime_type": "audio/ogg",
            "file_size": rec.size,
        }
        return self._user_message(chat_id, user, "private", None, None, {"voice": voice})

    def send_animation(
        self,
        chat_id: int,
        data: bytes,
        *,
        user: dict[str, Any] | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        width, height = 320, 240
        with contextlib.suppress(Exception), Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        rec = self._store_file(
            data,
            "animation",
            file_name="animation.gif.mp4",
            mime_type="video/mp4",
            width=width,
            height=height,
        )
        animation = {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "width": width,
            "height": height,
            "duration": 1,
            "file_name": rec.file_name,
            "mime_type": rec.mime_type,
            "file_size": rec.size,
        }
        content: dict[str, Any] = {"animation": animation, "document": self._document_dict(rec)}
        self._add_caption(content, caption)
        return self._user_message(chat_id, user, "private", None, None, content)

    def send_content(
        self,
        chat_id: int,
        content: dict[str, Any],
        *,
        user: dict[str, Any] | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's message with any content fields (video, poll, dice, new_chat_members...)."""
        return self._user_message(
            chat_id, user, chat_type, reply_to_message_id, message_thread_id, content
        )

    def press_button(
        self, chat_id: int, message_id: int, data: str, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A press on a button under a message the bot sent. `data` is sent as given (a forged
        client can send any); "" stands for a query without data, which the API omits."""
        msg = self.messages.get((chat_id, message_id))
        if msg is None:
            raise KeyError(f"the bot sent no message {message_id} in chat {chat_id}")
        if user is None:
            user = self.user(chat_id if msg["chat"]["type"] == "private" else 1001)
        query_id = str(secrets.randbelow(10**18) + 10**18)
        self._callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "message": copy.deepcopy(msg),
            "chat_instance": str(abs(hash((chat_id, self.bot_id))) % 10**18),
        }
        if data:
            query["data"] = data
        self.queue_update({"callback_query": query})
        return copy.deepcopy(query)

    def press_inline_button(
        self, data: str, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A press on a button of an inline-mode message: one the bot never sent to a chat, so
        the query has an `inline_message_id` and neither `message` nor a chat."""
        user = user or self.user()
        query_id = str(secrets.randbelow(10**18) + 10**18)
        self._callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "inline_message_id": "AgAAA" + secrets.token_hex(12),
            "chat_instance": str(secrets.randbelow(10**18)),
            "data": data,
        }
        self.queue_update({"callback_query": query})
        return copy.deepcopy(query)

    def send_callback_query(self, query: dict[str, Any], *, known: bool = True) -> None:
        """Deliver a callback query built by the caller (e.g. under an InaccessibleMessage).
        With known=False its id is one the server no longer accepts: answering it fails with
        "query is too old", as after a bot was down for a while."""
        if known:
            self._callbacks.add(str(query["id"]))
        self.queue_update({"callback_query": copy.deepcopy(query)})

    def send_inline_query(
        self, query: str, *, user: dict[str, Any] | None = None, offset: str = ""
    ) -> str:
        """Someone types `@bot <query>` in any chat (`offset`: the next page, as the bot's
        next_offset gave it); returns the query id, which takes one answer."""
        if not self.inline_mode:
            raise RuntimeError("inline mode is off for this bot (@BotFather's /setinline)")
        query_id = str(secrets.randbelow(10**18) + 10**18)
        inline = {
            "id": query_id,
            "from": user or self.user(),
            "query": query,
            "offset": offset,
            "chat_type": "sender",
        }
        self._inline_queries[query_id] = inline
        self.queue_update({"inline_query": copy.deepcopy(inline)})
        return query_id

    def choose_inline_result(self, query_id: str, result_id: str) -> str | None:
        """The person taps one result of the bot's answer to that query: the message is posted
        (in a chat the bot may not be in) and, with inline feedback on, a chosen_inline_result
        is delivered. Like Telegram, only a result with an inline keyboard gets an
        inline_message_id (returned; None without one), the bot's one handle on the message."""
        answer = self.inline_answers[query_id]
        result = next(r for r in answer["results"] if r["id"] == result_id)
        inline = answer["query"]
        message: dict[str, Any] = {"from": inline["from"], "via_bot": copy.deepcopy(self.bot_user)}
        if result["type"] == "article":
            content = result["input_message_content"]
            message["text"] = content["message_text"]
        else:
            rec = self._files[result["photo_file_id"]]
            message["photo"] = self._photo_from_record(rec)
            if result.get("caption"):
                message["caption"] = result["caption"]
        inline_message_id = None
        if "reply_markup" in result:
            message["reply_markup"] = copy.deepcopy(result["reply_markup"])
            inline_message_id = "BAAAA" + secrets.token_hex(16)
            self.inline_messages[inline_message_id] = message
        if self.inline_feedback:
            chosen: dict[str, Any] = {
                "result_id": result_id,
                "from": inline["from"],
                "query": inline["query"],
            }
            if inline_message_id is not None:
                chosen["inline_message_id"] = inline_message_id
            self.queue_update({"chosen_inline_result": chosen})
        return inline_message_id

    def edit_text(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The person edits a text message they sent: the bot gets an `edited_message`."""
        msg = self._all.get((chat_id, message_id))
        if msg is None or "text" not in msg or msg.get("from", {}).get("id") == self.bot_id:
            raise KeyError(f"no text message {message_id} of a person in chat {chat_id}")
        msg["text"] = text
        msg.pop("entities", None)
        ents = _bot_command_entity(text)
        if ents:
            msg["entities"] = ents
        msg["edit_date"] = max(int(time.time()), msg["date"])
        if self._delivered_to_bot(msg):
            self.queue_update({"edited_message": copy.deepcopy(msg)})
        return copy.deepcopy(msg)

    def pay(
        self,
        chat_id: int,
        message_id: int,
        *,
        user: dict[str, Any] | None = None,
        lose_update: bool = False,
    ) -> str:
        """A person presses Pay on an invoice the bot sent: the bot gets a pre_checkout_query
        (its id is returned). Once the bot answers ok=true, the Stars are taken and the chat
        gets a `successful_payment` message from the payer; with `lose_update`, that message
        never reaches the bot (as when a bot confirmed the update and died before acting)."""
        invoice = self.invoices.get((chat_id, message_id))
        if invoice is None:
            raise KeyError(f"the bot sent no invoice {message_id} in chat {chat_id}")
        user = user or self.user(chat_id if chat_id > 0 else 1001)
        query_id = str(secrets.randbelow(10**18) + 10**18)
        query = {
            "id": query_id,
            "from": copy.deepcopy(user),
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"],
            "invoice_payload": invoice["payload"],
        }
        self._pre_checkouts[query_id] = (query, time.monotonic(), chat_id, lose_update)
        self.queue_update({"pre_checkout_query": copy.deepcopy(query)})
        return query_id

    def redeliver_payment(self, charge_id: str) -> int:
        """Deliver the update of a payment again (Telegram redelivers an update it has no
        confirmation for): the same message, under a new update id."""
        return self.queue_update(copy.deepcopy(self._payment_updates[charge_id]))

    def balance_of(self, user_id: int) -> int:
        """Stars the bot received from this person and did not refund."""
        total = 0
        for tx in self.star_transactions:
            if tx.get("source", {}).get("user", {}).get("id") == user_id:
                total += tx["amount"]
            if tx.get("receiver", {}).get("user", {}).get("id") == user_id:
                total -= tx["amount"]
        return total

    def add_file(
        self, data: bytes, *, file_size: int | None = None, kind: str | None = None
    ) -> tuple[str, str]:
        """Store a file; ``kind`` defaults to "photo" for images Pillow reads, else "document"."""
        width = height = None
        if kind is None:
            kind = "document"
            with contextlib.suppress(Exception), Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                kind = "photo"
        rec = self._store_file(data, kind, width=width, height=height)
        if file_size is not None:
            rec.size = file_size
        return rec.file_id, rec.file_unique_id

    def set_file_size(self, file_id: str, size: int) -> None:
        """Claim another size for a stored file (e.g. 25 MB, so getFile refuses it).

        Also rewrites ``file_size`` in stored messages and updates not yet delivered.
        """
        self._files[file_id].size = size

        def fix(obj: Any) -> None:
            if isinstance(obj, dict):
                if obj.get("file_id") == file_id and "file_size" in obj:
                    obj["file_size"] = size
                for v in obj.values():
                    fix(v)
            elif isinstance(obj, list):
                for v in obj:
                    fix(v)

        fix(self._pending)
        fix(self._all)
        fix(self.messages)

    def queue_update(self, update: dict[str, Any]) -> int:
        """Deliver any update JSON as given (e.g. one recorded from the real server); its
        update_id is replaced by the next one in sequence, which is returned."""
        update = dict(update)
        update["update_id"] = self.last_update_id = next(self._update_seq)
        self._pending.append(update)
        self._kick_updates()
        return int(update["update_id"])

    # ---------------------------------------------------------------- what the bot did

    @property
    def unconfirmed_updates(self) -> int:
        """Updates queued that no getUpdates offset has confirmed yet."""
        return len(self._pending)

    def calls_of(self, *methods: str) -> list[Call]:
        wanted = {m.lower() for m in methods}
        return [c for c in self.calls if c.method.lower() in wanted]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the public API names it `timeout`
        count: int = 1,
    ) -> list[Call]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [
                c
                for c in self.calls
                if c.response is not None
                and c.method.lower() == method.lower()
                and (predicate is None or predicate(c))
            ]
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} {method} call(s) "
                    f"(matched {len(found)}); calls seen:\n{self._summary()}"
                )
            event = self._calls_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str = "Too Many Requests: retry after 1",
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        queue = self._failures.setdefault(method.lower(), deque())
        for _ in range(times):
            queue.append(ApiError(error_code, description, retry_after=retry_after))

    def clear_failures(self, method: str | None = None) -> None:
        """Forget failures queued by fail_next (for one method, or all)."""
        if method is None:
            self._failures.clear()
        else:
            self._failures.pop(method.lower(), None)

    # ---------------------------------------------------------------- internals: helpers

    def _summary(self) -> str:
        lines = []
        for c in self.calls:
            if c.method == "getUpdates":
                continue
            shown = {k: v for k, v in c.params.items() if k not in ("media",)}
            text = json.dumps(shown, ensure_ascii=False, default=str)
            if len(text) > 160:
                text = text[:157] + "..."
            status = "pending" if c.response is None else ("ok" if c.ok else c.error)
            files = f" files={sorted(c.files)}" if c.files else ""
            lines.append(f"  {c.method} {text}{files} -> {status}")
        polls = sum(1 for c in self.calls if c.method == "getUpdates")
        lines.append(f"  (+{polls} getUpdates)")
        return "\n".join(lines)

    def _kick_updates(self) -> None:
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()

    def _kick_calls(self) -> None:
        event, self._calls_event = self._calls_event, asyncio.Event()
        event.set()

    def _next_message_id(self, chat_id: int) -> int:
        mid = self._next_mid.get(chat_id, 1)
        self._next_mid[chat_id] = mid + 1
        return mid

    def _new_file_ids(self, kind: str) -> tuple[str, str]:
        n = next(self._file_seq)
        prefix = {
            "photo": "AgACAgIAAxkBAAI",
            "document": "BQACAgIAAxkBAAI",
            "sticker": "CAACAgIAAxkBAAI",
            "voice": "AwACAgIAAxkBAAI",
            "animation": "CgACAgIAAxkBAAI",
            "video": "BAACAgIAAxkBAAI",
            "audio": "CQACAgIAAxkBAAI",
        }.get(kind, "BQACAgIAAxkBAAI")
        return (
            f"{prefix}{n:06d}{secrets.token_urlsafe(24)}",
            f"AQAD{n:04d}{secrets.token_urlsafe(6)}",
        )

    def _store_file(
        self,
        data: bytes,
        kind: str,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> _File:
        file_id, unique = self._new_file_ids(kind)
        directory, ext = {
            "photo": ("photos", ".jpg"),
            "sticker": ("stickers", ".webp"),
            "voice": ("voice", ".oga"),
            "animation": ("animations", ".mp4"),
            "video": ("videos", ".mp4"),
            "audio": ("music", ".mp3"),
            "thumbnail": ("thumbnails", ".jpg"),
        }.get(kind, ("documents", ""))
        if kind == "document" and file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1][:8]
        path = f"{directory}/file_{len(self._files_by_path)}{ext}"
        rec = _File(
            file_id=file_id,
            file_unique_id=unique,
            data=data,
            size=len(data),
            kind=kind,
            path=path,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self._files[file_id] = rec
        self._files_by_path[path] = rec
        return rec

    def _document_dict(self, rec: _File) -> dict[str, Any]:
        doc: dict[str, Any] = {"file_id": rec.file_id, "file_unique_id": rec.file_unique_id}
        if rec.file_name is not None:
            doc["file_name"] = rec.file_name
        if rec.mime_type is not None:
            doc["mime_type"] = rec.mime_type
        doc["file_size"] = rec.size
        return doc

    def _photo_size(self, rec: _File) -> dict[str, Any]:
        return {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "file_size": rec.size,
            "width": rec.width or 0,
            "height": rec.height or 0,
        }

    def _make_photo_sizes(self, image: bytes) -> list[dict[str, Any]]:
        """A small thumbnail size and the full size (the exact bytes given)."""
        if not self.photo_thumbnails:
            return self._photo_sizes_cheap(image)
        try:
            with Image.open(io.BytesIO(image)) as im:
                width, height = im.size
                thumb = im.convert("RGB")
                thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
                buf = io.BytesIO()
                thumb.save(buf, "JPEG", quality=80)
                thumb_bytes, thumb_size = buf.getvalue(), thumb.size
        except Exception:
            width, height = 512, 512
            thumb_bytes, thumb_size = image, (THUMB_SIDE, THUMB_SIDE)
        small = self._store_file(thumb_bytes, "photo", width=thumb_size[0], height=thumb_size[1])
        full = self._store_file(image, "photo", width=width, height=height)
        sizes = [self._photo_size(small), self._photo_size(full)]
        for s in sizes:
            self._photo_sizes[s["file_id"]] = sizes
        return copy.deepcopy(sizes)

    def _photo_sizes_cheap(self, image: bytes) -> list[dict[str, Any]]:
        """Like `_make_photo_sizes` without decoding pixels: the thumbnail is a stand-in."""
        try:
            with Image.open(io.BytesIO(image)) as im:
                width, height = im.size
        except Exception:
            width, height = 512, 512
        scale = THUMB_SIDE / max(width, height, 1)
        thumb_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = self._store_file(_TINY_JPEG, "photo", width=thumb_size[0], height=thumb_size[1])
        full = self._store_file(image, "photo", width=width, height=height)
        sizes = [self._photo_size(small), self._photo_size(full)]
        for s in sizes:
            self._photo_sizes[s["file_id"]] = sizes
        return copy.deepcopy(sizes)

    def _note_delivery(self, updates: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for update in updates:
            msg = update.get("message") or update.get("edited_message")
            if isinstance(msg, dict):
                key = (int(msg["chat"]["id"]), int(msg["message_id"]))
                self.delivered_at.setdefault(key, now)

    def _add_caption(self, content: dict[str, Any], caption: str | None) -> None:
        if caption is None:
            return
        content["caption"] = caption
        ents = _bot_command_entity(caption)
        if ents:
            content["caption_entities"] = ents

    def _register_chat(
        self, chat_id: int, chat_type: str, user: dict[str, Any], forum: bool
    ) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None or chat.get("type") != chat_type:
            if chat_type == "private":
                chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
                if user.get("username"):
                    chat["username"] = user["username"]
            elif chat_type == "group":
                chat = {"id": chat_id, "type": "group", "title": "Test Group"}
            elif chat_type == "supergroup":
                chat = {"id": chat_id, "type": "supergroup", "title": "Test Supergroup"}
            else:
                chat = {"id": chat_id, "type": chat_type, "title": "Test Channel"}
            self.chats[chat_id] = chat
        if forum and chat_type == "supergroup":
            chat["is_forum"] = True
        return copy.deepcopy(chat)

    def _chat_for(self, chat_id: int) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is not None:
            return copy.deepcopy(chat)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        if chat_id <= -1_000_000_000_000:
            return {"id": chat_id, "type": "supergroup", "title": "Test Supergroup"}
        return {"id": chat_id, "type": "group", "title": "Test Group"}

    def _user_message(
        self,
        chat_id: int,
        user: dict[str, Any] | None,
        chat_type: str,
        reply_to_message_id: int | None,
        message_thread_id: int | None,
        content: dict[str, Any],
    ) -> dict[str, Any]:
        if user is None:
            user = self.user(chat_id if chat_type == "private" else 1001)
        chat = self._register_chat(chat_id, chat_type, user, message_thread_id is not None)
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": copy.deepcopy(user),
            "chat": chat,
            "date": int(time.time()),
        }
        if message_thread_id is not None:
            msg["message_thread_id"] = message_thread_id
            if chat.get("is_forum"):
                msg["is_topic_message"] = True
        if reply_to_message_id is not None:
            target = self._all.get((chat_id, reply_to_message_id))
            if target is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id} to reply to")
            msg["reply_to_message"] = _strip_reply(target)
        msg.update(copy.deepcopy(content))
        self._all[(chat_id, msg["message_id"])] = msg
        if self._delivered_to_bot(msg):
            self.queue_update({"message": copy.deepcopy(msg)})
        return copy.deepcopy(msg)

    def _delivered_to_bot(self, msg: dict[str, Any]) -> bool:
        if not self.privacy_mode or msg["chat"]["type"] not in ("group", "supergroup"):
            return True
        if "successful_payment" in msg:
            return True  # a service message: every bot receives those
        reply = msg.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot_id:
            return True
        text = msg.get("text") or msg.get("caption") or ""
        ents = msg.get("entities") or msg.get("caption_entities") or []
        for e in ents:
            if e["type"] == "bot_command" and e["offset"] == 0:
                command = text[: e["length"]]
                return "@" not in command or command.lower().endswith(
                    "@" + self.bot_username.lower()
                )
        return f"@{self.bot_username.lower()}" in text.lower()

    # ---------------------------------------------------------------- internals: HTTP

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, _Upload]]:
        params: dict[str, Any] = {}
        files: dict[str, _Upload] = {}
        for k, v in request.query.items():
            params[k] = _decode_form_value(k, v)
        if not request.can_read_body:
            return params, files
        if request.method == "GET":  # pyTelegramBotAPI sends forms this way; Telegram reads them
            if request.content_type == "application/x-www-form-urlencoded":
                for k, v in urllib.parse.parse_qsl(await request.text(), keep_blank_values=True):
                    params[k] = _decode_form_value(k, v)
            return params, files
        if request.method not in ("POST", "PUT"):
            return params, files
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON encoded request") from None
            if isinstance(body, dict):
                for k, v in body.items():
                    if k in JSON_PARAMS and isinstance(v, str):
                        v = _decode_form_value(k, v)
                    params[k] = v
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                raw = await part.read(decode=False)
                if part.filename is not None:
                    files[part.name] = _Upload(
                        bytes(raw), part.filename, part.headers.get("Content-Type")
                    )
                else:
                    params[part.name] = _decode_form_value(
                        part.name, bytes(raw).decode("utf-8", "replace")
                    )
        else:
            form = await request.post()
            for k, value in form.items():
                if isinstance(value, str):
                    params[k] = _decode_form_value(k, value)
                elif isinstance(value, FileField):
                    files[k] = _Upload(value.file.read(), value.filename, value.content_type)
        return params, files

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        token = request.match_info["token"]
        method_raw = request.match_info["method"]
        entry = self._methods.get(method_raw.lower())
        method = entry[0] if entry else method_raw
        early: ApiError | None = None
        try:
            params, uploads = await self._read_params(request)
        except ApiError as exc:
            params, uploads, early = {}, {}, exc
        call = Call(
            method=method,
            params=params,
            files={k: u.data for k, u in uploads.items()},
            at=arrived,
            filenames={k: u.filename for k, u in uploads.items() if u.filename},
        )
        self.calls.append(call)
        self._kick_calls()
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if entry is None:
                raise ApiError(404, "Not Found")
            if early is not None:
                raise early
            if sum(len(u.data) for u in uploads.values()) > UPLOAD_MAX:
                raise ApiError(413, "Request Entity Too Large")
            queue = self._failures.get(method.lower())
            if queue:
                raise queue.popleft()
            result = entry[1](_Params(params), uploads)
            if asyncio.iscoroutine(result):
                result = await result
            response: dict[str, Any] = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            response = exc.payload()
            status = exc.code
        except Exception as exc:  # a bug in the fake: answer like a broken server, keep it
            self.server_errors.append(exc)
            response = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: fake crashed: {exc!r}",
            }
            status = 500
        call.response = response
        call.result = response.get("result")
        call.answered = time.monotonic()
        self._kick_calls()
        return web.json_response(response, status=status)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        rec = self._files_by_path.get(request.match_info["path"])
        if rec is None or rec.size > DOWNLOAD_MAX:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        # Streamed with its Content-Length, as the real server does; what actually went out
        # is counted, so a test can tell a client that stopped reading from one that did not.
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(rec.data)
        await response.prepare(request)
        view = memoryview(rec.data)
        try:
            for start in range(0, len(view), FILE_CHUNK):
                chunk = view[start : start + FILE_CHUNK]
                await response.write(bytes(chunk))
                self.file_bytes_sent[rec.file_id] = start + len(chunk)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away: nothing more is sent
        return response

    # ---------------------------------------------------------------- internals: validation

    def _chat_id(self, p: _Params, name: str = "chat_id") -> int:
        v = p.d.get(name)
        if v is None or v == "":
            raise _bad("chat_id is empty")
        if isinstance(v, bool):
            raise _bad("chat not found")
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        s = str(v).strip()
        if re.fullmatch(r"-?\d+", s):
            return int(s)
        if s.startswith("@"):
            for cid, chat in self.chats.items():
                if str(chat.get("username", "")).lower() == s[1:].lower():
                    return cid
        raise _bad("chat not found")

    def _formatted(
        self, p: _Params, text_name: str, mode_name: str, entities_name: str
    ) -> tuple[str, list[dict[str, Any]]]:
        text = p.get_str(text_name) or ""
        mode = (p.get_str(mode_name) or "").strip()
        entities: list[dict[str, Any]] = []
        if mode:
            parse = {"html": _parse_html, "markdownv2": _parse_markdown_v2_plain}.get(mode.lower())
            if parse is None:
                raise _bad("unsupported parse_mode")
            try:
                text, entities = parse(text)
            except ValueError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        else:
            given = p.get_obj(entities_name)
            if isinstance(given, list):
                entities = [e for e in given if isinstance(e, dict)]
        return _trim(text, entities)

    def _text(self, p: _Params) -> tuple[str, list[dict[str, Any]]]:
        text, entities = self._formatted(p, "text", "parse_mode", "entities")
        if not text:
            raise _bad("message text is empty")
        if len(text) > TEXT_MAX:
            raise _bad("message is too long")
        return text, entities

    def _caption(self, p: _Params) -> tuple[str | None, list[dict[str, Any]]]:
        if not p.has("caption"):
            return None, []
        text, entities = self._formatted(p, "caption", "parse_mode", "caption_entities")
        if len(text) > CAPTION_MAX:
            raise _bad("message caption is too long")
        return (text or None), entities

    def _markup(self, p: _Params) -> dict[str, Any] | None:
        markup = p.get_obj("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("object expected as reply markup")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad(
                            'can\'t parse inline keyboard button: Field "text" must be of '
                            "type String"
                        )
                    data = button.get("callback_data")
                    if data is not None:
                        if len(str(data).encode("utf-8")) > CALLBACK_DATA_MAX:
                            raise _bad("BUTTON_DATA_INVALID")
                    elif not any(k in button for k in BUTTON_ACTIONS):
                        raise _bad(
                            "can't parse inline keyboard button: Text buttons are unallowed "
                            "in the inline keyboard"
                        )
        elif not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup

    def _reply_target(self, chat_id: int, p: _Params) -> dict[str, Any] | None:
        params = p.get_obj("reply_parameters")
        allow = p.get_bool("allow_sending_without_reply")
        target_chat = chat_id
        mid: int | None = None
        if isinstance(params, dict) and params.get("message_id") is not None:
            sub = _Params(params)
            mid = sub.get_int("message_id")
            if "allow_sending_without_reply" in params:
                allow = sub.get_bool("allow_sending_without_reply")
            if params.get("chat_id") is not None:
                target_chat = self._chat_id(sub)
        elif p.has("reply_to_message_id"):
            mid = p.get_int("reply_to_message_id")
        if mid is None:
            return None
        target = self._all.get((target_chat, mid))
        if target is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return _strip_reply(target) if target_chat == chat_id else None

    def _flood_check(self, chat_id: int, count: int = 1) -> None:
        if self.flood_limit:
            self._flood.check(chat_id, count)

    def _bot_message(
        self,
        chat_id: int,
        p: _Params,
        content: dict[str, Any],
        reply_to: dict[str, Any] | None,
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        chat = self._chat_for(chat_id)
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": copy.deepcopy(self.bot_user),
            "chat": chat,
            "date": int(time.time()),
        }
        thread = p.get_int("message_thread_id")
        if thread is not None:
            msg["message_thread_id"] = thread
            if chat.get("is_forum"):
                msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update(content)
        if markup is not None and "inline_keyboard" in markup:
            msg["reply_markup"] = copy.deepcopy(markup)
        self._all[(chat_id, msg["message_id"])] = msg
        self.messages[(chat_id, msg["message_id"])] = msg
        draft = self.drafts.pop(chat_id, None)
        if draft is not None and self.draft_visible(draft):
            self.replaced_drafts.append((chat_id, draft["draft_id"], msg["message_id"]))
        return copy.deepcopy(msg)

    @staticmethod
    def draft_visible(draft: dict[str, Any]) -> bool:
        return time.monotonic() - draft["at"] < DRAFT_LIFETIME

    @staticmethod
    def _set_text(msg: dict[str, Any], key: str, text: str | None, ents: list[Any]) -> None:
        ent_key = "entities" if key == "text" else "caption_entities"
        if text is None:
            msg.pop(key, None)
        else:
            msg[key] = text
        if ents:
            msg[ent_key] = ents
        else:
            msg.pop(ent_key, None)

    # ---------------------------------------------------------------- internals: files

    def _image_dimensions(self, data: bytes) -> tuple[int, int]:
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except Exception:
            raise _bad("IMAGE_PROCESS_FAILED") from None

    def _check_photo(self, data: bytes) -> tuple[int, int]:
        """Server-side photo checks; raise ApiError with the bare reason."""
        if len(data) == 0:
            raise _bad("file must be non-empty")
        if len(data) > PHOTO_UPLOAD_MAX:
            raise _bad("file is too big")
        width, height = self._image_dimensions(data)
        short, long_ = sorted((width, height))
        if (
            width + height > PHOTO_DIMENSIONS_SUM_MAX
            or short == 0
            or long_ / short > PHOTO_RATIO_MAX
        ):
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        return width, height

    async def _input_file(
        self, value: Any, uploads: dict[str, _Upload], field_name: str | None = None
    ) -> tuple[_Upload | None, _File | None]:
        """Resolve an InputFile: an upload, attach:// or a file_id (the bot never sends a URL)."""
        if field_name is not None and field_name in uploads:
            return uploads[field_name], None
        if not isinstance(value, str) or not value:
            return None, None
        if value.startswith("attach://"):
            up = uploads.get(value[len("attach://") :])
            if up is None:
                raise _bad("can't parse InputMedia: media not found")
            return up, None
        rec = self._files.get(value)
        if rec is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        return None, rec

    def _uploaded_photo_sizes(self, data: bytes, width: int, height: int) -> list[dict[str, Any]]:
        sizes = self._make_photo_sizes(data)
        sizes[-1]["width"], sizes[-1]["height"] = width, height
        return sizes

    def _photo_from_record(self, rec: _File) -> list[dict[str, Any]]:
        if rec.kind != "photo":
            raise _bad(f"can't use file of type {rec.kind.capitalize()} as Photo")
        sizes = self._photo_sizes.get(rec.file_id)
        return copy.deepcopy(sizes) if sizes else [self._photo_size(rec)]

    def _document_from_upload(self, up: _Upload) -> dict[str, Any]:
        if len(up.data) == 0:
            raise _bad("file must be non-empty")
        name = up.filename or "file"
        mime = mimetypes.guess_type(name, strict=False)[0]
        if mime is None and up.content_type:
            mime = up.content_type.split(";")[0].strip() or None
        rec = self._store_file(
            up.data, "document", file_name=name, mime_type=mime or "application/octet-stream"
        )
        return self._document_dict(rec)

    def _document_from_record(self, rec: _File) -> dict[str, Any]:
        if rec.kind == "photo":
            raise _bad("can't use file of type Photo as Document")
        return self._document_dict(rec)

    # ---------------------------------------------------------------- methods

    def _get_me(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.inline_mode,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _get_chat_member(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        """A member's status: `chat_admins[chat_id]` holds the admins' ids (the first the owner)."""
        chat_id, user_id = p.get_int("chat_id"), p.get_int("user_id")
        if chat_id is None or user_id is None:
            raise _bad("chat_id and user_id are required")
        admins = self.chat_admins.get(chat_id, [])
        status = "member"
        if admins and admins[0] == user_id:
            status = "creator"
        elif user_id in admins:
            status = "administrator"
        member: dict[str, Any] = {"status": status, "user": self.user(user_id)}
        if status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
            )
        elif status == "creator":
            member["is_anonymous"] = False
        return member

    async def _delete_webhook(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        if p.get_bool("drop_pending_updates"):
            self._pending.clear()
        await self._stop_webhook()
        self.webhook = None
        self.webhook_last_error = None
        return True

    async def _set_webhook(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        url = p.get_str("url") or ""
        if not url:
            return await self._delete_webhook(p, uploads)  # an empty URL removes the webhook
        parts = urllib.parse.urlsplit(url)
        # Deviation: Telegram takes only HTTPS URLs (ports 443, 80, 88, 8443); the fake also
        # takes http://127.0.0.1 so tests reach a bot on this machine without a certificate.
        local = parts.scheme == "http" and parts.hostname == "127.0.0.1"
        if parts.scheme != "https" and not local:
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and not WEBHOOK_SECRET_RE.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        allowed = p.get_obj("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(a) for a in allowed] or None
        max_connections = max(1, min(100, p.get_int("max_connections", 40) or 40))
        if p.get_bool("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {"url": url, "secret_token": secret, "max_connections": max_connections}
        self._poll_gen += 1  # a long poll running now ends with 409
        self._kick_updates()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    def _get_webhook_info(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook["max_connections"]
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        if self.webhook_last_error is not None:
            info["last_error_message"] = self.webhook_last_error
            info["last_error_date"] = int(time.time())
        return info

    def take_queued_updates(self) -> list[dict[str, Any]]:
        """Take the queued updates out of the queue, as if a bot had received them (and then
        died before handling them): they are delivered to nobody else."""
        taken, self._pending = self._pending, []
        return taken

    def deliver_again(self, update_id: int) -> None:
        """Queue a delivered update once more, as Telegram does when it did not hear the
        webhook's answer: the webhook gets the same update (same update_id) a second time."""
        self._pending.append(copy.deepcopy(self._delivered[update_id]))
        self._kick_updates()

    def webhook_attempts_of(self, update_id: int) -> list[WebhookAttempt]:
        """Every POST of that update to the webhook so far, in order."""
        return [a for a in self.webhook_attempts if a.update_id == update_id]

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._in_flight.clear()

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in DEFAULT_UPDATE_TYPES_EXCLUDED

    async def _webhook_loop(self) -> None:
        """While the webhook is set: POST each queued update, up to max_connections at once,
        each again after a short wait until the webhook answers it with a 2xx."""
        deliveries: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            try:
                while self.webhook is not None and not self._closing:
                    event = self._updates_event
                    room = self.webhook["max_connections"] - len(self._in_flight)
                    busy: set[int] = set()  # chats with an earlier update unacknowledged
                    for update in list(self._pending):
                        if room <= 0:
                            break
                        if not self._wanted(update):
                            continue
                        chat = _chat_of(update)
                        if chat is not None and chat in busy:
                            continue  # Telegram sends one chat's updates in sequence
                        if chat is not None:
                            busy.add(chat)
                        if id(update) in self._in_flight:
                            continue
                        room -= 1
                        self._in_flight.add(id(update))
                        task = asyncio.create_task(self._deliver(http, update))
                        deliveries.add(task)
                        task.add_done_callback(deliveries.discard)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), 0.5)
            finally:
                for task in list(deliveries):
                    task.cancel()
                await asyncio.gather(*deliveries, return_exceptions=True)

    async def _deliver(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        """POST one queued update until a 2xx answer; then it leaves the queue."""
        try:
            while self.webhook is not None:
                hook = self.webhook
                headers = {"Content-Type": "application/json"}
                if hook["secret_token"] is not None:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
                update_id = int(update["update_id"])
                body = json.dumps(update)
                try:
                    async with http.post(hook["url"], data=body, headers=headers) as r:
                        await r.read()
                        status = r.status
                        reason = r.reason
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.webhook_attempts.append(WebhookAttempt(update_id, None, repr(exc)))
                    self.webhook_last_error = f"Connection failed: {type(exc).__name__}"
                else:
                    self.webhook_attempts.append(WebhookAttempt(update_id, status))
                    if 200 <= status < 300:
                        self._pending = [u for u in self._pending if u is not update]
                        self._delivered[update_id] = copy.deepcopy(update)
                        self._note_delivery([update])
                        self._kick_calls()
                        self._kick_updates()  # the chat's next update may go now
                        return
                    self.webhook_last_error = f"Wrong response from the webhook: {status} {reason}"
                self._kick_calls()
                await asyncio.sleep(self.webhook_retry_delay)
        finally:
            self._in_flight.discard(id(update))
            self._kick_updates()

    def _available_updates(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        out = []
        for update in self._pending:
            kind = next((k for k in update if k != "update_id"), "")
            if allowed:
                if kind not in allowed:
                    continue
            elif kind in DEFAULT_UPDATE_TYPES_EXCLUDED:
                continue
            out.append(copy.deepcopy(update))
            if len(out) >= limit:
                break
        return out

    async def _get_updates(self, p: _Params, uploads: dict[str, _Upload]) -> list[dict[str, Any]]:
        offset = p.get_int("offset")
        limit = max(1, min(100, p.get_int("limit", 100) or 100))
        timeout = max(0.0, min(float(LONG_POLL_MAX), p.get_float("timeout", 0.0)))
        allowed = p.get_obj("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(a) for a in allowed] or None
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        self._poll_gen += 1
        generation = self._poll_gen
        self._kick_updates()  # an older long poll ends with 409, as on the real server
        if offset is not None:
            if offset < 0:
                self._pending = self._pending[offset:]  # the last -offset updates
            else:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._closing:
                return []
            if self.webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            if generation != self._poll_gen:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            updates = self._available_updates(limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0:
                self._note_delivery(updates)
                return updates
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    @staticmethod
    def _scope_key(p: _Params) -> tuple[str, str]:
        scope = p.get_obj("scope")
        kind = scope.get("type", "default") if isinstance(scope, dict) else "default"
        return str(kind), p.get_str("language_code") or ""

    def _set_my_commands(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        commands = p.get_obj("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many bot commands specified")
        clean = []
        for c in commands:
            if not isinstance(c, dict):
                raise _bad("can't parse BotCommand")
            command = str(c.get("command", "")).lstrip("/")
            description = str(c.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _bad(
                    "command description must be non-empty"
                    if not description.strip()
                    else "BOT_COMMAND_DESCRIPTION_INVALID"
                )
            clean.append({"command": command, "description": description})
        key = self._scope_key(p)
        if clean:
            self.commands[key] = clean
        else:
            self.commands.pop(key, None)
        return True

    def _send_message(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        text, entities = self._text(p)
        markup = self._markup(p)
        reply_to = self._reply_target(chat_id, p)
        self._flood_check(chat_id)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._bot_message(chat_id, p, content, reply_to, markup)

    async def _send_photo(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        caption, caption_entities = self._caption(p)
        markup = self._markup(p)
        reply_to = self._reply_target(chat_id, p)
        up, rec = await self._input_file(p.d.get("photo"), uploads, "photo")
        if up is None and rec is None:
            raise _bad("there is no photo in the request")
        if up is not None:
            width, height = self._check_photo(up.data)
            self._flood_check(chat_id)
            sizes = self._uploaded_photo_sizes(up.data, width, height)
        else:
            assert rec is not None
            sizes = self._photo_from_record(rec)
            self._flood_check(chat_id)
        content: dict[str, Any] = {"photo": sizes}
        self._set_text(content, "caption", caption, caption_entities)
        if p.get_bool("has_spoiler"):
            content["has_media_spoiler"] = True
        if p.get_bool("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return self._bot_message(chat_id, p, content, reply_to, markup)

    async def _send_document(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        caption, caption_entities = self._caption(p)
        markup = self._markup(p)
        reply_to = self._reply_target(chat_id, p)
        up, rec = await self._input_file(p.d.get("document"), uploads, "document")
        if up is None and rec is None:
            raise _bad("there is no document in the request")
        document = self._document_from_upload(up) if up else self._document_from_record(rec)  # type: ignore[arg-type]
        self._flood_check(chat_id)
        content: dict[str, Any] = {"document": document}
        self._set_text(content, "caption", caption, caption_entities)
        return self._bot_message(chat_id, p, content, reply_to, markup)

    async def _send_media_group(
        self, p: _Params, uploads: dict[str, _Upload]
    ) -> list[dict[str, Any]]:
        chat_id = self._chat_id(p)
        media = p.get_obj("media", "media")
        if media is None:
            raise _bad('parameter "media" is required')
        if not isinstance(media, list):
            raise _bad("can't parse media JSON object")
        if not media:
            raise _bad("there are no messages to send")
        if len(media) > 10:
            raise _bad("too many messages to send as an album")
        reply_to = self._reply_target(chat_id, p)
        items = []
        for item in media:
            if not isinstance(item, dict):
                raise _bad("can't parse InputMedia: Object expected")
            kind = item.get("type")
            if kind == "animation":
                raise _bad(
                    "can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup"
                )
            if kind not in ("photo", "document"):  # video and audio too, but the bot sends neither
                raise _bad(f'can\'t parse InputMedia: type "{kind}" is unsupported')
            sub = _Params(item)
            caption, caption_entities = self._caption(sub)
            up, rec = await self._input_file(item.get("media"), uploads)
            if up is None and rec is None:
                raise _bad("can't parse InputMedia: media not found")
            if up is not None and kind == "photo":
                if not up.data:
                    raise _bad("file must be non-empty")
                if len(up.data) > PHOTO_UPLOAD_MAX:
                    raise _bad("file is too big")
            items.append((kind, up, rec, caption, caption_entities))
        kinds = [k for k, *_ in items]
        if "document" in kinds and any(k != "document" for k in kinds):
            raise _bad("document can't be mixed with other media types")
        contents = []
        for position, (kind, up, rec, caption, caption_entities) in enumerate(items, 1):
            content: dict[str, Any] = {}
            if kind == "photo":
                if up is not None:
                    try:
                        width, height = self._check_photo(up.data)
                    except ApiError as exc:
                        reason = exc.description.removeprefix("Bad Request: ")
                        raise _bad(
                            f'failed to send message #{position} with the error message "{reason}"'
                        ) from None
                    content["photo"] = self._uploaded_photo_sizes(up.data, width, height)
                else:
                    content["photo"] = self._photo_from_record(rec)  # type: ignore[arg-type]
            else:
                content["document"] = (
                    self._document_from_upload(up) if up else self._document_from_record(rec)  # type: ignore[arg-type]
                )
            self._set_text(content, "caption", caption, caption_entities)
            contents.append(content)
        self._flood_check(chat_id, len(contents))
        group_id = str(secrets.randbelow(2**62) + 10**17) if len(contents) > 1 else None
        out = []
        for content in contents:
            if group_id is not None:
                content["media_group_id"] = group_id
            out.append(self._bot_message(chat_id, p, content, reply_to, None))
        return out

    def _target(self, p: _Params, missing: str) -> tuple[tuple[int, int], dict[str, Any]]:
        if p.has("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(p)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        key = (chat_id, message_id)
        msg = self._all.get(key)
        if msg is None:
            raise _bad(missing)
        return key, msg

    def _edited(self, key: tuple[int, int], msg: dict[str, Any]) -> dict[str, Any]:
        msg["edit_date"] = int(time.time())
        self.messages[key] = msg
        return copy.deepcopy(msg)

    @staticmethod
    def _not_modified() -> ApiError:
        return _bad(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )

    def _edit(self, p: _Params, field: str | None) -> dict[str, Any]:
        """editMessageText (`field` "text"), editMessageCaption ("caption") and
        editMessageReplyMarkup (None): the checks and the not-modified rule they share."""
        if p.has("inline_message_id") and field == "text":
            return self._edit_inline_text(p)
        key, msg = self._target(p, "message to edit not found")
        value: str | None = None
        entities: list[dict[str, Any]] = []
        if field == "text":
            value, entities = self._text(p)
        elif field == "caption":
            value, entities = self._caption(p)
        markup = self._markup(p)
        if key not in self.messages:
            raise _bad("message can't be edited")
        if field == "text" and "text" not in msg:
            raise _bad("there is no text in the message to edit")
        if field == "caption" and not any(k in msg for k in _CAPTIONED):
            raise _bad("there is no caption in the message to edit")
        new_markup = markup if markup and "inline_keyboard" in markup else None
        unchanged = msg.get("reply_markup") == new_markup
        if field is not None:
            entities_key = "entities" if field == "text" else "caption_entities"
            unchanged &= msg.get(field) == value and msg.get(entities_key, []) == entities
            if not unchanged:
                self._set_text(msg, field, value, entities)
        if unchanged:
            raise self._not_modified()
        if new_markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = copy.deepcopy(new_markup)
        return self._edited(key, msg)

    def _edit_inline_text(self, p: _Params) -> bool:
        """editMessageText of an inline message: True, not the message (Telegram's answer)."""
        msg = self.inline_messages.get(p.get_str("inline_message_id") or "")
        if msg is None:
            raise _bad("MESSAGE_ID_INVALID")
        value, entities = self._text(p)
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        self._set_text(msg, "text", value, entities)
        markup = self._markup(p)
        if markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = copy.deepcopy(markup)
        return True

    def _delete_message(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        key, _ = self._target(p, "message to delete not found")
        self._all.pop(key, None)
        self.messages.pop(key, None)
        return True

    def _send_chat_action(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        self._chat_id(p)
        if (p.get_str("action") or "") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _send_message_draft(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        chat_id = self._chat_id(p)
        if self._chat_for(chat_id)["type"] != "private":
            raise _bad("TEXTDRAFT_PEER_INVALID")
        draft_id = p.get_int("draft_id")
        if draft_id is None:
            raise _bad('parameter "draft_id" is required')
        if draft_id == 0:
            raise _bad("draft_id must be non-zero")
        text, _ = self._formatted(p, "text", "parse_mode", "entities")  # may be empty
        if len(text) > TEXT_MAX:
            raise _bad("message is too long")
        self._flood_check(chat_id)
        self.drafts[chat_id] = {"draft_id": draft_id, "text": text, "at": time.monotonic()}
        return True

    def _answer_callback_query(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        if query_id not in self._callbacks:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._callbacks.discard(query_id)
        self.callback_answers[query_id] = dict(p.d)
        return True

    def _answer_inline_query(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        """Telegram's checks: one answer per live query, at most 50 results with unique ids of
        1-64 bytes, a next_offset of at most 64 bytes, cached photos by a known file_id."""
        query_id = p.get_str("inline_query_id") or ""
        inline = self._inline_queries.get(query_id)
        if inline is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        results = p.get_obj("results")
        if not isinstance(results, list):
            raise _bad("can't parse inline query results JSON object")
        if len(results) > INLINE_RESULTS_MAX:
            raise _bad("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            rid = result.get("id") if isinstance(result, dict) else None
            if not isinstance(rid, str) or not 1 <= len(rid.encode()) <= INLINE_ID_MAX:
                raise _bad("RESULT_ID_INVALID")
            if rid in seen:
                raise _bad("RESULT_ID_DUPLICATE")
            seen.add(rid)
            self._check_inline_result(result)
        next_offset = p.get_str("next_offset") or ""
        if len(next_offset.encode()) > INLINE_OFFSET_MAX:
            raise _bad("NEXT_OFFSET_INVALID")
        del self._inline_queries[query_id]
        self.inline_answers[query_id] = {
            "query": inline,
            "results": copy.deepcopy(results),
            "next_offset": next_offset,
            "cache_time": p.get_int("cache_time", 300),
            "is_personal": p.get_bool("is_personal"),
        }
        return True

    def _check_inline_result(self, result: dict[str, Any]) -> None:
        kind = result.get("type")
        if kind == "article":
            content = result.get("input_message_content") or {}
            if not result.get("title"):
                raise _bad("RESULT_TITLE_EMPTY")
            if not str(content.get("message_text", "")).strip():
                raise _bad("MESSAGE_EMPTY")
            if len(str(content["message_text"])) > TEXT_MAX:
                raise _bad("MESSAGE_TOO_LONG")
        elif kind == "photo" and "photo_file_id" in result:
            rec = self._files.get(str(result["photo_file_id"]))
            if rec is None or rec.kind != "photo":
                raise _bad("wrong file identifier/HTTP URL specified")
            if len(str(result.get("caption", ""))) > CAPTION_MAX:
                raise _bad("MEDIA_CAPTION_TOO_LONG")
        else:
            raise _bad(f"fake: inline result type {kind!r} is not served here")
        markup = result.get("reply_markup")
        if markup is not None:
            self._markup(_Params({"reply_markup": markup}))
            if "inline_keyboard" not in markup:
                raise _bad("REPLY_MARKUP_INVALID")

    async def _edit_message_media(self, p: _Params, uploads: dict[str, _Upload]) -> Any:
        """editMessageMedia of an inline message (the only kind this fake edits so): a photo by
        a file_id the server knows, since a file cannot be uploaded into an inline message."""
        inline_message_id = p.get_str("inline_message_id")
        if inline_message_id is None:
            raise _bad("fake: editMessageMedia is served for inline messages only")
        msg = self.inline_messages.get(inline_message_id)
        if msg is None:
            raise _bad("MESSAGE_ID_INVALID")
        media = p.get_obj("media")
        if not isinstance(media, dict) or media.get("type") != "photo":
            raise _bad("fake: only a photo is served as new media")
        value = media.get("media")
        if uploads or (isinstance(value, str) and value.startswith("attach://")):
            raise _bad("can't upload file to inline message; use file_id or HTTP URL instead")
        _, rec = await self._input_file(value, uploads)
        if rec is None:
            raise _bad("there is no media in the request")
        msg.pop("text", None)
        msg["photo"] = self._photo_from_record(rec)
        caption = media.get("caption")
        if caption:
            if len(str(caption)) > CAPTION_MAX:
                raise _bad("message caption is too long")
            msg["caption"] = caption
        markup = self._markup(p)
        if markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = copy.deepcopy(markup)
        return True

    def _get_file(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        rec = self._files.get(p.get_str("file_id") or "")
        if rec is None:
            raise _bad("invalid file_id")
        if rec.size > DOWNLOAD_MAX:
            raise _bad("file is too big")
        return {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "file_size": rec.size,
            "file_path": rec.path,
        }

    # ---------------------------------------------------------------- payments in Stars

    def _send_invoice(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        """sendInvoice as Telegram checks it for Stars: XTR takes no provider token and
        exactly one price of whole Stars; title 1-32, description 1-255 characters; payload
        1-128 bytes."""
        chat_id = self._chat_id(p)
        title, description = p.get_str("title") or "", p.get_str("description") or ""
        payload = p.get_str("payload") or ""
        currency = p.get_str("currency") or ""
        if not 1 <= len(title) <= INVOICE_TITLE_MAX:
            raise _bad("INVOICE_TITLE_EMPTY" if not title else "INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= INVOICE_DESCRIPTION_MAX:
            raise _bad("INVOICE_DESCRIPTION_EMPTY" if not description else "DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode("utf-8")) <= INVOICE_PAYLOAD_MAX:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        if currency != "XTR":
            raise _bad("CURRENCY_INVALID")  # the fake sells Stars only, as the bot does
        if p.has("provider_token"):
            raise _bad("PAYMENT_PROVIDER_INVALID")
        prices = p.get_obj("prices")
        if not isinstance(prices, list) or not prices:
            raise _bad("can't parse prices JSON object")
        if len(prices) != 1:
            raise _bad("STARS_INVOICE_INVALID")
        price = prices[0]
        amount = price.get("amount") if isinstance(price, dict) else None
        if not isinstance(price, dict) or not isinstance(price.get("label"), str):
            raise _bad("can't parse prices JSON object")
        if type(amount) is not int or not 1 <= amount <= STARS_AMOUNT_MAX:
            raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        markup = self._markup(p)
        self._flood_check(chat_id)
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": p.get_str("start_parameter") or "",
            "currency": currency,
            "total_amount": amount,
        }
        msg = self._bot_message(chat_id, p, {"invoice": invoice}, None, markup)
        self.invoices[(chat_id, msg["message_id"])] = {**invoice, "payload": payload}
        return msg

    def _answer_pre_checkout_query(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        """Within 10 s, once: ok=true takes the Stars and sends the successful_payment;
        ok=false needs an error_message, which the person is shown."""
        query_id = p.get_str("pre_checkout_query_id") or ""
        ok = p.get_bool("ok")
        if not ok and not p.has("error_message"):
            raise _bad("ERROR_MESSAGE_EMPTY")  # refusals must say why
        waiting = self._pre_checkouts.pop(query_id, None)
        if waiting is None:
            raise _bad(_STALE_QUERY)
        query, asked, chat_id, lose_update = waiting
        if time.monotonic() - asked > self.pre_checkout_timeout:
            raise _bad(_STALE_QUERY)
        self.pre_checkout_answers[query_id] = dict(p.d)
        if ok:
            self._complete_payment(query, chat_id, lose_update)
        return True

    def _complete_payment(self, query: dict[str, Any], chat_id: int, lose_update: bool) -> None:
        charge_id = "stxA" + secrets.token_hex(20)
        user = query["from"]
        payment = {
            "currency": query["currency"],
            "total_amount": query["total_amount"],
            "invoice_payload": query["invoice_payload"],
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        self.star_transactions.append(
            {
                "id": charge_id,
                "amount": query["total_amount"],
                "date": int(time.time()),
                "source": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": copy.deepcopy(user),
                    "invoice_payload": query["invoice_payload"],
                },
            }
        )
        chat_type = "private" if chat_id > 0 else self._chat_for(chat_id)["type"]
        chat = self._register_chat(chat_id, chat_type, user, False)
        msg = {
            "message_id": self._next_message_id(chat_id),
            "from": copy.deepcopy(user),
            "chat": chat,
            "date": int(time.time()),
            "successful_payment": payment,
        }
        self._all[(chat_id, msg["message_id"])] = msg
        self.payments.append(copy.deepcopy(msg))
        self._payment_updates[charge_id] = {"message": copy.deepcopy(msg)}
        if not lose_update:
            self.queue_update({"message": copy.deepcopy(msg)})

    def _refund_star_payment(self, p: _Params, uploads: dict[str, _Upload]) -> bool:
        user_id = p.get_int("user_id")
        charge_id = p.get_str("telegram_payment_charge_id") or ""
        paid = next(
            (
                tx
                for tx in self.star_transactions
                if tx["id"] == charge_id
                and "source" in tx
                and tx["source"]["user"]["id"] == user_id
            ),
            None,
        )
        if paid is None:
            raise _bad("CHARGE_ID_INVALID")
        if charge_id in self.refunded:
            raise _bad("CHARGE_ALREADY_REFUNDED")
        self.refunded.add(charge_id)
        self.star_transactions.append(
            {
                "id": charge_id,  # a refund has its payment's id
                "amount": paid["amount"],
                "date": int(time.time()),
                "receiver": copy.deepcopy(paid["source"]),
            }
        )
        return True

    def _get_star_transactions(self, p: _Params, uploads: dict[str, _Upload]) -> dict[str, Any]:
        offset = max(0, p.get_int("offset", 0) or 0)
        limit = max(1, min(100, p.get_int("limit", 100) or 100))
        return {"transactions": copy.deepcopy(self.star_transactions[offset : offset + limit])}
