"""The `gemini` dialect: Gemini-native generateContent (Google directly, S3-style relays; §1A).

Pure `build_request` / `parse_response` (tested on JSON alone) and a small class for the HTTP.
Refusals arrive as 200 answers (§2): a blocked prompt has no candidates, a candidate that made
no image says why in `finishReason`. Model turns are kept verbatim for real history (§3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pybase64

from bot.providers.base import (
    Endpoint,
    ImageRef,
    ImageRequest,
    ImageResult,
    ParsedAnswer,
    ProgressCallback,
    Turn,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import (
    answer_object,
    bad_response,
    checked_mime,
    clean_detail,
    decode_base64,
    deep_merge,
    error_from_http,
)
from bot.providers.http import EndpointClient, in_gil_lane, post_json, tagged

# finishReason / blockReason values that mean "refused" (§2). Any image present is a success.
BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",  # the output resembled existing content
        "IMAGE_RECITATION",
    }
)
# Words inside reasons Google may add later (or Vertex sends: MODEL_ARMOR, JAILBREAK).
_BLOCK_MARKERS = ("SAFETY", "PROHIBITED", "BLOCKLIST", "RECITATION", "SPII", "JAILBREAK", "ARMOR")
_MODALITIES = ["TEXT", "IMAGE"]  # image-only is refused by some models and relays (S3)
INLINE_KEYS = ("inlineData", "inline_data")
_GEMINI_VERSION = re.compile(r"gemini-(\d+)(?:\.\d+)?-")


# --- request ------------------------------------------------------------------------------


def model_id(model: str) -> str:
    """The bare model ID: `models/gemini-x` (the API's resource name) becomes `gemini-x`."""
    return model.strip().removeprefix("models/")


def model_takes_image_size(model: str) -> bool:
    """imageSize (1K/2K/4K) is documented for the Gemini 3 image models (3 Pro Image, 3.x Flash
    Image), not for 2.5 Flash Image, a fixed 1024px-class model."""
    name = model_id(model).lower()
    if "pro-image" in name or name.startswith("nano-banana-pro"):
        return True
    version = _GEMINI_VERSION.match(name)
    return version is not None and int(version.group(1)) >= 3 and "image" in name


def endpoint_url(base_url: str, model: str) -> str:
    """`{base}/v1beta/models/{model}:generateContent`; a base that already ends in /v1beta
    (a common way to write a relay's URL) is not doubled."""
    base = base_url.rstrip("/").removesuffix("/v1beta")
    return f"{base}/v1beta/models/{model_id(model)}:generateContent"


def _image_config(req: ImageRequest) -> dict[str, str]:
    config = {}
    if req.aspect_ratio:
        config["aspectRatio"] = req.aspect_ratio
    if req.image_size and model_takes_image_size(req.model):
        config["imageSize"] = req.image_size.strip().upper()  # "lowercase k is rejected" (GI)
    return config


def _generation_config(req: ImageRequest) -> dict[str, Any]:
    """responseModalities always; no candidateCount: image models ignore or refuse n > 1, so
    the caller repeats the call instead."""
    config: dict[str, Any] = {"responseModalities": list(_MODALITIES)}
    image_config = _image_config(req)
    if image_config:
        config["imageConfig"] = image_config
    return config


def _user_turn(req: ImageRequest) -> dict[str, Any]:
    """The new turn: the words first, then each image (the order Google and OpenRouter advise)."""
    parts: list[dict[str, Any]] = [{"text": req.prompt}]
    for image in req.images:
        data = pybase64.b64encode_as_string(image.data)
        parts.append({"inlineData": {"mimeType": image.mime, "data": data}})
    return {"role": "user", "parts": parts}


def build_request(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON body: earlier turns verbatim (thought signatures included), then the new turn.

    `endpoint.extra_body` (say `safetySettings`, or `generationConfig.temperature`) is merged
    underneath: what this request needs wins. CPU-heavy with big images: run it in a thread."""
    history = [{"role": turn.role, "parts": turn.parts} for turn in req.history]
    core = {
        "contents": [*history, _user_turn(req)],
        "generationConfig": _generation_config(req),
    }
    if not endpoint.extra_body:
        return core
    extra = {k: v for k, v in endpoint.extra_body.items() if k != "contents"}
    return deep_merge(extra, core)


# --- response -----------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its camelCase name (Google) or snake_case one (some relays)."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _text_field(obj: Mapping[str, Any], camel: str, snake: str) -> str | None:
    value = _field(obj, camel, snake)
    return value if isinstance(value, str) and value else None


def _is_block(reason: str) -> bool:
    return reason in BLOCK_REASONS or any(marker in reason for marker in _BLOCK_MARKERS)


def _refusal(
    kind: ProviderErrorKind, what: str, reason: str | None, message: str | None
) -> ProviderError:
    detail = f"{what} ({reason})" if reason else what
    if message:
        detail += f": {message}"
    return ProviderError(kind, clean_detail(detail), reason=reason)


def _no_candidates(answer: Mapping[str, Any], body: bytes | bytearray) -> ProviderError:
    """Why an answer has no candidates: a blocked prompt, an error object sent with 200, or -."""
    feedback = _field(answer, "promptFeedback", "prompt_feedback")
    if isinstance(feedback, Mapping):
        reason = _text_field(feedback, "blockReason", "block_reason")
        if reason:
            message = _text_field(feedback, "blockReasonMessage", "block_reason_message")
            return _refusal(ProviderErrorKind.BLOCKED, "prompt blocked", reason, message)
    err = answer.get("error")
    if isinstance(err, Mapping) and isinstance(err.get("code"), int) and 400 <= err["code"] < 600:
        return error_from_http(err["code"], body, {}, "")  # a relay's error sent with 200
    if err:
        return bad_response(clean_detail(f"error in a 200 answer: {err}"))
    return ProviderError(ProviderErrorKind.NO_IMAGE, "answer has no candidates")


def _first_candidate(answer: Mapping[str, Any], body: bytes | bytearray) -> Mapping[str, Any]:
    candidates = answer.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise _no_candidates(answer, body)
    first = candidates[0]
    if not isinstance(first, Mapping):
        raise bad_response(f"answer's first candidate is JSON {type(first).__name__}")
    return first


def _parts(candidate: Mapping[str, Any]) -> list[Any]:
    content = candidate.get("content")  # absent when the candidate was stopped (§2)
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return parts if isinstance(parts, list) else []


def inline_data(part: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A part's inline image object (under its camelCase or snake_case key), if it has one."""
    for key in INLINE_KEYS:
        value = part.get(key)
        if isinstance(value, Mapping):
            return value
    return None


def _image_of(inline: Mapping[str, Any]) -> ImageRef:
    """Decoded bytes of an inline image, typed by their magic bytes (not the declared type)."""
    payload = inline.get("data")
    if not isinstance(payload, str) or not payload:
        raise bad_response("inlineData without data")
    data = decode_base64(payload)
    declared = _text_field(inline, "mimeType", "mime_type")
    return ImageRef(data=data, mime=checked_mime(data, declared))


def _read_parts(parts: list[Any]) -> tuple[list[ImageRef], list[str], list[dict[str, Any]]]:
    """(images, texts, parts to keep for history), skipping 3 Pro's `thought` parts: its interim
    "thinking" images are neither the answer nor history. Kept parts stay verbatim."""
    images: list[ImageRef] = []
    texts: list[str] = []
    kept: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("thought"):
            continue
        inline = inline_data(part)
        if inline is not None:
            images.append(_image_of(inline))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
        kept.append(part)
    return images, texts, kept


def _raise_unless_words(candidate: Mapping[str, Any], text: str | None) -> None:
    """No image: a refusal by finishReason, or no answer at all, unless the model spoke words.

    Words without an image are a normal answer (the bot shows them) unless they came with a
    block reason; `finishMessage` goes into the error's detail."""
    reason = _text_field(candidate, "finishReason", "finish_reason")
    message = _text_field(candidate, "finishMessage", "finish_message")
    if reason and _is_block(reason):
        raise _refusal(ProviderErrorKind.BLOCKED, "output blocked", reason, message)
    if not text:
        raise _refusal(ProviderErrorKind.NO_IMAGE, "no image in the answer", reason, message)


def _usage(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = _field(answer, "usageMetadata", "usage_metadata")
    return usage if isinstance(usage, dict) else None


def parse_response(body: bytes | bytearray) -> ParsedAnswer:
    """Images (decoded), words, usage and the model's turn of a 200 generateContent answer.

    CPU-heavy for big answers (JSON + base64 of 20+ MB at 4K): run it in a thread."""
    answer = answer_object(body)
    candidate = _first_candidate(answer, body)
    images, texts, kept = _read_parts(_parts(candidate))
    text = "\n".join(t.strip() for t in texts if t.strip()) or None
    if not images:
        _raise_unless_words(candidate, text)
    return ParsedAnswer(
        images=images,
        text=text,
        model_turn=Turn("model", kept) if kept else None,
        usage=_usage(answer),
    )


# --- provider -----------------------------------------------------------------------------


class GeminiProvider(EndpointClient):
    """One endpoint speaking Gemini-native."""

    def url(self, model: str) -> str:
        return endpoint_url(self.endpoint.base_url, model)

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        """One call; `progress` is accepted for the ImageProvider protocol (no stages here)."""
        with tagged(self.endpoint.name):
            body = await in_gil_lane(build_request, request, self.endpoint)
            raw = await post_json(self._http, self.endpoint, self.url(request.model), body)
            parsed = await in_gil_lane(parse_response, raw)
            del raw  # up to 64 MB, not to be held while the links download
            images = await self._images(parsed.images)
        return ImageResult(
            images=images,
            text=parsed.text,
            model_turn=parsed.model_turn,
            usage=parsed.usage,
            endpoint=self.endpoint.name,
            model=request.model,
        )
