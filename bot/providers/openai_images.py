"""The `openai-images` dialect: /images/generations and /images/edits as JSON (S2, S4; §1C),
with kling-style async tasks polled at /images/tasks/{id}.

Qiniu (S2) takes edits as a JSON body with `image` a data URI or a list of them, not the
multipart form of official OpenAI; Rainboxs (S4) answers `data[].url` plus a `revised_prompt`
holding a markdown link. Kling models on Qiniu answer `{"task_id"}`; the task is then polled
(free) until it succeeds or fails. Resubmitting is never free, so once a task exists every
failure to learn its outcome is reported as TIMEOUT ("maybe charged"), which the pool caps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import quote

import httpx

from bot.imaging import sniff_mime
from bot.providers.base import (
    Endpoint,
    ImageRef,
    ImageRequest,
    ImageResult,
    ParsedAnswer,
    ProgressCallback,
    TaskPolling,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import (
    Body,
    answer_object,
    clean_detail,
    data_uri,
    decode_base64,
    error_in_200,
    ref_from_url_or_data,
    text_without_images,
)
from bot.providers.http import (
    EndpointClient,
    after_answer,
    build_body,
    get_and_read,
    parse_answer,
    post_and_read,
    tagged,
)
from bot.providers.profiles import profile_for
from bot.providers.urlguard import UrlPolicy

log = logging.getLogger(__name__)

TaskStatus = Literal["submitted", "processing", "succeed", "failed"]
MAX_N = 10  # S2: n is 1-10
POLL_ATTEMPTS = 4  # consecutive failed polls (5xx, connection, 429) before giving up
_RESERVED = frozenset({"model", "prompt", "image", "mask", "n"})
# Words relays use for a task's state, mapped to the four of S2.
_STATUS_WORDS: dict[str, TaskStatus] = {
    "submitted": "submitted",
    "queued": "submitted",
    "pending": "submitted",
    "processing": "processing",
    "running": "processing",
    "in_progress": "processing",
    "succeed": "succeed",
    "succeeded": "succeed",
    "success": "succeed",
    "completed": "succeed",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "cancelled": "failed",
    "canceled": "failed",
}
_BLOCKED_WORDS = ("审核", "违规", "敏感", "moderation", "safety", "sensitive", "inappropriate")
_INVALID_WORDS = ("参数", "invalid", "parameter", "not support", "不支持", "尺寸", "宽高", "size")


# --- request ------------------------------------------------------------------------------


def build_request(req: ImageRequest, endpoint: Endpoint) -> tuple[str, dict[str, Any]]:
    """(path, JSON body). No images: a generation; with images: an edit, JSON as S2 takes it
    (`image` a string for one image, a list for several). `endpoint.extra_body` is merged at top
    level but cannot set model, prompt, images, mask or n. `n` and `aspect_ratio` are sent as
    the model's profile allows (S2 documents `aspect_ratio` for kling models only)."""
    profile = profile_for(req.model, endpoint)
    body: dict[str, Any] = {k: v for k, v in endpoint.extra_body.items() if k not in _RESERVED}
    body.update(model=req.model, prompt=req.prompt)
    if req.n > 1 and profile.supports_n(endpoint.dialect):
        body["n"] = min(req.n, MAX_N)
    ratio, _ = profile.sendable(req.aspect_ratio, None)
    if ratio and profile.ratio_in_images_body:
        body["aspect_ratio"] = ratio
    if not req.images:
        return "/images/generations", body
    uris = [data_uri(image) for image in req.images]
    body["image"] = uris[0] if len(uris) == 1 else uris
    return "/images/edits", body


# --- response -----------------------------------------------------------------------------


def _load(body: Body) -> dict[str, Any]:
    answer = answer_object(body)
    if answer.get("error") and not answer.get("data"):
        raise error_in_200(answer["error"], body)
    return answer


def _b64_ref(payload: str) -> ImageRef:
    """`b64_json` is bare base64 by the spec; some relays put a data URI there instead."""
    if payload.lstrip()[:5].lower() == "data:":
        return ref_from_url_or_data(payload)
    data = decode_base64(payload)
    return ImageRef(data=data, mime=sniff_mime(data))


def _item_ref(item: Mapping[str, Any]) -> ImageRef | None:
    b64, url = item.get("b64_json"), item.get("url")
    if isinstance(b64, str) and b64.strip():
        return _b64_ref(b64)
    if isinstance(url, str) and url.strip():
        return ref_from_url_or_data(url)
    return None


def _items(data: Any) -> tuple[list[ImageRef], str | None]:
    """Images of `data[]` (b64_json first, else url) and the words of its revised prompts."""
    refs, words = [], []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        ref = _item_ref(item)
        if ref is not None:
            refs.append(ref)
        revised = item.get("revised_prompt")
        if isinstance(revised, str) and (text := text_without_images(revised)):
            words.append(text)
    return refs, "\n".join(words) or None


def parse_response(body: Body) -> ParsedAnswer:
    """Images (decoded, or URLs still to fetch), revised-prompt words and usage of a 200 answer,
    or the task id of an async (kling) answer. CPU-heavy for big answers: run it in a thread.

    `text` holds the revised prompt (markdown image links removed) whether or not there are
    images; the bot shows it only when no image came back."""
    answer = _load(body)
    task_id = answer.get("task_id")
    if task_id and not answer.get("data"):
        return ParsedAnswer(task_id=str(task_id))
    images, text = _items(answer.get("data"))
    if not images and not text:
        raise ProviderError(ProviderErrorKind.NO_IMAGE, "answer has no images")
    usage = answer.get("usage")
    return ParsedAnswer(images=images, text=text, usage=usage if isinstance(usage, dict) else None)


@dataclass
class TaskState:
    """One poll of an async task: its status, the images once it succeeded, the relay's note."""

    status: TaskStatus
    images: list[ImageRef] = field(default_factory=list)
    message: str | None = None
    percent: int | None = None


def task_status(word: Any) -> TaskStatus:
    """S2's four states; the synonyms relays use mapped onto them, anything unknown is
    'processing' (so it is polled again until done or out of time)."""
    return _STATUS_WORDS.get(str(word or "").strip().lower(), "processing")


def parse_task(body: Body) -> TaskState:
    """A `GET /images/tasks/{id}` answer (S2): status, `data[].url` when it succeeded,
    `status_message`."""
    answer = _load(body)
    status = task_status(answer.get("status"))
    images = _items(answer.get("data"))[0] if status == "succeed" else []
    message = answer.get("status_message")
    return TaskState(
        status,
        images,
        message if isinstance(message, str) and message else None,
        task_percent(answer.get("progress")),
    )


def task_percent(value: Any) -> int | None:
    """A relay's `progress` (`50` or `"50%"`) as a whole percent; None when absent or odd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip().removesuffix("%").strip()
        if not value.isdigit():
            return None
        value = int(value)
    if isinstance(value, int | float) and 0 <= value <= 100:
        return int(value)
    return None


def task_failure(state: TaskState) -> ProviderError:
    """The error for a failed task: the relay's message decides blocked / bad request / none."""
    message = state.message or "no reason given"
    lowered = message.lower()
    if any(word in lowered for word in _BLOCKED_WORDS):
        kind = ProviderErrorKind.BLOCKED
    elif any(word in lowered for word in _INVALID_WORDS):
        kind = ProviderErrorKind.BAD_REQUEST
    else:
        kind = ProviderErrorKind.NO_IMAGE
    return ProviderError(kind, clean_detail(f"task failed: {message}"), reason="task_failed")


# --- provider -----------------------------------------------------------------------------


class OpenAIImagesProvider(EndpointClient):
    """One endpoint speaking the Images API."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: httpx.AsyncClient,
        *,
        max_download_bytes: int = 50_000_000,
        poll_interval: float = 2.0,
        max_task_wait: float = 300.0,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        super().__init__(
            endpoint, http, max_download_bytes=max_download_bytes, url_policy=url_policy
        )
        self._poll_interval = poll_interval
        self._max_task_wait = max_task_wait

    @property
    def base(self) -> str:
        return self.endpoint.base_url.rstrip("/")

    def task_url(self, task_id: str) -> str:
        return f"{self.base}/images/tasks/{quote(task_id, safe='')}"

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        """Submit; for a task answer poll it (reporting TaskPolling to `progress`); then
        fetch any image links at once (relay links expire)."""
        with tagged(self.endpoint.name):
            path, body = await build_body(build_request, request, self.endpoint)
            parsed = await post_and_read(
                self._http,
                self.endpoint,
                self.base + path,
                body,
                partial(parse_answer, parse_response),
            )
            with after_answer():  # a submitted task or an answer's links: maybe billed
                refs = parsed.images
                if parsed.task_id is not None:
                    refs = await self._wait_for_task(parsed.task_id, progress)
                images = await self._images(refs)
        return ImageResult(
            images=images,
            text=parsed.text,
            usage=parsed.usage,
            endpoint=self.endpoint.name,
            model=request.model,
        )

    async def _wait_for_task(
        self, task_id: str, progress: ProgressCallback | None
    ) -> list[ImageRef]:
        """Poll every `poll_interval` until the task succeeds or fails, or `max_task_wait` ends."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_task_wait
        url, last = self.task_url(task_id), None
        while True:
            state = await self._poll(url, deadline)
            event = TaskPolling(state.status, state.percent)
            if event != last:
                last = event
                await _notify(progress, event)
            if state.status == "succeed":
                if not state.images:
                    raise ProviderError(ProviderErrorKind.NO_IMAGE, "task succeeded without images")
                return state.images
            if state.status == "failed":
                raise task_failure(state)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._still_running()
            await asyncio.sleep(min(self._poll_interval, remaining))

    async def _poll(self, url: str, deadline: float) -> TaskState:
        """One task state. Transient failures are polled again (free) a few times; when they
        persist, or time runs out, the outcome is unknown: TIMEOUT ("maybe charged")."""
        loop = asyncio.get_running_loop()
        for attempt in range(1, POLL_ATTEMPTS + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._still_running()
            try:
                return await get_and_read(
                    self._http,
                    self.endpoint,
                    url,
                    partial(parse_answer, parse_task),
                    timeout=min(self.endpoint.timeout, remaining),
                )
            except ProviderError as exc:
                if not exc.transient:
                    raise
                if attempt == POLL_ATTEMPTS:
                    raise ProviderError(
                        ProviderErrorKind.TIMEOUT,
                        f"task status unknown after {attempt} polls: {exc.detail}",
                        status=exc.status,
                    ) from exc
                log.info("polling %s: %s (attempt %d)", self.endpoint.name, exc.kind, attempt)
                wait = max(self._poll_interval, exc.retry_after or 0.0)
                await asyncio.sleep(max(0.0, min(wait, deadline - loop.time())))
        raise AssertionError("unreachable")

    def _still_running(self) -> ProviderError:
        return ProviderError(
            ProviderErrorKind.TIMEOUT, f"task still running after {self._max_task_wait:g} s"
        )


async def _notify(progress: ProgressCallback | None, event: TaskPolling) -> None:
    """Report the task's state; a failing report never loses a paid task."""
    if progress is None:
        return
    try:
        await progress(event)
    except Exception:
        log.warning("progress callback failed for %s", event, exc_info=True)
