"""The `openai-chat` dialect: images over /v1/chat/completions (S0, S1, S4, OpenRouter; §1B)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bot.providers.base import (
    Endpoint,
    ImagePart,
    ImageRequest,
    ImageResult,
    InputImage,
    ParsedAnswer,
    ProgressCallback,
    TextPart,
    Turn,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import (
    Body,
    answer_object,
    bad_response,
    clean_detail,
    data_uri,
    deep_merge,
    error_in_200,
    images_from_chat_message,
    text_of_chat_message,
)
from bot.providers.http import EndpointClient
from bot.providers.profiles import profile_for

# --- request ------------------------------------------------------------------------------


def _user_content(req: ImageRequest) -> str | list[dict[str, Any]]:
    if not req.images:
        return req.prompt
    return [{"type": "text", "text": req.prompt}] + [
        {"type": "image_url", "image_url": {"url": data_uri(image)}} for image in req.images
    ]


def _content(turn: Turn) -> list[dict[str, Any]]:
    """A neutral turn as OpenAI content parts; other dialects' tokens mean nothing here."""
    content: list[dict[str, Any]] = []
    for part in turn.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            uri = data_uri(InputImage(part.loaded(), part.mime))
            content.append({"type": "image_url", "image_url": {"url": uri}})
    return content


# OpenRouter's convention (openrouter.ai/docs/guides/overview/multimodal/image-generation):
# top-level `modalities: ["image","text"]` asks for an image, and `image_config` holds
# `aspect_ratio` and `image_size` ("0.5K" there for Google's 512 tier).
OPENROUTER_MODALITIES = ["image", "text"]
_OPENROUTER_SIZES = {"512": "0.5K"}


def openrouter_style(endpoint: Endpoint) -> bool:
    """OpenRouter's request shape: its host, or `modalities` in the endpoint's extra body."""
    host = urlsplit(endpoint.base_url).hostname or ""
    return (
        "modalities" in endpoint.extra_body
        or host == "openrouter.ai"
        or host.endswith(".openrouter.ai")
    )


def _image_config(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    ratio, size = profile_for(req.model, endpoint).sendable(req.aspect_ratio, req.image_size)
    config = {}
    if ratio:
        config["aspect_ratio"] = ratio
    if openrouter_style(endpoint):
        if size:
            config["image_size"] = _OPENROUTER_SIZES.get(size, size)
        modalities = endpoint.extra_body.get("modalities", OPENROUTER_MODALITIES)
        return {"modalities": modalities, **({"image_config": config} if config else {})}
    if size:
        config["image_size"] = size
    return {"extra_body": {"google": {"image_config": config}}} if config else {}


def build_request(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON body. `endpoint.extra_body` is merged at top level (S4's `group`); aspect
    ratio/size go in `extra_body.google.image_config` (S0/S1, Google's OpenAI-compat
    convention), or for OpenRouter in a top-level `image_config` beside `modalities` (an
    endpoint's own `modalities` wins). `req.n` is left out: one chat call yields one answer.
    History turns (if any) are sent as earlier messages."""
    history = [
        {"role": "assistant" if turn.role == "model" else "user", "content": _content(turn)}
        for turn in req.history
    ]
    core = {
        "model": req.model,
        "messages": [*history, {"role": "user", "content": _user_content(req)}],
        "stream": False,
    }
    return {**deep_merge(endpoint.extra_body, _image_config(req, endpoint)), **core}


# --- response -----------------------------------------------------------------------------


def _no_choices(data: Mapping[str, Any], body: Body) -> ProviderError:
    """Why a 200 answer has no choices: a relay's error object, or nothing to go on."""
    if data.get("error"):
        return error_in_200(data["error"], body)
    return bad_response(clean_detail(f"answer has no choices: {bytes(body[:200])!r}"))


def _first_message(data: Mapping[str, Any], body: Body) -> tuple[Mapping[str, Any], str | None]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _no_choices(data, body)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        raise bad_response("answer's first choice has no message")
    reason = choice.get("finish_reason")
    return message, reason if isinstance(reason, str) else None


def parse_response(body: Body) -> ParsedAnswer:
    """Images (decoded, or URLs still to fetch), words and usage of a 200 chat answer.

    CPU-heavy for big answers (JSON + base64 of 20+ MB): run it in a thread."""
    data = answer_object(body)
    message, finish_reason = _first_message(data, body)
    images = images_from_chat_message(message)
    text = text_of_chat_message(message)
    if not images and finish_reason == "content_filter":
        raise ProviderError(
            ProviderErrorKind.BLOCKED,
            clean_detail(f"upstream content filter: {text or 'no text'}"),
            reason="content_filter",
        )
    if not images and not text:
        raise ProviderError(
            ProviderErrorKind.NO_IMAGE,
            f"answer has neither image nor text (finish_reason={finish_reason})",
            reason=finish_reason,
        )
    usage = data.get("usage")
    return ParsedAnswer(images=images, text=text, usage=usage if isinstance(usage, dict) else None)


# --- provider -----------------------------------------------------------------------------


class OpenAIChatProvider(EndpointClient):
    """One endpoint speaking openai-chat."""

    @property
    def url(self) -> str:
        return f"{self.endpoint.base_url.rstrip('/')}/chat/completions"

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        """One call; `progress` is accepted for the ImageProvider protocol (chat has no stages)."""
        return await self._post_and_parse(request, self.url, build_request, parse_response)
