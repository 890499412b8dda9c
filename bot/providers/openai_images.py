"""The `openai-images` dialect: /images/generations and /images/edits as JSON (S2, S4; §1C),
with kling-style async tasks polled at /images/tasks/{id}."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.providers.base import (
    Endpoint,
    ImageRef,
    ImageRequest,
    ImageResult,
    InputImage,
    ParsedAnswer,
    ProgressCallback,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import bad_response, ref_from_url_or_data, text_without_images
from bot.providers.http import get_json, post_json, resolve_images, tagged

_RESERVED = frozenset({"model", "prompt", "image", "mask", "n"})
TASK_DONE, TASK_FAILED = "succeed", "failed"


def _data_uri(image: InputImage) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"


def build_request(req: ImageRequest, endpoint: Endpoint) -> tuple[str, dict[str, Any]]:
    """(path, JSON body). No images: a generation; with images: an edit (JSON, as S2 takes)."""
    body: dict[str, Any] = {k: v for k, v in endpoint.extra_body.items() if k not in _RESERVED}
    body.update(model=req.model, prompt=req.prompt)
    if req.n > 1:
        body["n"] = min(req.n, 10)
    if req.aspect_ratio and req.model.lower().startswith("kling"):
        body["aspect_ratio"] = req.aspect_ratio  # S2 documents it for kling models only
    if not req.images:
        return "/images/generations", body
    uris = [_data_uri(i) for i in req.images]
    body["image"] = uris[0] if len(uris) == 1 else uris
    if req.mask is not None:
        body["mask"] = _data_uri(req.mask)
    return "/images/edits", body


def _load(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_response(f"answer is not JSON: {body[:80]!r}") from None
    if not isinstance(answer, dict):
        raise bad_response("answer is not a JSON object")
    error = answer.get("error")
    if isinstance(error, dict) and not answer.get("data"):
        raise bad_response(f"relay error in a 200 answer: {str(error.get('message'))[:200]}")
    return answer


def _refs(items: Any) -> tuple[list[ImageRef], str | None]:
    refs, texts = [], []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            refs.append(ref_from_url_or_data(item["b64_json"]))
        elif isinstance(item.get("url"), str) and item["url"]:
            refs.append(ref_from_url_or_data(item["url"]))
        if isinstance(item.get("revised_prompt"), str):
            texts.append(text_without_images(item["revised_prompt"]))
    return refs, "\n".join(t for t in texts if t) or None


def parse_response(body: bytes) -> ParsedAnswer:
    answer = _load(body)
    if answer.get("task_id") and not answer.get("data"):
        return ParsedAnswer(task_id=str(answer["task_id"]))
    images, text = _refs(answer.get("data"))
    if not images and not text:
        raise ProviderError(ProviderErrorKind.NO_IMAGE, "answer has no images")
    return ParsedAnswer(images=images, text=text, usage=answer.get("usage"))


@dataclass
class TaskState:
    status: str
    images: list[ImageRef] = field(default_factory=list)
    message: str | None = None


def parse_task(body: bytes) -> TaskState:
    answer = _load(body)
    status = str(answer.get("status") or "processing").lower()
    images, _ = _refs(answer.get("data")) if status == TASK_DONE else ([], None)
    return TaskState(status, images, answer.get("status_message"))


class OpenAIImagesProvider:
    """One endpoint speaking the Images API. Uses, never creates or closes, the shared client."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: httpx.AsyncClient,
        *,
        max_download_bytes: int = 50_000_000,
        poll_interval: float = 2.0,
        max_task_wait: float = 300.0,
    ) -> None:
        self.endpoint = endpoint
        self._http = http
        self._max_download_bytes = max_download_bytes
        self._poll_interval = poll_interval
        self._max_task_wait = max_task_wait

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        base = self.endpoint.base_url.rstrip("/")
        with tagged(self.endpoint.name):
            path, body = await asyncio.to_thread(build_request, request, self.endpoint)
            raw = await post_json(self._http, self.endpoint, base + path, body)
            parsed = await asyncio.to_thread(parse_response, raw)
            refs = parsed.images
            if parsed.task_id is not None:
                refs = await self._wait_for_task(f"{base}/images/tasks/{parsed.task_id}", progress)
            images = await resolve_images(
                self._http, refs, max_bytes=self._max_download_bytes, timeout=self.endpoint.timeout
            )
        return ImageResult(
            images=images,
            text=parsed.text,
            usage=parsed.usage,
            endpoint=self.endpoint.name,
            model=request.model,
        )

    async def _wait_for_task(self, url: str, progress: ProgressCallback | None) -> list[ImageRef]:
        """Poll until the task succeeds or fails; polling again is free, unlike resubmitting."""
        deadline = time.monotonic() + self._max_task_wait
        last, misses = "", 0
        while time.monotonic() < deadline:
            try:
                state = await asyncio.to_thread(
                    parse_task, await get_json(self._http, self.endpoint, url)
                )
                misses = 0
            except ProviderError as exc:
                misses += 1
                if not exc.transient or misses > 3:
                    raise
                await asyncio.sleep(self._poll_interval)
                continue
            if state.status != last and progress is not None:
                await progress(f"task:{state.status}")
            last = state.status
            if state.status == TASK_DONE:
                return state.images
            if state.status == TASK_FAILED:
                raise ProviderError(
                    ProviderErrorKind.NO_IMAGE, f"task failed: {state.message or 'no reason given'}"
                )
            await asyncio.sleep(self._poll_interval)
        raise ProviderError(
            ProviderErrorKind.TIMEOUT, f"task still running after {self._max_task_wait:.0f} s"
        )
