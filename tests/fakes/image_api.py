"""A fake image API that behaves like the relays of PROTOCOLS.md §1A, §1B and §1C.

It is an aiohttp server on 127.0.0.1 (port 0) running in the test's own event loop:

    api = FakeImageAPI(api_key="sk-test", auth_style="bearer")
    await api.start()                       # -> "http://127.0.0.1:PORT"
    ... Endpoint(base_url=api.openai_base, ...)   # f"{api.root}/v1"
    await api.stop()

Routes:
- `POST /v1/chat/completions` (openai-chat; answer shape `answer_shape`);
- `POST /v1/images/generations`, `POST /v1/images/edits` (openai-images, JSON bodies; `image` a
  data URI / URL or a list of them, `mask`, `n`; answer by `images_answer`: "b64" (Qiniu
  `data[].b64_json`), "url" (Rainboxs `data[].url` + `revised_prompt` with a markdown link) or
  "task" (kling: `{"task_id"}`, then `GET /v1/images/tasks/{id}` says submitted, processing ...
  for `task_steps` polls, then succeed with `data[].url`, or failed after fail_next("task-failed"));
  `fail_next_poll` makes task polls fail;
- `POST /v1beta/models/{model}:generateContent` (gemini native; answer by `gemini_answer`:
  "image", "snake", "thinking", "text-only"; refusals via fail_next). Like Google it checks
  `generationConfig.imageConfig` against the model's family (`GOOGLE_IMAGE_MODELS`: 400
  INVALID_ARGUMENT for a ratio or size the model does not take, or for googleSearch on 2.5), and
  a request with `tools: [{"googleSearch": {}}]` is answered with `groundingMetadata`
  (`grounding_sources`: (uri, title) pairs);
- a model named in `retired_models` is answered as gone: Google's 404 NOT_FOUND "models/X is not
  found for API version v1beta" on /v1beta, new-api's 503 "无可用渠道" (code model_not_found)
  on /v1;
- `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`: the same answer as Google streams
  it, `data: {json}\r\n\r\n` events: the thought parts first (one event each, `thought_delay`
  seconds apart; "thinking" answers carry `thoughts`), then the other parts (words cut in two
  events), then a last chunk with `finishReason` and the whole `usageMetadata`. Errors before
  the stream are normal JSON error bodies, refusals and malformed answers come as one event,
  and fail_next("mid-stream") breaks off after the thoughts with an error event. Without
  `alt=sse` the chunks come as one JSON array, as Google sends them then;
- `GET /files/<id>.<ext>` (image links, expiring after `url_ttl`; `files_redirect_to` makes them
  redirect, `link_to` makes answers name another URL instead);
- `GET /v1/models` (OpenAI `{"object":"list","data":[{"id"}]}`) and `GET /v1beta/models` (Google
  `{"models":[{"name":"models/..."}]}`): the `models` list, behind the same auth.
`serves` (default: all three dialects) makes it one kind of endpoint: the routes of the other
dialects answer a plain 404, as a relay or Google without them does.
Relay shapes: `answer_shape = "openrouter"` (OpenRouter: `message.images[]`, text-only unless the
request asks for `modalities` with "image"); `answer_shape = "new-api"` (markdown data URIs of
`new_api_formats` joined by "\n" in a string `content`, thoughts in `reasoning_content`); the
fail kinds "new-api-blocked" (HTTP 400 "request blocked by Gemini API: <reason>"),
"new-api-empty" (HTTP 500 empty_response), "new-api-filter" (200, `content_filter`), "no-content"
(200, a message without `content`) and "200-error-500" (an error object sent with 200).
Billing: `answers_200` counts 200 answers to generation calls; `charges` those a relay bills:
every one with `bills_every_200`, else only those that carried an image.
Errors come in each dialect's own shape: OpenAI `{"error":{message,type,param,code}}` for /v1,
Google `{"error":{code,message,status,details}}` for /v1beta (a bad key is Google's 400
API_KEY_INVALID there). To add a dialect, add a route whose handler calls
`self._serve(request, dialect, answer)`: auth, recording, input-image decoding, latency,
`fail_next` and `hold_next` are shared; add the dialect's image sources to `_image_sources`
and its error shape to `_error`.

`capacity` (None: unlimited) makes it a busy relay: a call beyond that many in flight gets a 429
in the dialect's shape (OpenAI: `Retry-After` header; Google: RESOURCE_EXHAUSTED with RetryInfo),
`capacity_retry_after` seconds; `in_flight`, `most_in_flight`, `in_flight_log` and
`over_capacity` show what the caller sent.

Every request records its input images (`requests[i].input_images`: all images of all turns,
in order, then an edit's mask) and `turns` (gemini `contents`, chat `messages`); thought
signatures sent back to a gemini route are collected in `signatures_seen`.

Every generated image is a solid colour taken from a deterministic sequence (`next_color()`
peeks at it, `outputs` records what was sent), so a test can check *by pixels* that a later
request carries an earlier output: compare `requests[i].input_images[j].color` to `outputs[k]`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import math
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from PIL import Image, ImageStat

Color = tuple[int, int, int]
Answer = Callable[[dict[str, Any], "_Failure | None"], Awaitable[web.StreamResponse]]

FAIL_KINDS = (
    "500",
    "503-html",
    "429",
    "hang",
    "malformed-json",
    "truncated-base64",
    "401",
    "400",
    "404-model",
    "content-filter",
    "task-failed",
    "quota-per-day",
    "safety-block",
    "finish-IMAGE_SAFETY",
    "finish-NO_IMAGE",
    "finish-RECITATION",
    "401-echo-key",
    "200-error-echo-key",
    "mid-stream",
    "new-api-blocked",
    "new-api-empty",
    "new-api-filter",
    "no-content",
    "200-error-500",
)
ANSWER_TIME_FAULTS = (
    "truncated-base64",
    "content-filter",
    "task-failed",
    "mid-stream",
    "new-api-filter",
    "no-content",
)
DIALECTS = ("openai-chat", "openai-images", "gemini")
DEFAULT_MODELS = (
    "gemini-3.1-flash-image",
    "gemini-3-pro-image",
    "gemini-2.5-flash-image",
    "gemini-2.5-flash",
)
NEW_API_REQUEST_ID = "20261202053700123456789"
POLL_FAIL_KINDS = ("500", "503-html", "429", "hang", "malformed-json", "401")
LEADING_TEXT = "这是修改后的图片:"
TEXT_ONLY_ANSWER = "抱歉,我无法生成这张图片。我可以用文字描述:一只橙色的小猫坐在彩虹桥上。"
BIG_NOISE_COLOR: Color = (128, 128, 128)  # what `outputs` records for a big (noise) output
# Interim "thinking" images: a colour the output sequence never has, and not in `outputs`.
DRAFT_COLOR: Color = (250, 250, 250)
# The thought summaries a "thinking" answer carries (Google's shape: a bold header, then prose).
THOUGHTS = (
    "**Planning the scene**\n\nI'm working out where the subject sits and how the light falls.",
    "**Choosing the palette**\n\nWarm tones for the foreground, a cooler sky behind it.",
    "**Refining the details**\n\nSharpening the edges and checking the text is legible.",
)

_CLOUDFLARE_503 = """<!DOCTYPE html>
<html lang="en-US"><head><title>api.example.com | 503: Service temporarily unavailable</title>
<meta charset="UTF-8" /><style>body{font-family:sans-serif}</style></head>
<body><div id="cf-wrapper"><h1>Service temporarily unavailable</h1>
<p>The web server reported a temporary error. Cloudflare Ray ID: 8f1e2d3c4b5a6978</p>
</div></body></html>"""
_MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_MALFORMED = {  # an answer cut off mid-string, in each dialect's shape
    "openai-chat": b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"\xe8\xbf\x99',
    "openai-images": b'{"created":1758420613,"data":[{"b64_json":"iVBORw0KGgoAAAANSUhEU',
    "gemini": b'{"candidates":[{"content":{"role":"model","parts":[{"text":"\xe8\xbf\x99',
}
_GOOGLE_MESSAGES = {
    400: "Request contains an invalid argument.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
}
_FORMAT_MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True)
class SeenImage:
    """An image found in a request, decoded with Pillow."""

    data: bytes = field(repr=False)
    mime: str | None
    width: int
    height: int
    color: Color  # mean RGB, rounded


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # names lower-cased
    query: dict[str, str]
    json: Any  # None when the body was not JSON
    input_images: list[SeenImage]
    at: float  # time.monotonic()
    turns: int = 0  # gemini: len(contents); openai-chat: len(messages); images: 1


@dataclass
class _Failure:
    kind: str
    kw: dict[str, Any]


@dataclass
class _File:
    data: bytes
    mime: str
    created: float


# --- images (run in threads) ----------------------------------------------------------------


def color_at(index: int) -> Color:
    """The index-th colour of the sequence: distinct, channels well apart from each other."""
    return (
        (index * 53 + 40) % 216 + 20,
        (index * 97 + 90) % 216 + 20,
        (index * 151 + 150) % 216 + 20,
    )


def solid_image(size: tuple[int, int], color: Color, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, _PIL_FORMATS[fmt], quality=95)
    return buf.getvalue()


@functools.lru_cache(maxsize=2)
def noise_png(min_bytes: int) -> bytes:
    """A square PNG of random pixels at least `min_bytes` long (random data doesn't compress)."""
    side = math.isqrt(min_bytes // 3) + 16
    im = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def describe_image(data: bytes) -> SeenImage:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mean = ImageStat.Stat(im.convert("RGB")).mean
        return SeenImage(
            data=data,
            mime=_FORMAT_MIMES.get(im.format or ""),
            width=im.width,
            height=im.height,
            color=(round(mean[0]), round(mean[1]), round(mean[2])),
        )


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


# --- the server -----------------------------------------------------------------------------


class FakeImageAPI:
    def __init__(self, *, api_key: str = "sk-test", auth_style: str = "bearer") -> None:
        self.api_key = api_key
        self.auth_style = auth_style  # bearer | raw | x-goog-api-key | query-key
        self.root = ""
        self.requests: list[Recorded] = []
        self.outputs: list[Color] = []
        self.output_bytes: list[bytes] = []  # every generated image, in order
        # markdown-data | markdown-url | images-field | content-array | text-only | empty-markdown
        self.answer_shape = "markdown-data"
        self.output_size: tuple[int, int] = (1024, 1024)
        self.output_format = "png"  # png | jpeg
        self.images_per_answer = 1
        self.latency = 0.0
        # (low, high): each call waits a latency drawn evenly from it instead (seeded: two runs
        # draw the same), as real upstreams vary from call to call
        self.latency_spread: tuple[float, float] | None = None
        self._latency_draws = random.Random(1234)
        # Capacity: above this many authorised calls in flight, the call is answered 429 in the
        # dialect's shape (OpenAI: Retry-After header; Google: RetryInfo), as a busy relay does.
        self.capacity: int | None = None
        self.capacity_retry_after = 1.0  # seconds such a 429 asks the caller to wait
        self.in_flight = 0  # authorised calls being worked on now (over-capacity ones excluded)
        self.most_in_flight = 0
        self.in_flight_log: list[tuple[float, int]] = []  # (time.monotonic(), in flight) per change
        self.over_capacity = 0  # calls answered 429 for capacity
        # When set to an unset Event, requests are recorded and then wait until it is set.
        self.hold: asyncio.Event | None = None
        self.url_ttl = 3600.0
        self.big_output_bytes: int | None = None
        self.raw_output: tuple[bytes, str] | None = None  # (bytes, mime) answered as the image
        self.link_to: str | None = None  # image links name this URL instead of our /files/
        self.files_redirect_to: str | None = None  # /files/ links answer 302 to this URL
        # openai-chat answers this many bytes, streamed (chunked, no length): a runaway relay
        self.stream_answer_bytes: int | None = None
        self.streamed_bytes = 0  # how much of such an answer the client took before hanging up
        self.leading_text = LEADING_TEXT
        self.images_answer = "b64"  # openai-images: b64 (Qiniu) | url (Rainboxs) | task (kling)
        self.task_steps = 2  # polls a task answers "processing" before "succeed"
        self.gemini_answer = "image"  # gemini: image | snake | thinking | text-only
        self.signatures_seen: list[str] = []  # every thoughtSignature sent back to us
        # thought texts of a "thinking" answer; "{prompt}" in one becomes the request's words
        self.thoughts: list[str] = list(THOUGHTS)
        self.thought_delay = 0.0  # seconds after each streamed thought event
        self.retired_models: set[str] = set()  # model ids answered as retired / withdrawn
        self.grounding_sources: list[tuple[str, str]] = list(GROUNDING_SOURCES)
        self.serves: set[str] = set(DIALECTS)  # the dialects whose routes exist here
        self.models: list[str] = list(DEFAULT_MODELS)  # what GET /models lists
        self.new_api_formats: tuple[str, ...] = ("png",)  # new-api shape: one image per format
        self.bills_every_200 = False
        self.answers_200 = 0  # 200 answers to generation calls
        self.charges = 0  # what the relay billed (see the module's doc)
        self._tasks: dict[str, dict[str, Any]] = {}
        self._failures: deque[_Failure] = deque()
        self._poll_failures: deque[_Failure] = deque()
        self._files: dict[str, _File] = {}
        self._color_index = 0
        self._hold = 0  # authorised calls still to hold (hold_next)
        self.holding = 0  # calls held right now
        self._released = asyncio.Event()
        self._arrived = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._images)
        app.router.add_get("/v1/images/tasks/{task_id}", self._task)
        app.router.add_post("/v1beta/models/{model_action}", self._generate_content)
        app.router.add_post("/v1/models/{model_action}", self._generate_content)  # same API, v1
        app.router.add_get("/files/{name}", self._file)
        app.router.add_get("/v1/models", self._openai_models)
        # OpenRouter's paths: https://openrouter.ai/api/v1/...
        app.router.add_post("/api/v1/chat/completions", self._chat_completions)
        app.router.add_get("/api/v1/models", self._openai_models)
        app.router.add_get("/v1beta/models", self._gemini_models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        return self.root

    async def stop(self) -> None:
        self._closing.set()  # wakes "hang" and latency sleeps
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def openai_base(self) -> str:
        return f"{self.root}/v1"

    # -- knobs ---------------------------------------------------------------------------------
    def next_color(self) -> Color:
        """The colour the next generated image will have (does not advance the sequence)."""
        return color_at(self._color_index)

    def fail_next(self, kind: str, times: int = 1, **kw: Any) -> None:
        """Make the next `times` authorised API calls fail as `kind` (see FAIL_KINDS).

        kw: retry_after (429, seconds), seconds (hang, default 60), status (404-model: 404 or
        the 503 one-api/new-api use), message (400)."""
        if kind not in FAIL_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        self._failures.extend(_Failure(kind, kw) for _ in range(times))

    def hold_next(self, times: int = 1) -> None:
        """Hold the next `times` authorised API calls unanswered until `release()` (or the
        fake stops): a slow upstream that has the request in hand. Unlike `hold` (every call
        while its Event is unset), later calls go through: a restarted bot's are answered."""
        self._hold += times
        self._released.clear()

    def release(self) -> None:
        """Let the held calls go on (each then answers as it would have)."""
        self._released.set()

    async def wait_requests(self, count: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Until `count` requests have arrived (recorded in `requests`)."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def fail_next_poll(self, kind: str, times: int = 1, **kw: Any) -> None:
        """Make the next `times` task polls (GET /v1/images/tasks/{id}) fail as `kind`
        (one of POLL_FAIL_KINDS; kw as for fail_next)."""
        if kind not in POLL_FAIL_KINDS:
            raise ValueError(f"unknown poll failure kind {kind!r}")
        self._poll_failures.extend(_Failure(kind, kw) for _ in range(times))

    def file_url(self, file_id: str, ext: str) -> str:
        return f"{self.root}/files/{file_id}.{ext}"

    # -- shared pipeline -----------------------------------------------------------------------
    async def _serve(
        self, request: web.Request, dialect: str, answer: Answer
    ) -> web.StreamResponse:
        body = await self._read_json(request)
        seen, bad_image = await self._input_images(dialect, body)
        self._record(request, body, seen, _turns(dialect, body))
        if dialect not in self.serves:  # recorded all the same: tests look at what was sent
            return web.Response(status=404, text="404: Not Found")
        if not self._authorized(request):
            return self._auth_error(dialect)
        if body is None:
            return self._error(
                dialect,
                400,
                "request body is not valid JSON",
                "invalid_request_error",
                "invalid_json",
            )
        if bad_image:
            return self._error(
                dialect,
                400,
                "Unable to process input image. Please retry.",
                "invalid_request_error",
                "invalid_image",
            )
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.over_capacity += 1
            return self._busy(dialect)
        self._count_in_flight(+1)
        try:
            if self._hold:
                self._hold -= 1
                self.holding += 1
                try:
                    await self._until_released()
                finally:
                    self.holding -= 1
            failure = self._failures.popleft() if self._failures else None
            if self.latency_spread is not None:
                await self._sleep(self._latency_draws.uniform(*self.latency_spread))
            elif self.latency:
                await self._sleep(self.latency)
            if self.hold is not None:
                await self.hold.wait()
            made = len(self.outputs)
            if failure is not None and failure.kind not in ANSWER_TIME_FAULTS:
                resp = await self._fail(dialect, failure, _model_of(request, body))
            else:
                resp = await answer(body, failure)
            if resp.status == 200:
                self.answers_200 += 1
                if self.bills_every_200 or len(self.outputs) > made:
                    self.charges += 1
            return resp
        finally:
            self._count_in_flight(-1)

    def _count_in_flight(self, step: int) -> None:
        self.in_flight += step
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.in_flight_log.append((time.monotonic(), self.in_flight))

    def _busy(self, dialect: str) -> web.Response:
        """The 429 of an endpoint at its capacity, in the dialect's own shape."""
        seconds = self.capacity_retry_after
        if dialect == "gemini":
            return google_error(
                429, "Resource has been exhausted (e.g. check quota).", retry_delay=f"{seconds:g}s"
            )
        return self._error(
            dialect,
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            "rate_limit_exceeded",
            headers={"Retry-After": f"{seconds:g}"},
        )

    def _record(self, request: web.Request, body: Any, seen: list[SeenImage], turns: int) -> None:
        self.requests.append(
            Recorded(
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                query=dict(request.query),
                json=body,
                input_images=seen,
                at=time.monotonic(),
                turns=turns,
            )
        )
        self._arrived.set()

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return await asyncio.to_thread(json.loads, raw)
        except ValueError:
            return None

    async def _until_released(self) -> None:
        release = asyncio.ensure_future(self._released.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait([release, closing], return_when=asyncio.FIRST_COMPLETED)
        finally:
            release.cancel()
            closing.cancel()

    def _authorized(self, request: web.Request) -> bool:
        if self.auth_style == "bearer":
            return request.headers.get("Authorization") == f"Bearer {self.api_key}"
        if self.auth_style == "raw":
            return request.headers.get("Authorization") == self.api_key
        if self.auth_style == "x-goog-api-key":
            return request.headers.get("x-goog-api-key") == self.api_key
        if self.auth_style == "query-key":
            return request.query.get("key") == self.api_key
        raise ValueError(f"unknown auth style {self.auth_style!r}")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _auth_error(self, dialect: str) -> web.Response:
        if dialect == "gemini":  # Google answers a wrong key with 400, not 401
            return google_error(
                400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
            )
        return self._error(
            dialect, 401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )

    def _error(
        self,
        dialect: str,
        status: int,
        message: str,
        type_: str,
        code: str | None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """An error in the dialect's own shape (openai family: {"error":{message,type,...}})."""
        if dialect == "gemini":
            message = _GOOGLE_MESSAGES.get(status, message)
            return google_error(status, message, headers=headers)
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _fail(self, dialect: str, failure: _Failure, model: str | None) -> web.Response:
        kind, kw = failure.kind, failure.kw
        if kind == "hang":
            await self._sleep(kw.get("seconds", 60.0))
            return self._error(dialect, 504, "Gateway Timeout", "server_error", None)
        if kind == "503-html":
            return web.Response(status=503, text=_CLOUDFLARE_503, content_type="text/html")
        if kind == "malformed-json":
            return web.Response(body=_MALFORMED[dialect], content_type="application/json")
        if kind in GEMINI_REFUSALS:
            return _json(gemini_refusal(kind))
        if kind == "quota-per-day" or (kind == "429" and dialect == "gemini"):
            return google_error(
                429,
                "Resource has been exhausted (e.g. check quota).",
                per_day=kind == "quota-per-day",
                retry_delay=f"{kw.get('retry_after', 1)}s",
            )
        if kind == "429":
            return self._error(
                dialect,
                429,
                "Rate limit reached for requests. Please try again in 1s.",
                "requests",
                "rate_limit_exceeded",
                headers={"Retry-After": str(kw.get("retry_after", 1))},
            )
        if kind == "404-model" and dialect == "gemini":
            return google_error(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and "
                "their supported methods.",
            )
        if kind == "404-model":
            return self._error(
                dialect,
                kw.get("status", 404),
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        return self._simple_failure(dialect, kind, kw)

    def _echoed_key(self) -> str:
        """The key as careless relays write it back: whole, in a header, URL-encoded, cut."""
        key = self.api_key
        return (
            f"token {quote(key, safe='')} invalid (prefix {key[:10]}...; "
            f"Authorization: Bearer {key}; key {key})"
        )

    def _simple_failure(self, dialect: str, kind: str, kw: dict[str, Any]) -> web.Response:
        if kind == "401":
            return self._auth_error(dialect)
        if kind == "401-echo-key":  # one-api/new-api style: the refused token in the message
            return self._error(dialect, 401, self._echoed_key(), "new_api_error", "invalid_api_key")
        if kind == "200-error-echo-key":  # an error object sent with 200, key echoed
            body = {
                "error": {
                    "message": self._echoed_key(),
                    "type": "upstream_error",
                    "code": "upstream_error",
                }
            }
            return web.json_response(body, status=200)
        if kind == "new-api-blocked":  # new-api: a Gemini prompt block, as HTTP 400
            reason = kw.get("reason", "PROHIBITED_CONTENT")
            return new_api_error(400, f"request blocked by Gemini API: {reason}", "prompt_blocked")
        if kind == "new-api-empty":  # new-api: Gemini answered no candidates, as HTTP 500
            return new_api_error(500, "empty response from Gemini API", "empty_response")
        if kind == "200-error-500":
            body = {
                "error": {
                    "message": "upstream error: do request failed",
                    "type": "server_error",
                    "code": 500,
                }
            }
            return web.json_response(body, status=200)
        if kind == "400":
            return self._error(
                dialect,
                400,
                kw.get("message", "Invalid value for 'messages'."),
                "invalid_request_error",
                "invalid_value",
            )
        return self._error(
            dialect,
            500,
            "The server had an error while processing your request.",
            "server_error",
            None,
        )

    # -- input images --------------------------------------------------------------------------
    def _image_sources(self, dialect: str, body: Any) -> list[str]:
        """Data URIs and URLs of the images a request carries (openai-chat: image_url parts)."""
        sources: list[str] = []
        if dialect == "openai-images" and isinstance(body, dict):
            image = body.get("image")
            sources.extend(
                i
                for i in [*(image if isinstance(image, list) else [image]), body.get("mask")]
                if isinstance(i, str) and i
            )
        if dialect == "gemini" and isinstance(body, dict):
            for turn in body.get("contents") or []:
                for part in turn.get("parts") or [] if isinstance(turn, dict) else []:
                    inline = part.get("inlineData") or part.get("inline_data") or {}
                    if isinstance(inline, dict) and inline.get("data"):
                        mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
                        sources.append(f"data:{mime};base64,{inline['data']}")
                    signature = part.get("thoughtSignature") or part.get("thought_signature")
                    if signature:
                        self.signatures_seen.append(signature)
        if dialect == "openai-chat" and isinstance(body, dict):
            for message in body.get("messages") or []:
                content = message.get("content") if isinstance(message, dict) else None
                for part in content if isinstance(content, list) else []:
                    url = (part.get("image_url") or {}) if isinstance(part, dict) else {}
                    url = url.get("url") if isinstance(url, dict) else url
                    if isinstance(url, str):
                        sources.append(url)
        return sources

    async def _input_images(self, dialect: str, body: Any) -> tuple[list[SeenImage], bool]:
        """(decoded images, whether one could not be decoded)."""
        seen, bad = [], False
        for source in self._image_sources(dialect, body):
            data = await self._fetch_source(source)
            if data is None:
                continue
            try:
                seen.append(await asyncio.to_thread(describe_image, data))
            except (OSError, ValueError, Image.DecompressionBombError):
                bad = True
        return seen, bad

    async def _fetch_source(self, source: str) -> bytes | None:
        if source.startswith("data:"):
            _, _, payload = source.partition(",")
            try:
                return base64.b64decode(payload, validate=True)
            except ValueError:
                return b""
        return None  # an image link: the bot sends none, so none is fetched

    # -- outputs -------------------------------------------------------------------------------
    async def _make_output(self) -> tuple[bytes, str]:
        """One generated image (bytes, mime); its colour goes to `outputs`."""
        if self.raw_output is not None:
            self.outputs.append(BIG_NOISE_COLOR)
            self.output_bytes.append(self.raw_output[0])
            return self.raw_output
        if self.big_output_bytes:
            self.outputs.append(BIG_NOISE_COLOR)
            big = await asyncio.to_thread(noise_png, self.big_output_bytes)
            self.output_bytes.append(big)
            return big, "image/png"
        color = color_at(self._color_index)
        self._color_index += 1
        self.outputs.append(color)
        data = await asyncio.to_thread(solid_image, self.output_size, color, self.output_format)
        self.output_bytes.append(data)
        return data, _MIMES[self.output_format]

    async def _image_targets(
        self, *, as_url: bool, truncate: bool, count: int | None = None
    ) -> list[str]:
        """Data URIs (or /files/ links) of `count` (default images_per_answer) new images."""
        targets = []
        for _ in range(self.images_per_answer if count is None else count):
            data, mime = await self._make_output()
            if as_url and self.link_to is not None:  # an echoing model printed someone's URL
                targets.append(self.link_to)
                continue
            if as_url:
                file_id = uuid.uuid4().hex
                self._files[file_id] = _File(data, mime, time.monotonic())
                targets.append(self.file_url(file_id, mime.split("/")[1]))
                continue
            uri = await asyncio.to_thread(data_uri, data, mime)
            if truncate:  # cut inside the base64, at a length that is not a multiple of 4
                head = uri.index(",") + 1
                uri = uri[: head + ((len(uri) - head) // 2) // 4 * 4 + 2]
            targets.append(uri)
        return targets

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["name"].rsplit(".", 1)[0]
        if self.files_redirect_to is not None:  # a CDN hop, as many relays' links take
            raise web.HTTPFound(self.files_redirect_to)
        file = self._files.get(file_id)
        if file is None or time.monotonic() - file.created > self.url_ttl:
            return web.Response(status=404, text="404 Not Found: the link has expired")
        return web.Response(body=file.data, content_type=file.mime)

    # -- openai-images -------------------------------------------------------------------------
    async def _images(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai-images", self._images_answer)

    async def _images_answer(self, body: dict[str, Any], failure: _Failure | None) -> web.Response:
        n = _count(body.get("n"))
        if failure is not None and failure.kind == "content-filter":
            return self._error(
                "openai-images",
                400,
                "Your request was rejected as a result of our safety system. Your prompt may "
                "contain text that is not allowed by our safety system.",
                "invalid_request_error",
                "content_policy_violation",
            )
        if self.images_answer == "task":
            task_id = f"image-{uuid.uuid4().hex[:16]}"
            failed = failure is not None and failure.kind == "task-failed"
            self._tasks[task_id] = {"polls": 0, "failed": failed, "n": n}
            return _json({"task_id": task_id})
        as_url = self.images_answer == "url"
        truncate = failure is not None and failure.kind == "truncated-base64"
        targets = await self._image_targets(as_url=as_url, truncate=truncate, count=n)
        if as_url:
            prompt = body.get("prompt")
            items = [{"revised_prompt": f"{prompt}: ![image]({t})", "url": t} for t in targets]
        else:
            items = [{"b64_json": t.partition(",")[2]} for t in targets]
        usage = {"total_tokens": 1300, "input_tokens": 10, "output_tokens": 1290}
        return _json(
            {"created": int(time.time()), "data": items, "output_format": "png", "usage": usage}
        )

    async def _task(self, request: web.Request) -> web.Response:
        self._record(request, None, [], 0)
        if not self._authorized(request):
            return self._auth_error("openai-images")
        if self._poll_failures:
            return await self._fail("openai-images", self._poll_failures.popleft(), None)
        task_id = request.match_info["task_id"]
        task = self._tasks.get(task_id)
        if task is None:
            return self._error(
                "openai-images", 404, "task not found", "invalid_request_error", "not_found"
            )
        task["polls"] += 1
        answer: dict[str, Any] = {"task_id": task_id, "created": int(time.time())}
        if task["polls"] == 1:
            return _json({**answer, "status": "submitted", "status_message": "已提交"})
        if task["polls"] <= self.task_steps:
            return _json({**answer, "status": "processing", "status_message": "处理中"})
        if task["failed"]:
            return _json({**answer, "status": "failed", "status_message": "图片内容审核未通过"})
        if "data" not in task:
            urls = await self._image_targets(as_url=True, truncate=False, count=task["n"])
            task["data"] = [{"index": i, "url": u} for i, u in enumerate(urls)]
        return _json(
            {
                **answer,
                "status": "succeed",
                "status_message": "成功",
                "data": task["data"],
                "quantity": len(task["data"]),
            }
        )

    # -- gemini ----------------------------------------------------------------------------------
    async def _generate_content(self, request: web.Request) -> web.StreamResponse:
        _, _, action = request.match_info["model_action"].partition(":")
        if action not in ("generateContent", "streamGenerateContent"):
            return google_error(404, f"Method {action} not found.")
        model = request.match_info["model_action"].partition(":")[0]
        if action == "generateContent":
            answer = functools.partial(self._gemini_checked, model, self._gemini_answer)
            return await self._serve(request, "gemini", answer)
        stream = functools.partial(
            self._gemini_checked, model, functools.partial(self._gemini_stream, request)
        )
        return _as_stream(request, await self._serve(request, "gemini", stream))

    async def _gemini_checked(
        self,
        model: str,
        answer: Answer,
        body: dict[str, Any],
        failure: _Failure | None,
    ) -> web.StreamResponse:
        """Google's checks before it generates: the model exists, its imageConfig is valid."""
        if model in self.retired_models:
            return google_error(404, model_not_found_message(model))
        problem = image_config_problem(model, body)
        if problem is not None:
            return google_error(400, problem)
        return await answer(body, failure)

    async def _gemini_answer(self, body: dict[str, Any], failure: _Failure | None) -> web.Response:
        if failure is not None and failure.kind == "mid-stream":  # unstreamed, it is a 500
            return self._error("gemini", 500, "", "server_error", None)
        parts = await self._gemini_parts(body, failure)
        return web.Response(
            body=await asyncio.to_thread(
                _dumps, gemini_payload(parts, grounding=self._grounding(body))
            ),
            content_type="application/json",
        )

    async def _gemini_parts(
        self, body: dict[str, Any], failure: _Failure | None
    ) -> list[dict[str, Any]]:
        """The parts of a gemini answer, as `gemini_answer` says."""
        if self.gemini_answer == "text-only":
            return [{"text": TEXT_ONLY_ANSWER}]
        [target] = await self._image_targets(
            as_url=False, truncate=failure is not None and failure.kind == "truncated-base64"
        )
        mime, _, data = target.partition(";base64,")
        mime = mime.removeprefix("data:")
        parts: list[dict[str, Any]]
        if self.gemini_answer == "snake":
            parts = [{"text": "Here you go."}, {"inline_data": {"mime_type": mime, "data": data}}]
        else:
            parts = [
                {"text": "Here is your image."},
                {"inlineData": {"mimeType": mime, "data": data}},
            ]
        if self.gemini_answer == "thinking":
            draft = await asyncio.to_thread(
                solid_image, self.output_size, DRAFT_COLOR, self.output_format
            )
            thought: dict[str, Any] = {
                "inlineData": {"mimeType": mime, "data": base64.b64encode(draft).decode("ascii")},
                "thought": True,
            }
            parts = [
                *(
                    {"text": text.replace("{prompt}", _last_words(body)), "thought": True}
                    for text in self.thoughts
                ),
                thought,
                dict(thought),
                {**parts[1], "thoughtSignature": f"sig-{len(self.requests)}"},
            ]
        return parts

    async def _gemini_stream(
        self, request: web.Request, body: dict[str, Any], failure: _Failure | None
    ) -> web.StreamResponse:
        """The answer as Google streams it: SSE events with `alt=sse`, else one JSON array."""
        parts = await self._gemini_parts(body, failure)
        chunks = [gemini_chunk([p]) for p in parts if p.get("thought")]
        for part in (p for p in parts if not p.get("thought")):
            text = part.get("text")
            if isinstance(text, str) and len(text) > 1:  # words come in pieces
                half = len(text) // 2
                chunks += [
                    gemini_chunk([{**part, "text": text[:half]}]),
                    gemini_chunk([{"text": text[half:]}]),
                ]
            else:
                chunks.append(gemini_chunk([part]))
        last = gemini_payload([{"text": ""}], grounding=self._grounding(body))
        if failure is not None and failure.kind == "mid-stream":
            err = {"code": 500, "message": _GOOGLE_MESSAGES[500], "status": "INTERNAL"}
            chunks = [c for c in chunks if _is_thought(c)]
            last = {"error": err}
        chunks.append(last)
        if request.query.get("alt") != "sse":
            payload = await asyncio.to_thread(_dumps, chunks)
            array = web.Response(body=payload, content_type="application/json")
            array[_CHUNKED] = True  # already the stream's shape: _as_stream leaves it
            return array
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for chunk in chunks:
                event = await asyncio.to_thread(_dumps, chunk)
                await resp.write(b"data: " + event + b"\r\n\r\n")
                if _is_thought(chunk) and self.thought_delay:
                    await self._sleep(self.thought_delay)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up
            pass
        return resp

    def _grounding(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """groundingMetadata as Google sends it for a request with the googleSearch tool."""
        tools = body.get("tools")
        if not isinstance(tools, list) or not any(
            isinstance(tool, dict) and "googleSearch" in tool for tool in tools
        ):
            return None
        # Google's links are redirects made for each answer: no two answers share one (numbered
        # by the request they answer: requests in flight together must not share a number).
        answer = next(
            (i for i, r in enumerate(self.requests, 1) if r.json is body), len(self.requests)
        )
        return grounding_metadata([(f"{u}-{answer}", t) for u, t in self.grounding_sources])

    # -- openai-chat ---------------------------------------------------------------------------
    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        if self.stream_answer_bytes is not None:
            return await self._serve(
                request, "openai-chat", functools.partial(self._runaway_answer, request)
            )
        return await self._serve(request, "openai-chat", self._chat_answer)

    async def _runaway_answer(
        self, request: web.Request, body: dict[str, Any], failure: _Failure | None
    ) -> web.StreamResponse:
        """A chat answer of `stream_answer_bytes` bytes: one endless data URI, in 1 MB chunks."""
        total = self.stream_answer_bytes or 0
        head = (
            b'{"choices":[{"index":0,"message":{"role":"assistant","content":"![image]'
            b"(data:image/png;base64,iVBORw0KGgo"
        )
        tail = b')"},"finish_reason":"stop"}]}'
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"A" * (1 << 20)
        self.streamed_bytes = 0
        try:
            await resp.write(head)
            self.streamed_bytes = len(head)
            while self.streamed_bytes < total - len(tail):
                piece = chunk[: total - len(tail) - self.streamed_bytes]
                await resp.write(piece)
                self.streamed_bytes += len(piece)
            await resp.write(tail)
            self.streamed_bytes += len(tail)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up, as it should
            pass
        return resp

    async def _chat_answer(self, body: dict[str, Any], failure: _Failure | None) -> web.Response:
        model = str(body.get("model", ""))
        if model in self.retired_models:  # new-api: no channel serves the model any more
            return self._error(
                "openai-chat",
                503,
                f"当前分组 default 下对于模型 {model} 无可用渠道 (request id: 20261202)",
                "new_api_error",
                "model_not_found",
            )
        if failure is not None and failure.kind == "content-filter":
            return _json(chat_payload(model, None, finish_reason="content_filter"))
        if failure is not None and failure.kind == "new-api-filter":  # any non-STOP finish
            return _json(chat_payload(model, "", finish_reason="content_filter"))
        if failure is not None and failure.kind == "no-content":  # and billed, on some relays
            payload = chat_payload(model, None)
            del payload["choices"][0]["message"]["content"]
            return _json(payload)
        shape = self.answer_shape
        if shape == "openrouter":
            return await self._openrouter_answer(body, model)
        if shape == "new-api":
            return await self._new_api_answer(model)
        if shape == "text-only":
            return _json(chat_payload(model, TEXT_ONLY_ANSWER))
        if shape == "empty-markdown":
            return _json(chat_payload(model, "这是您的小猫:![image]()"))
        truncate = failure is not None and failure.kind == "truncated-base64"
        if truncate and shape == "markdown-url":
            shape = "markdown-data"
        targets = await self._image_targets(as_url=shape == "markdown-url", truncate=truncate)
        message = chat_message(shape, targets, self.leading_text)
        payload = chat_payload(model, message.pop("content"), extra=message)
        return web.Response(
            body=await asyncio.to_thread(_dumps, payload), content_type="application/json"
        )

    async def _openrouter_answer(self, body: dict[str, Any], model: str) -> web.Response:
        """OpenRouter: images in `message.images[]` only when the request asks for them."""
        modalities = body.get("modalities")
        if not (isinstance(modalities, list) and "image" in modalities):
            return _json(chat_payload(model, TEXT_ONLY_ANSWER))
        targets = await self._image_targets(as_url=False, truncate=False)
        images = [
            {"type": "image_url", "image_url": {"url": t}, "index": i}
            for i, t in enumerate(targets)
        ]
        payload = chat_payload(
            model, "", extra={"refusal": None, "reasoning": None, "images": images}
        )
        payload["id"] = f"gen-{uuid.uuid4().hex[:20]}"
        payload["provider"] = "Google"
        payload["choices"][0]["native_finish_reason"] = "STOP"
        return web.Response(
            body=await asyncio.to_thread(_dumps, payload), content_type="application/json"
        )

    async def _new_api_answer(self, model: str) -> web.Response:
        """new-api: one markdown data URI per image (of each of `new_api_formats`), joined by
        newlines after the model's words, and its thoughts in `reasoning_content`."""
        links = []
        for fmt in self.new_api_formats:
            kept, self.output_format = self.output_format, fmt
            try:
                [target] = await self._image_targets(as_url=False, truncate=False, count=1)
            finally:
                self.output_format = kept
            links.append(f"![image]({target})")
        content = "\n".join([self.leading_text, *links])
        payload = chat_payload(
            model, content, extra={"reasoning_content": "**Planning the layout** of the picture"}
        )
        return web.Response(
            body=await asyncio.to_thread(_dumps, payload), content_type="application/json"
        )

    # -- model lists -----------------------------------------------------------------------------
    async def _models(self, request: web.Request, dialect: str) -> web.Response:
        self._record(request, None, [], 0)
        if not self._authorized(request):
            return self._auth_error(dialect)
        if dialect == "gemini":
            return _json(
                {
                    "models": [
                        {
                            "name": f"models/{m}",
                            "displayName": m,
                            "version": "001",
                            "supportedGenerationMethods": ["generateContent", "countTokens"],
                        }
                        for m in self.models
                    ]
                }
            )
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1764653820, "owned_by": "google"}
                    for m in self.models
                ],
            }
        )

    async def _openai_models(self, request: web.Request) -> web.Response:
        if not self.serves & {"openai-chat", "openai-images"}:
            self._record(request, None, [], 0)
            return web.Response(status=404, text="404: Not Found")
        return await self._models(request, "openai-chat")

    async def _gemini_models(self, request: web.Request) -> web.Response:
        if "gemini" not in self.serves:
            self._record(request, None, [], 0)
            return web.Response(status=404, text="404: Not Found")
        return await self._models(request, "gemini")


def new_api_error(status: int, message: str, code: str) -> web.Response:
    """new-api's error object: its code doubles as the type, a request id ends the message."""
    error = {
        "message": f"{message} (request id: {NEW_API_REQUEST_ID})",
        "type": code,
        "param": "",
        "code": code,
    }
    return web.json_response({"error": error}, status=status)


def chat_message(shape: str, targets: list[str], leading: str) -> dict[str, Any]:
    """The assistant message of an answer with images, in one of the §1B shapes."""
    parts = [{"type": "image_url", "image_url": {"url": t}} for t in targets]
    if shape == "images-field":
        return {"content": "Here is the image you asked for.", "images": parts}
    if shape == "content-array":
        return {"content": [{"type": "text", "text": leading}, *parts]}
    links = "\n\n".join(f"![image]({t})" for t in targets)
    return {"content": leading + links if shape == "markdown-data" else links}


def chat_payload(
    model: str, content: Any, *, finish_reason: str = "stop", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **(extra or {})},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


GEMINI_REFUSALS = ("safety-block", "finish-IMAGE_SAFETY", "finish-NO_IMAGE", "finish-RECITATION")
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_payload(
    parts: list[dict[str, Any]],
    finish: str = "STOP",
    *,
    grounding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": finish,
        "index": 0,
    }
    if grounding is not None:
        candidate["groundingMetadata"] = grounding
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 1290,
            "totalTokenCount": 1300,
        },
        "modelVersion": "gemini-fake",
    }


def gemini_chunk(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed chunk before the last: some parts, the prompt's token count so far."""
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
        "modelVersion": "gemini-fake",
    }


_CHUNKED = web.ResponseKey("chunked", bool)


def _last_words(body: dict[str, Any]) -> str:
    """The words of a gemini request's last turn (its prompt)."""
    contents = body.get("contents") or [{}]
    parts = contents[-1].get("parts") or [] if isinstance(contents[-1], dict) else []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and "text" in p)


def _is_thought(chunk: dict[str, Any]) -> bool:
    candidates = chunk.get("candidates") or [{}]
    parts = (candidates[0].get("content") or {}).get("parts") or []
    return bool(parts) and all(p.get("thought") for p in parts)


def _as_stream(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """A 200 answered whole (a refusal, a malformed answer) as the stream Google sends then:
    one SSE event, or a JSON array of one chunk without `alt=sse`."""
    if resp.prepared or not isinstance(resp, web.Response) or resp.status != 200:
        return resp
    if resp.get(_CHUNKED):
        return resp
    body = resp.body if isinstance(resp.body, bytes) else b""
    if request.query.get("alt") == "sse":
        return web.Response(body=b"data: " + body + b"\r\n\r\n", content_type="text/event-stream")
    return web.Response(body=b"[" + body + b"]", content_type="application/json")


#: What each Google image model family takes (ai.google.dev/gemini-api/docs/image-generation):
#: (aspect ratios, image sizes, Google Search grounding). Longest family first.
_CLASSIC = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
GOOGLE_IMAGE_MODELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "gemini-3.1-flash-image": (
        (*_CLASSIC, "1:4", "4:1", "1:8", "8:1"),
        ("512", "1K", "2K", "4K"),
        True,
    ),
    "gemini-3-pro-image": (_CLASSIC, ("1K", "2K", "4K"), True),
    "gemini-2.5-flash-image": (_CLASSIC, (), False),
}
GROUNDING_SOURCES = (
    ("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ1", "weather.com"),
    ("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ2", "bbc.co.uk"),
    ("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ3", "Met Office"),
)


def model_not_found_message(model: str) -> str:
    return (
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    )


def image_config_problem(model: str, body: Any) -> str | None:
    """Google's 400 message for an imageConfig (or search tool) this model does not take."""
    family = next((f for f in GOOGLE_IMAGE_MODELS if model.startswith(f)), None)
    if family is None or not isinstance(body, dict):
        return None
    ratios, sizes, grounding = GOOGLE_IMAGE_MODELS[family]
    config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    ratio, size = config.get("aspectRatio"), config.get("imageSize")
    if ratio is not None and ratio not in ratios:
        return (
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: "
            f"aspect ratio {ratio} is not supported by {model}."
        )
    if size is not None and size not in sizes:
        return (
            f"* GenerateContentRequest.generation_config.image_config.image_size: "
            f"image size {size} is not supported by {model}."
        )
    tools = body.get("tools") or []
    if not grounding and any(isinstance(t, dict) and "googleSearch" in t for t in tools):
        return f"Search as tool is not enabled for {model}."
    return None


def grounding_metadata(sources: list[tuple[str, str]]) -> dict[str, Any]:
    """Google's groundingMetadata: the queries, the search entry point, the chunks used."""
    return {
        "webSearchQueries": ["weather london today"],
        "searchEntryPoint": {
            "renderedContent": '<style>.container{}</style><div class="container">'
            '<a class="chip" href="https://www.google.com/search?q=weather">weather</a></div>'
        },
        "groundingChunks": [{"web": {"uri": uri, "title": title}} for uri, title in sources],
        "groundingSupports": [
            {
                "segment": {"startIndex": 0, "endIndex": 10, "text": "Here is an"},
                "groundingChunkIndices": list(range(len(sources))),
            }
        ]
        if sources
        else [],
    }


def gemini_refusal(kind: str) -> dict[str, Any]:
    """A 200 answer refusing: a blocked prompt, or a candidate that stopped without an image."""
    if kind == "safety-block":
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}
    reason = kind.removeprefix("finish-")
    return {
        "candidates": [
            {
                "finishReason": reason,
                "index": 0,
                "finishMessage": f"Unable to show the generated image ({reason}).",
            }
        ]
    }


def google_error(
    status: int,
    message: str,
    *,
    per_day: bool = False,
    retry_delay: str | None = None,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> web.Response:
    """An error in Google's shape: {"error":{code,message,status,details}}; `reason` adds a
    google.rpc.ErrorInfo (API_KEY_INVALID for a wrong key)."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    if status == 429:
        quota = (
            "GenerateRequestsPerDayPerProjectPerModel"
            if per_day
            else "GenerateRequestsPerMinutePerProjectPerModel"
        )
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_requests",
                        "quotaId": quota,
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": "52758s" if per_day else (retry_delay or "1s"),
            },
        ]
    return web.json_response({"error": error}, status=status, headers=headers)


def _count(n: Any) -> int:
    """`n` of an images request, 1-10 as S2 allows."""
    try:
        return max(1, min(int(n or 1), 10))
    except (TypeError, ValueError):
        return 1


def _turns(dialect: str, body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    if dialect == "gemini":
        contents = body.get("contents")
        return len(contents) if isinstance(contents, list) else 0
    if dialect == "openai-chat":
        messages = body.get("messages")
        return len(messages) if isinstance(messages, list) else 0
    return 1


def _model_of(request: web.Request, body: Any) -> str | None:
    """The model a request names: in the gemini path, else in the JSON body."""
    in_path = request.match_info.get("model_action", "").partition(":")[0]
    if in_path:
        return in_path
    model = body.get("model") if isinstance(body, dict) else None
    return str(model) if model is not None else None


def _json(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=_dumps(payload), content_type="application/json")
