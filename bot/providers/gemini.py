"""The `gemini` dialect: Gemini-native generateContent (Google directly, S3-style relays; §1A).

Pure `build_request` / `parse_response` (tested on JSON alone) and a small class for the HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx

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
from bot.providers.extract import bad_response, checked_mime, decode_base64
from bot.providers.http import post_json, resolve_images, tagged

# finishReason → what it means for the user (§2). Any image present is a success regardless.
BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
NO_IMAGE_REASONS = frozenset(
    {
        "NO_IMAGE",
        "IMAGE_OTHER",
        "OTHER",
        "MAX_TOKENS",
        "MALFORMED_FUNCTION_CALL",
        "LANGUAGE",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "FINISH_REASON_UNSPECIFIED",
    }
)
_INLINE = ("inlineData", "inline_data")


def model_takes_image_size(model: str) -> bool:
    """imageSize (1K/2K/4K) is documented for the Gemini 3 image models, not 2.5 Flash Image."""
    name = model.lower()
    return name.startswith("gemini-3") and "image" in name


def _user_turn(req: ImageRequest) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": req.prompt}]
    for image in req.images:
        data = base64.b64encode(image.data).decode("ascii")
        parts.append({"inlineData": {"mimeType": image.mime, "data": data}})
    return {"role": "user", "parts": parts}


def build_request(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    image_config: dict[str, str] = {}
    if req.aspect_ratio:
        image_config["aspectRatio"] = req.aspect_ratio
    if req.image_size and model_takes_image_size(req.model):
        image_config["imageSize"] = req.image_size.upper()
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    contents = [{"role": t.role, "parts": t.parts} for t in req.history]
    body: dict[str, Any] = {**endpoint.extra_body}
    body.update(contents=[*contents, _user_turn(req)], generationConfig=config)
    return body


def _inline(part: dict[str, Any]) -> dict[str, Any] | None:
    for key in _INLINE:
        value = part.get(key)
        if isinstance(value, dict):
            return value
    return None


def _image_of(inline: dict[str, Any]) -> ImageRef:
    payload = inline.get("data")
    if not isinstance(payload, str) or not payload:
        raise bad_response("inlineData without data")
    data = decode_base64(payload)
    declared = inline.get("mimeType") or inline.get("mime_type")
    return ImageRef(data=data, mime=checked_mime(data, declared))


def _blocked(reason: str, message: str | None) -> ProviderError:
    detail = f"blocked: {reason}" + (f" — {message}" if message else "")
    return ProviderError(ProviderErrorKind.BLOCKED, detail, reason=reason)


def parse_response(body: bytes) -> ParsedAnswer:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_response(f"answer is not JSON: {body[:80]!r}") from None
    if not isinstance(answer, dict):
        raise bad_response("answer is not a JSON object")
    candidates = answer.get("candidates") or []
    feedback = answer.get("promptFeedback") or answer.get("prompt_feedback") or {}
    if not candidates:
        reason = feedback.get("blockReason") or feedback.get("block_reason")
        if reason:
            raise _blocked(str(reason), feedback.get("blockReasonMessage"))
        raise ProviderError(ProviderErrorKind.NO_IMAGE, "answer has no candidates")
    first = candidates[0]
    parts = (first.get("content") or {}).get("parts") or []
    images, texts, kept = [], [], []
    for part in parts:
        if not isinstance(part, dict) or part.get("thought"):
            continue  # 3 Pro's interim "thinking" images are not the answer
        inline = _inline(part)
        if inline is not None:
            images.append(_image_of(inline))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
        kept.append(part)
    text = "\n".join(t.strip() for t in texts if t.strip()) or None
    usage = answer.get("usageMetadata") or answer.get("usage_metadata")
    if not images:
        _raise_for_finish(first, text)
    return ParsedAnswer(
        images=images, text=text, model_turn=Turn("model", kept) if kept else None, usage=usage
    )


def _raise_for_finish(candidate: dict[str, Any], text: str | None) -> None:
    """No image: a refusal or failure by finishReason, unless the model simply answered words."""
    reason = str(candidate.get("finishReason") or candidate.get("finish_reason") or "STOP")
    message = candidate.get("finishMessage") or candidate.get("finish_message")
    if reason in BLOCK_REASONS:
        raise _blocked(reason, message)
    if reason != "STOP" or not text:
        detail = f"no image ({reason})" + (f" — {message}" if message else "")
        raise ProviderError(ProviderErrorKind.NO_IMAGE, detail, reason=reason)


class GeminiProvider:
    """One endpoint speaking Gemini-native. Uses, never creates or closes, the shared client."""

    def __init__(
        self, endpoint: Endpoint, http: httpx.AsyncClient, *, max_download_bytes: int = 50_000_000
    ) -> None:
        self.endpoint = endpoint
        self._http = http
        self._max_download_bytes = max_download_bytes

    def url(self, model: str) -> str:
        return f"{self.endpoint.base_url.rstrip('/')}/v1beta/models/{model}:generateContent"

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        with tagged(self.endpoint.name):
            body = await asyncio.to_thread(build_request, request, self.endpoint)
            raw = await post_json(self._http, self.endpoint, self.url(request.model), body)
            parsed = await asyncio.to_thread(parse_response, raw)
            images = await resolve_images(
                self._http,
                parsed.images,
                max_bytes=self._max_download_bytes,
                timeout=self.endpoint.timeout,
            )
        return ImageResult(
            images=images,
            text=parsed.text,
            model_turn=parsed.model_turn,
            usage=parsed.usage,
            endpoint=self.endpoint.name,
            model=request.model,
        )
