"""HTTP mechanics every dialect shares: post JSON, map failures, fetch the images an answer names.

The httpx client is shared and owned by the app: nothing here creates or closes one. The client
must carry no auth headers of its own, because image links are fetched with it from any host
(any public one, or one the operator trusts: bot.providers.urlguard decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec

from bot.providers.base import (
    Endpoint,
    GeneratedImage,
    ImagePart,
    ImageRef,
    ImageRequest,
    ImageResult,
    ParsedAnswer,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import Body, bad_response, checked_mime, clean_detail, error_from_http
from bot.providers.sse import SseFramer
from bot.providers.urlguard import Pinned, UrlPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

JSON_IN_THREAD_CHARS = 256_000  # bodies with more string data than this are encoded off-loop
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # the largest 4K answer (~22 MB of base64) three times over
ERROR_BODY_BYTES = 65_536
FIRST_READ_BYTES = 65_536  # room for a body of unknown length before it first doubles
MAPPED_BODY_BYTES = 1 << 20  # from this size a body is read into memory mapped for it
CONNECT_TIMEOUT = 15.0
_EXPIRED_STATUSES = frozenset({403, 404, 410})
DOWNLOAD_ATTEMPTS = 2  # an image link that fails to download is fetched once more
DOWNLOAD_RETRY_PAUSE = 0.5
MAX_REDIRECTS = 5  # hops an image link may take; each is checked like the link itself
# A burst of answers read at once would hold every body (and its decoded image) at the same time:
# big ones take turns through a narrow lane, the rest wait unread in their sockets meanwhile.
ANSWER_LANE_WIDTH = 4
SMALL_ANSWER_BYTES = 256 * 1024  # answers declared this small never wait for the lane


def _string_chars(obj: Any) -> int:
    """Roughly how big `obj` is as JSON: the total length of its strings (cheap, no copy)."""
    total, stack = 0, [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


# The bytes json.dumps(ensure_ascii=False, compact) gives, made straight from the strings:
# a body with an inline 4K image is encoded without a text copy of the whole body.
_dumps = msgspec.json.Encoder().encode


async def encode_json(body: Any) -> bytes:
    """JSON bytes of a request body; big bodies (inline images) are encoded off the loop."""
    if _string_chars(body) > JSON_IN_THREAD_CHARS:
        return await in_gil_lane(_dumps, body)
    return _dumps(body)


# JSON and base64 of big bodies run in C calls that hold the GIL: they take turns in one thread,
# so that several at once never starve the event loop (holding the GIL, they could never run in
# parallel anyway).
_GIL_LANE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gil-heavy")


async def in_gil_lane(fn: Callable[..., T], *args: Any) -> T:
    """Run GIL-bound work on big payloads (build or parse a request or answer) off the loop,
    one piece at a time."""
    return await asyncio.get_running_loop().run_in_executor(_GIL_LANE, partial(fn, *args))


# Below this many bytes of images, building or parsing takes less than the thread hop would.
OFF_LOOP_BYTES = 64_000


def image_bytes(request: ImageRequest) -> int:
    """The bytes of the pictures a request carries, inline or in its history."""
    inline = sum(len(i.data) for i in request.images)
    return inline + sum(
        len(p.data or b"")
        for turn in request.history
        for p in turn.parts
        if isinstance(p, ImagePart)
    )


async def build_body(
    build: Callable[[ImageRequest, Endpoint], T], request: ImageRequest, endpoint: Endpoint
) -> T:
    """A dialect's request body: in the GIL lane when it carries big images, else at once."""
    if image_bytes(request) > OFF_LOOP_BYTES:
        return await in_gil_lane(build, request, endpoint)
    return build(request, endpoint)


async def parse_answer(parse: Callable[[Body], T], raw: Body) -> T:
    """A dialect's parse of an answer: in the GIL lane when the body is big (base64 images)."""
    if len(raw) > OFF_LOOP_BYTES:
        return await in_gil_lane(parse, raw)
    return parse(raw)


@contextlib.contextmanager
def tagged(endpoint: str) -> Iterator[None]:
    """Stamp the endpoint's name on any ProviderError leaving the block without one."""
    try:
        yield
    except ProviderError as exc:
        if not exc.endpoint:
            exc.endpoint = endpoint
        raise


@contextlib.contextmanager
def after_answer() -> Iterator[None]:
    """Mark any ProviderError leaving the block as raised after the upstream answered 2xx: the
    call may be billed, so the pool does not resend it (unless the endpoint says so)."""
    try:
        yield
    except ProviderError as exc:
        exc.answered = True
        raise


def _timeouts(total: float) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(total, CONNECT_TIMEOUT))


def transport_error(
    exc: BaseException, what: str, endpoint: str = "", secrets: Iterable[str] = ()
) -> ProviderError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):  # never sent: safe to resend
        detail = f"{what} timed out before the request was sent ({type(exc).__name__})"
        return ProviderError(ProviderErrorKind.CONNECTION, detail, endpoint=endpoint)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):  # maybe done (and billed)
        return ProviderError(ProviderErrorKind.TIMEOUT, f"{what} timed out", endpoint=endpoint)
    detail = clean_detail(f"{what} failed: {type(exc).__name__}: {exc}", secrets)
    return ProviderError(ProviderErrorKind.CONNECTION, detail, endpoint=endpoint)


async def _read_capped(resp: httpx.Response, max_bytes: int, what: str) -> Body:
    """The body, refused as soon as it passes `max_bytes`. One buffer, sized at once when the
    length is declared and else doubled as it fills: growing it chunk by chunk re-copied a
    22 MB answer dozens of times on the event loop, and a list of chunks joined at the end held
    it twice."""
    declared = resp.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    if size is not None and size > max_bytes:
        raise bad_response(f"{what} too large ({declared} bytes > {max_bytes})")
    buf = _room(size if size is not None else FIRST_READ_BYTES)
    filled = 0
    async for chunk in resp.aiter_bytes():
        end = filled + len(chunk)
        if end > max_bytes:
            raise bad_response(f"{what} too large (> {max_bytes} bytes)")
        if end > len(buf):  # longer than declared, or no length: double the room
            buf = _grown(buf, filled, max(2 * len(buf), end))
        buf[filled:end] = chunk
        filled = end
    if isinstance(buf, bytearray):
        del buf[filled:]
        return buf
    return memoryview(buf)[:filled]


def _room(size: int) -> bytearray | mmap.mmap:
    """Room for a body. A big one gets pages of its own, touched only as its bytes arrive and
    given back whole when it is let go: a zeroed bytearray of 22 MB touches every page in one
    call on the event loop, and on fresh memory that is one long stall."""
    if size < MAPPED_BODY_BYTES:
        return bytearray(size)
    if hasattr(mmap, "MAP_PRIVATE"):  # private: a shared anonymous map cannot grow (SIGBUS)
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    return mmap.mmap(-1, size)


def _grown(buf: bytearray | mmap.mmap, filled: int, size: int) -> bytearray | mmap.mmap:
    if isinstance(buf, mmap.mmap):
        with contextlib.suppress(OSError, SystemError):  # no mremap (macOS): copied below
            buf.resize(size)
            return buf
    bigger = _room(size)
    bigger[:filled] = memoryview(buf)[:filled]
    return bigger


_answer_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def answer_lane() -> asyncio.Semaphore:
    """The running loop's lane for big answers (one per loop: a semaphore serves one loop)."""
    loop = asyncio.get_running_loop()
    lane = _answer_lanes.get(loop)
    if lane is None:
        lane = _answer_lanes[loop] = asyncio.Semaphore(ANSWER_LANE_WIDTH)
    return lane


def _is_small(resp: httpx.Response) -> bool:
    declared = resp.headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= SMALL_ANSWER_BYTES


@contextlib.asynccontextmanager
async def _turn_for(resp: httpx.Response) -> AsyncIterator[None]:
    """Hold a place in the answer lane while a big answer is read and decoded."""
    if _is_small(resp):
        yield
        return
    async with answer_lane():
        yield


async def _read_head(resp: httpx.Response, limit: int = ERROR_BODY_BYTES) -> bytes:
    chunks, size = [], 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


async def post_and_read(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    url: str,
    body: Any,
    read: Callable[[Body], Awaitable[T]],
    *,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> T:
    """POST `body` as JSON with the endpoint's auth; what `read` makes of the 2xx answer's
    bytes, else ProviderError.

    `read` (the parse) runs while a big answer holds its place in the answer lane, and the
    bytes are let go when it returns: what it makes should hold no more than the answer's
    images. `endpoint.timeout` bounds the whole call (upload, generation, download of the
    answer), not the parse."""
    content = await encode_json(body)
    log.debug("POST %s to %s (%d bytes)", urlsplit(url).path, endpoint.name, len(content))
    return await _call(http, endpoint, "POST", url, content, max_bytes, read)


async def get_and_read(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    url: str,
    read: Callable[[Body], Awaitable[T]],
    *,
    max_bytes: int = 5_000_000,
    timeout: float | None = None,  # noqa: ASYNC109 - total budget, default endpoint.timeout
) -> T:
    """GET with the endpoint's auth (task polling); what `read` makes of the 2xx answer's
    bytes (as in post_and_read), else ProviderError."""
    return await _call(http, endpoint, "GET", url, None, max_bytes, read, timeout)


async def _call(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    method: str,
    url: str,
    content: bytes | None,
    max_bytes: int,
    read: Callable[[Body], Awaitable[T]],
    total: float | None = None,
) -> T:
    headers = endpoint.auth_headers()
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    secrets = (endpoint.api_key,)
    total = endpoint.timeout if total is None else total
    answered = False
    async with contextlib.AsyncExitStack() as turn:
        try:
            async with (
                asyncio.timeout(total),
                http.stream(
                    method,
                    url,
                    content=content,
                    headers=headers,
                    params=endpoint.auth_params(),
                    timeout=_timeouts(total),
                ) as resp,
            ):
                if not resp.is_success:
                    head = await _read_head(resp)
                    raise error_from_http(
                        resp.status_code, head, resp.headers, endpoint.name, secrets=secrets
                    )
                answered = content is not None  # a generation's 2xx: maybe billed from here
                await turn.enter_async_context(_turn_for(resp))
                raw = await _read_capped(resp, max_bytes, "answer")
        except ProviderError as exc:
            exc.answered = exc.answered or answered
            raise
        except (httpx.HTTPError, TimeoutError) as exc:
            where = f"{method} {'to' if content is not None else 'from'} {endpoint.name}"
            error = transport_error(exc, where, endpoint.name, secrets)
            error.answered = answered
            raise error from None
        if not answered:
            return await read(raw)
        with after_answer():
            return await read(raw)


async def post_and_stream(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    url: str,
    body: Any,
    on_event: Callable[[bytearray], Awaitable[None]],
    finish: Callable[[], Awaitable[T]],
    *,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> T:
    """POST `body` as JSON and read the 2xx answer as server-sent events: `on_event` gets the
    data of each event as it completes, then `finish` makes the result; else ProviderError.

    An error status is read and mapped as post_and_read maps it. A stream takes its place in
    the answer lane only once an event grows big (an image), so the minutes a model thinks
    and streams its thoughts hold no place; from then on the place is kept until `finish`
    returns. `endpoint.timeout` bounds the call and the events, not `finish`."""
    content = await encode_json(body)
    log.debug("POST %s to %s (%d bytes, streamed)", urlsplit(url).path, endpoint.name, len(content))
    headers = {**endpoint.auth_headers(), "Content-Type": "application/json"}
    secrets = (endpoint.api_key,)
    # httpx's `params` replace a URL's query: the URL's own (alt=sse) go beside the key.
    path, _, query = url.partition("?")
    params = {**dict(parse_qsl(query)), **endpoint.auth_params()}
    answered = False
    async with contextlib.AsyncExitStack() as turn:
        try:
            async with (
                asyncio.timeout(endpoint.timeout),
                http.stream(
                    "POST",
                    path,
                    content=content,
                    headers=headers,
                    params=params,
                    timeout=_timeouts(endpoint.timeout),
                ) as resp,
            ):
                if not resp.is_success:
                    head = await _read_head(resp)
                    raise error_from_http(
                        resp.status_code, head, resp.headers, endpoint.name, secrets=secrets
                    )
                answered = True  # a 2xx: the call may be billed from here, as in _call
                await _read_events(resp, on_event, turn, max_bytes)
        except ProviderError as exc:
            exc.answered = exc.answered or answered
            raise
        except (httpx.HTTPError, TimeoutError) as exc:
            error = transport_error(exc, f"POST to {endpoint.name}", endpoint.name, secrets)
            error.answered = answered
            raise error from None
        with after_answer():
            return await finish()


async def _read_events(
    resp: httpx.Response,
    on_event: Callable[[bytearray], Awaitable[None]],
    turn: contextlib.AsyncExitStack,
    max_bytes: int,
) -> None:
    """Each event's data to `on_event`, in order; the stream refused past `max_bytes` in all."""
    framer, total, in_lane = SseFramer(), 0, False
    async for chunk in resp.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise bad_response(f"answer too large (> {max_bytes} bytes)")
        events = framer.feed(chunk)
        if not in_lane and (framer.pending > SMALL_ANSWER_BYTES or _any_big(events)):
            await turn.enter_async_context(answer_lane())
            in_lane = True
        for data in events:
            await on_event(data)
    last = framer.close()
    if last is not None:
        await on_event(last)


def _any_big(events: list[bytearray]) -> bool:
    return any(len(data) > SMALL_ANSWER_BYTES for data in events)


async def download_image(
    http: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - total budget, applied with asyncio.timeout
    policy: UrlPolicy | None = None,
) -> GeneratedImage:
    """Fetch an image link from an answer (no auth sent), capped in bytes and total time.

    Every hop (the link, then each redirect) is checked by `policy` (default: public addresses
    only) and connected to the address that was checked; redirects are followed here, at most
    MAX_REDIRECTS of them."""
    policy = policy or UrlPolicy()
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise bad_response(f"image link is not a URL: {exc}") from None
    where = current.host or "?"
    try:
        async with asyncio.timeout(timeout):
            for _hop in range(MAX_REDIRECTS + 1):
                where = current.host or "?"
                resp = await _open(http, await policy.pin(current), timeout)
                try:
                    location = resp.headers.get("location")
                    if resp.is_redirect and location:
                        current = _redirect_target(current, location)
                        continue
                    if resp.status_code in _EXPIRED_STATUSES:
                        raise bad_response(
                            f"image link expired (HTTP {resp.status_code} from {where})"
                        )
                    if not resp.is_success:
                        raise bad_response(
                            f"image download failed (HTTP {resp.status_code} from {where})"
                        )
                    data = bytes(await _read_capped(resp, max_bytes, "image"))
                    content_type = resp.headers.get("content-type")
                finally:
                    await resp.aclose()
                return GeneratedImage(data=data, mime=checked_mime(data, content_type))
    except (httpx.HTTPError, TimeoutError) as exc:
        raise transport_error(exc, f"image download from {where}") from None
    raise bad_response(f"image link redirected more than {MAX_REDIRECTS} times")


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return current.join(location)
    except httpx.InvalidURL as exc:
        raise bad_response(f"image link redirects to something that is no URL: {exc}") from None


async def _open(
    http: httpx.AsyncClient,
    pins: list[Pinned],
    timeout: float,  # noqa: ASYNC109
) -> httpx.Response:
    """The response headers of a GET to the first pinned address that accepts a connection."""
    for i, pin in enumerate(pins):
        request = http.build_request(
            "GET",
            pin.url,
            headers=pin.headers,
            extensions=pin.extensions,
            timeout=_timeouts(timeout),
        )
        try:
            return await http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError:
            if i == len(pins) - 1:
                raise
            log.info("image host address %s refused the connection, trying the next", pin.url.host)
    raise AssertionError("no address to connect to")


async def resolve_images(
    http: httpx.AsyncClient,
    refs: list[ImageRef],
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - total budget per download, applied with asyncio.timeout
    policy: UrlPolicy | None = None,
) -> list[GeneratedImage]:
    """Bytes for every ref: inline data checked by magic bytes, links downloaded at once (only
    where `policy` lets them lead: see bot.providers.urlguard)."""
    images = []
    for ref in refs:
        if ref.data is not None:
            if len(ref.data) > max_bytes:
                raise bad_response(f"image too large ({len(ref.data)} bytes > {max_bytes})")
            images.append(GeneratedImage(data=ref.data, mime=checked_mime(ref.data, ref.mime)))
        elif ref.url:
            images.append(await _download_paid(http, ref.url, max_bytes, timeout, policy))
        else:
            raise bad_response("empty image reference in answer")
    return images


async def _download_paid(
    http: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109
    policy: UrlPolicy | None,
) -> GeneratedImage:
    """Download an image the upstream already made (and billed). Fetching again is free, so a
    transient failure is tried again; if it persists, resending the request would pay twice,
    so the failure is reported as TIMEOUT ("maybe charged"), which the pool caps."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            return await download_image(
                http, url, max_bytes=max_bytes, timeout=timeout, policy=policy
            )
        except ProviderError as exc:
            if not exc.transient:
                raise
            if attempt == DOWNLOAD_ATTEMPTS:
                raise ProviderError(
                    ProviderErrorKind.TIMEOUT, f"{exc.detail} (image already made)"
                ) from exc
            log.info("image download failed (%s), trying again", exc.kind.value)
            await asyncio.sleep(DOWNLOAD_RETRY_PAUSE)
    raise AssertionError("unreachable")


class EndpointClient:
    """What each dialect's provider holds: its endpoint, the shared client (used, never created
    or closed) and where the image links of its answers may lead."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: httpx.AsyncClient,
        *,
        max_download_bytes: int = 50_000_000,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._http = http
        self._max_download_bytes = max_download_bytes
        # image links may lead to public hosts, the operator's allowed ones and this endpoint
        self._url_policy = (url_policy or UrlPolicy()).with_origin(endpoint.base_url)

    async def _images(self, refs: list[ImageRef]) -> list[GeneratedImage]:
        """The bytes of an answer's images, its links downloaded at once (relay links expire)."""
        return await resolve_images(
            self._http,
            refs,
            max_bytes=self._max_download_bytes,
            timeout=self.endpoint.timeout,
            policy=self._url_policy,
        )

    async def _post_and_parse(
        self,
        request: ImageRequest,
        url: str,
        build: Callable[[ImageRequest, Endpoint], Any],
        parse: Callable[[Body], ParsedAnswer],
    ) -> ImageResult:
        """One call of a dialect that answers at once: the body built and the answer parsed in
        the GIL lane (both CPU-heavy with big images), then the answer's links downloaded."""
        with tagged(self.endpoint.name):
            body = await build_body(build, request, self.endpoint)
            parsed = await post_and_read(
                self._http, self.endpoint, url, body, partial(parse_answer, parse)
            )
            with after_answer():
                images = await self._images(parsed.images)
        return self._result(request, parsed, images)

    def _result(
        self, request: ImageRequest, parsed: ParsedAnswer, images: list[GeneratedImage]
    ) -> ImageResult:
        return ImageResult(
            images=images,
            text=parsed.text,
            model_turn=parsed.model_turn,
            usage=parsed.usage,
            endpoint=self.endpoint.name,
            model=request.model,
            sources=parsed.sources,
        )
