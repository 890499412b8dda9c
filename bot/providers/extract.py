"""Pure helpers shared by the dialects: data URIs and merged bodies for requests; find images
in answers, decode them, classify errors.

No I/O here. See PROTOCOLS.md §1D (where images hide in an answer) and §2 (error bodies).
"""

from __future__ import annotations

import binascii
import copy
import html
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec
import pybase64

from bot import redaction
from bot.imaging import ANSWER_MIMES, sniff_mime
from bot.providers.base import ImageRef, InputImage
from bot.providers.errors import ProviderError, ProviderErrorKind

DETAIL_LIMIT = 300
# An answer's bytes as read: a big one is a view of memory mapped for it (bot.providers.http).
Body = bytes | bytearray | memoryview

_DATA_URI_HEAD = re.compile(
    r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+(?:=[^;,]*)?)*),", re.ASCII | re.IGNORECASE
)
_NON_B64 = re.compile(rb"[^A-Za-z0-9+/=]")
# Base64 openings of PNG, JPEG, WebP (RIFF) and GIF files, for bare base64 without "data:".
_BARE_B64_HEADS = ("iVBORw0KGgo", "/9j/", "UklGR", "R0lGOD")

_IMAGE_PART_TYPES = frozenset({"image_url", "output_image", "image", "input_image"})
_HTML_TITLE = re.compile(r"(?is)<title[^>]*>(.*?)</title>")
_HTML_TAG = re.compile(r"(?s)<(script|style)\b.*?</\1>|<[^>]+>")


def bad_response(detail: str, **kw: Any) -> ProviderError:
    return ProviderError(ProviderErrorKind.BAD_RESPONSE, detail, **kw)


# --- requests -----------------------------------------------------------------------------


def data_uri(image: InputImage) -> str:
    return f"data:{image.mime};base64,{pybase64.b64encode_as_string(image.data)}"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top; nested objects merged, `over` wins. `base` is copied, so
    an endpoint's own settings are never changed nor shared."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


# --- images -------------------------------------------------------------------------------


def looks_truncated(data: bytes, mime: str) -> bool:
    """A PNG without its IEND chunk or a JPEG without its end marker was cut short."""
    if mime == "image/png":
        return b"IEND" not in data[-256:]
    if mime == "image/jpeg":
        return b"\xff\xd9" not in data[-4096:]
    return False


def checked_mime(data: bytes, declared: str | None = None) -> str:
    """The sniffed mime of bytes that must be a whole image; else BAD_RESPONSE."""
    mime = sniff_mime(data)
    if mime not in ANSWER_MIMES:
        head = data[:16].hex(" ")
        raise bad_response(f"answer holds bytes that are not an image ({declared}; {head})")
    if looks_truncated(data, mime):
        raise bad_response(f"answer image is truncated ({mime}, {len(data)} bytes)")
    return mime


B64_SLICE = 1 << 20  # characters per piece of a span decoded in pieces (a multiple of 4)


def decode_base64(payload: str, start: int = 0, end: int | None = None) -> bytes:
    """Strict base64 of payload[start:end] (standard alphabet, whitespace and missing padding
    tolerated). The span saves copying a 30 MB data URI out of the answer's text first.

    Well-formed payloads (nearly all) take one strict SIMD decode; only payloads it refuses are
    cleaned and checked character by character."""
    end = len(payload) if end is None else end
    try:
        return _strict(payload, start, end)
    except (binascii.Error, ValueError):
        pass
    raw = payload[start:end].encode("ascii", "replace")
    if _NON_B64.search(raw):
        raw = b"".join(raw.split())
        if _NON_B64.search(raw):
            raise bad_response("invalid base64 in image data")
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise bad_response("truncated base64 in image data")
    try:
        return pybase64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise bad_response(f"invalid base64 in image data: {exc}") from None


def _strict(payload: str, start: int, end: int) -> bytes:
    """The strict decode of payload[start:end]; raises binascii.Error/ValueError on anything
    but clean base64."""
    if start == 0 and end == len(payload):
        return pybase64.b64decode(payload, validate=True)
    # A span of a bigger text (a data URI among an answer's words) goes in pieces: cut out
    # whole, it would be one more copy of the image's text.
    if (end - start) % 4:
        raise ValueError("needs padding")
    starts = range(start, end, B64_SLICE)
    # each piece is checked alone: padding that ends a piece before the last one is padding
    # inside the data, which the one-piece decode refuses
    if any(payload[i - 1] == "=" for i in starts[1:]):
        raise ValueError("padding inside the data")
    return b"".join(
        pybase64.b64decode(payload[i : min(i + B64_SLICE, end)], validate=True) for i in starts
    )


def split_data_uri(uri: str, start: int = 0, end: int | None = None) -> tuple[bytes, str] | None:
    """(bytes, declared mime) of a `data:<mime>;base64,...` URI at uri[start:end]; None if it
    is no data URI."""
    end = len(uri) if end is None else end
    if uri[start : start + 5].lower() != "data:":
        return None
    head = _DATA_URI_HEAD.match(uri, start, min(end, start + 300))
    if head is None:
        raise bad_response(f"malformed data URI {uri[start : start + 40]!r}")
    params = head.group(2).lower().split(";")
    if "base64" not in params:
        raise bad_response("data URI is not base64")
    data = decode_base64(uri, head.end(), end)
    if not data:
        raise bad_response("empty data URI")
    return data, (head.group(1) or "application/octet-stream").lower()


def _ref_in(text: str, lo: int, hi: int) -> ImageRef:
    """The ImageRef of a link target text[lo:hi], a data URI decoded where it lies."""
    split = split_data_uri(text, lo, hi)
    if split is not None:
        return ImageRef(data=split[0], mime=split[1])
    return ref_from_url_or_data(text[lo:hi])


def ref_from_url_or_data(s: str) -> ImageRef:
    """An ImageRef for a data URI (decoded), an http(s) URL, or bare base64 of an image."""
    s = s.strip()
    split = split_data_uri(s)
    if split is not None:
        return ImageRef(data=split[0], mime=split[1])
    if s[:8].lower().startswith(("http://", "https://")):
        return ImageRef(url=s)
    if s.startswith(_BARE_B64_HEADS):
        data = decode_base64(s)
        return ImageRef(data=data, mime=sniff_mime(data))
    raise bad_response(f"image reference is neither a data URI nor an http(s) URL: {s[:40]!r}")


def _target_span(text: str, lo: int, hi: int) -> tuple[int, int] | None:
    """Where the target inside `(...)` (text[lo:hi]) is: `url`, `<url>` or `url "title"`;
    None if it is no link. A data URI (maybe 30 MB, maybe wrapped over lines: decode_base64
    copes) is located without being copied."""
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    if text.startswith("data:", lo, hi):
        return lo, hi
    parts = text[lo:hi].split(None, 1)
    if len(parts) == 2 and not (len(parts[1]) >= 2 and parts[1][0] == parts[1][-1] == '"'):
        return None
    target = parts[0] if parts else ""
    if len(target) >= 2 and target.startswith("<") and target.endswith(">"):
        return lo + 1, lo + len(target) - 1
    return lo, lo + len(target)


def _markdown_links(text: str) -> Iterator[tuple[int, int, int, int]]:
    """(start, end, target start, target end) of each `![alt](target)`, found with str.find
    and without copying targets: answers can hold a 30 MB data URI, and a regex walking it char
    by char (or a copy of it) holds the GIL long enough to stall every other chat."""
    pos = 0
    while (start := text.find("![", pos)) >= 0:
        alt_end = text.find("]", start + 2)
        if alt_end < 0:
            return
        end = text.find(")", alt_end + 2) if text.startswith("(", alt_end + 1) else -1
        span = _target_span(text, alt_end + 2, end) if end >= 0 else None
        if span is None:
            pos = start + 2
            continue
        yield start, end + 1, span[0], span[1]
        pos = end + 1


def text_without_images(content: str) -> str:
    """The model's words with markdown image links removed, stripped."""
    pieces, pos = [], 0
    for start, end, _, _ in _markdown_links(content):
        pieces.append(content[pos:start])
        pos = end
    pieces.append(content[pos:])
    return "".join(pieces).strip()


def _part_ref(part: Mapping[str, Any]) -> ImageRef | None:
    """An image content part: OpenAI `image_url` and the cheap look-alikes relays use."""
    target = part.get("image_url") or part.get("url")
    if isinstance(target, Mapping):
        target = target.get("url")
    if isinstance(target, str) and target:
        return ref_from_url_or_data(target)
    source = part.get("source")
    if isinstance(source, Mapping) and isinstance(source.get("data"), str):
        data = decode_base64(source["data"])
        return ImageRef(data=data, mime=source.get("media_type") or sniff_mime(data))
    b64 = part.get("b64_json") or part.get("data")
    if isinstance(b64, str) and b64:
        data = decode_base64(b64)
        return ImageRef(data=data, mime=part.get("mime_type") or sniff_mime(data))
    return None


def _refs_from_parts(parts: Iterable[Any]) -> list[ImageRef]:
    refs = []
    for part in parts:
        if isinstance(part, Mapping) and part.get("type") in _IMAGE_PART_TYPES:
            ref = _part_ref(part)
            if ref is not None:
                refs.append(ref)
    return refs


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"]
            for p in content
            if isinstance(p, Mapping)
            and p.get("type") in ("text", "output_text")
            and isinstance(p.get("text"), str)
        ]
    return []


def _as_image_part(item: Any) -> Any:
    if isinstance(item, str):
        return {"type": "image_url", "image_url": item}
    return {"type": "image_url", **item} if isinstance(item, Mapping) else None


def images_from_chat_message(message: Mapping[str, Any]) -> list[ImageRef]:
    """Images of an OpenAI chat message, from the first place that has any (§1D order):
    `images[]`, then image parts of a content array, then markdown links in the text."""
    images = message.get("images")
    if isinstance(images, list):
        refs = _refs_from_parts(_as_image_part(i) for i in images)
        if refs:
            return refs
    content = message.get("content")
    if isinstance(content, list):
        refs = _refs_from_parts(content)
        if refs:
            return refs
    return [
        _ref_in(text, lo, hi)
        for text in _texts(content)
        for _, _, lo, hi in _markdown_links(text)
        if hi > lo
    ]


def text_of_chat_message(message: Mapping[str, Any]) -> str | None:
    """The words of a chat message (string content or text parts), image links removed."""
    words = [text_without_images(t) for t in _texts(message.get("content"))]
    joined = "\n".join(w for w in words if w)
    return joined or None


# --- errors -------------------------------------------------------------------------------


def clean_detail(text: str, secrets: Iterable[str] = (), limit: int = DETAIL_LIMIT) -> str:
    """An error detail on one line, secrets masked (bot.redaction), at most `limit` characters."""
    text = " ".join(redaction.redact(text, secrets).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_error(body: Body) -> dict[str, Any] | None:
    try:
        data = json.loads(_loadable(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and data:  # Google sometimes wraps the error in a list
        data = data[0]
    if not isinstance(data, dict):
        return None
    err = data.get("error", data)
    if isinstance(err, str):
        return {"message": err}
    return err if isinstance(err, dict) else None


def _html_text(body: Body) -> str:
    text = bytes(body[:65536]).decode("utf-8", "replace")
    title = _HTML_TITLE.search(text)
    if title:
        return html.unescape(title.group(1))
    return html.unescape(_HTML_TAG.sub(" ", text))


def _details(err: Mapping[str, Any], type_suffix: str) -> list[Mapping[str, Any]]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [
        d
        for d in details
        if isinstance(d, Mapping) and str(d.get("@type", "")).endswith(type_suffix)
    ]


def _duration(value: Any) -> float | None:
    """A google.protobuf.Duration: JSON "27s"/"1.5s", or {"seconds":..,"nanos":..}."""
    try:
        if isinstance(value, str) and value.endswith("s"):
            return max(0.0, float(value[:-1]))
        if isinstance(value, Mapping):
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    except (TypeError, ValueError):
        pass
    return None


def _is_per_day(err: Mapping[str, Any]) -> bool:
    for failure in _details(err, "google.rpc.QuotaFailure"):
        for v in failure.get("violations") or []:
            if isinstance(v, Mapping) and "perday" in str(v.get("quotaId", "")).lower():
                return True
    return False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _retry_after(headers: Mapping[str, str], err: Mapping[str, Any] | None) -> float | None:
    seconds = parse_retry_after(headers)
    if seconds is None and err is not None:
        for info in _details(err, "google.rpc.RetryInfo"):
            seconds = _duration(info.get("retryDelay"))
    return seconds


_QUOTA_CODES = frozenset({"insufficient_quota", "insufficient_user_quota", "billing_not_active"})
# Faults of the endpoint's account, not of the request: another endpoint may serve it.
# FAILED_PRECONDITION: "free tier not available in your country" / billing not enabled.
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "FAILED_PRECONDITION"})
_STATUS_KINDS = {
    400: ProviderErrorKind.BAD_REQUEST,
    422: ProviderErrorKind.BAD_REQUEST,
    401: ProviderErrorKind.AUTH,
    403: ProviderErrorKind.AUTH,
    404: ProviderErrorKind.NOT_FOUND,
    408: ProviderErrorKind.TIMEOUT,
    504: ProviderErrorKind.TIMEOUT,
}


def _reason(err: Mapping[str, Any] | None) -> str | None:
    if not err:
        return None
    for info in _details(err, "google.rpc.ErrorInfo"):
        if info.get("reason"):
            return str(info["reason"])
    for key in ("code", "type", "status"):
        value = err.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# How upstreams say a model is gone: Google's 404 "models/X is not found for API version
# v1beta", OpenAI's "The model `X` does not exist", new-api's 503 "当前分组 default 下对于模型 X
# 无可用渠道" (code model_not_found), relays' "model withdrawn / retired / deprecated".
_MODEL_GONE = re.compile(
    r"models/\S+ is not found|model[ `'\"\w.:/-]* (does not exist|not found|is not found)"
    r"|model \S+ (has been |was |is )?(withdrawn|retired|deprecated|discontinued|shut down)"
    r"|无可用渠道|模型.{0,40}(已下线|已下架|不存在)",
    re.IGNORECASE,
)


def _model_gone(status: int, message: str, reason: str | None) -> bool:
    """Whether an error says the model asked for is retired or unknown (not a wrong path)."""
    if status not in (400, 404, 410, 503) and reason != "model_not_found":
        return False
    return reason == "model_not_found" or bool(_MODEL_GONE.search(message))


# new-api / one-api (what many resellers run) answer a Gemini prompt block with HTTP 400
# "request blocked by Gemini API: <blockReason>" (code prompt_blocked) and a 200 without
# candidates with HTTP 500 "empty response from Gemini API" (code empty_response).
_GEMINI_BLOCKED = re.compile(r"request blocked by Gemini API:?\s*([A-Z_]+)?", re.IGNORECASE)


def _kind(status: int, err: Mapping[str, Any] | None, reason: str | None) -> ProviderErrorKind:
    if reason == "prompt_blocked":
        return ProviderErrorKind.BLOCKED
    if reason in _QUOTA_CODES or status == 402:
        return ProviderErrorKind.QUOTA_EXHAUSTED
    if reason in _AUTH_REASONS:  # Google answers a bad key with 400 INVALID_ARGUMENT
        return ProviderErrorKind.AUTH
    if status == 429:
        if err is not None and _is_per_day(err):
            return ProviderErrorKind.QUOTA_EXHAUSTED
        return ProviderErrorKind.RATE_LIMITED
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    transient = status >= 500 or status == 409
    return ProviderErrorKind.SERVER if transient else ProviderErrorKind.BAD_REQUEST


def error_from_http(
    status: int,
    body: Body,
    headers: Mapping[str, str],
    endpoint: str,
    *,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """A typed error for a non-2xx answer, from OpenAI or Gemini error bodies or any text."""
    err = _json_error(body)
    if err is not None:
        said = [err[k] for k in ("message", "detail", "msg") if isinstance(err.get(k), str)]
        message = said[0] if said else json.dumps(err, ensure_ascii=False)[:1000]
    else:
        message = _html_text(body) or "(empty body)"
    reason = _reason(err)
    blocked = _GEMINI_BLOCKED.search(message)
    if blocked is not None:  # the relay's words name Google's blockReason: keep that
        reason = "prompt_blocked" if blocked.group(1) is None else blocked.group(1).upper()
        kind = ProviderErrorKind.BLOCKED
    elif _model_gone(status, message, reason):
        kind = ProviderErrorKind.MODEL_RETIRED
    else:
        kind = _kind(status, err, reason)
    return ProviderError(
        kind,
        clean_detail(f"HTTP {status}: {message}", secrets),
        status=status,
        reason=reason,
        retry_after=_retry_after(headers, err),
        endpoint=endpoint,
    )


# A big answer (a 4K image is one ~22 MB base64 string) parses in one short C call, its strings
# made straight from the bytes, with no decoded copy of the whole body as json.loads makes.
_ANSWER_JSON = msgspec.json.Decoder()


def answer_object(body: Body) -> dict[str, Any]:
    """A 200 answer's JSON object. What msgspec refuses (a BOM, UTF-16, NaN, broken JSON) goes
    to json.loads, so every body reads as json.loads reads it and errors carry its message."""
    try:
        answer = _ANSWER_JSON.decode(body)
    except msgspec.DecodeError:
        try:
            answer = json.loads(_loadable(body))
        except (ValueError, UnicodeDecodeError) as exc:
            detail = f"answer is not JSON ({type(exc).__name__}: {exc})"[:300]
            raise bad_response(detail) from None
    if not isinstance(answer, dict):
        raise bad_response(f"answer is JSON {type(answer).__name__}, not an object")
    return answer


def _loadable(body: Body) -> bytes | bytearray:
    """What json.loads takes (it refuses a memoryview)."""
    return bytes(body) if isinstance(body, memoryview) else body


def error_in_200(err: Any, body: Body) -> ProviderError:
    """A relay's error object in a 200 answer, classified like the HTTP status it names."""
    if isinstance(err, Mapping):
        status = err.get("code") if isinstance(err.get("code"), int) else err.get("status")
        if isinstance(status, int) and 400 <= status <= 599:
            return error_from_http(status, body, {}, "")
        message = err.get("message") or json.dumps(err, ensure_ascii=False)[:500]
        reason = err.get("code") or err.get("type")
        return bad_response(
            clean_detail(f"error in a 200 answer: {message}"),
            reason=str(reason) if reason else None,
        )
    return bad_response(clean_detail(f"error in a 200 answer: {err}"))
