"""Big answers take turns (bot.providers.http's answer lane): a burst of answers never has more
than ANSWER_LANE_WIDTH of them read and decoded at once, small answers never wait, and a turn
is given back however the answer ends. Real httpx client against an aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bot.providers import http as provider_http
from bot.providers.base import Endpoint, ImagePart, ImageRequest, InputImage, TextPart, Turn
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.http import answer_lane, get_and_read, post_and_read

CHUNK = 64 * 1024
BIG = 16 * CHUNK  # well over SMALL_ANSWER_BYTES


class AnswerServer:
    """/big: BIG bytes with a Content-Length; /chunked: BIG bytes without one; /small: a few
    bytes; /huge: more than the callers' cap; /fail: a 503."""

    def __init__(self) -> None:
        self.root = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/big", self._big)
        app.router.add_route("*", "/chunked", self._chunked)
        app.router.add_route("*", "/small", self._small)
        app.router.add_route("*", "/fail", self._fail)
        app.router.add_route("*", "/odd", self._odd)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.root = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"b" * BIG)

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(BIG // CHUNK):
            await response.write(b"c" * CHUNK)
        await response.write_eof()
        return response

    async def _odd(self, request: web.Request) -> web.StreamResponse:
        """Chunked, of a length no doubling lands on: 3 x 100 kB + 17 bytes, each distinct."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(3):
            await response.write(bytes([65 + i]) * 100_000)
        await response.write(b"tail-of-the-body")
        await response.write(b"!")
        await response.write_eof()
        return response

    async def _small(self, request: web.Request) -> web.Response:
        return web.Response(body=b"{}")

    async def _fail(self, request: web.Request) -> web.Response:
        return web.Response(status=503, body=b'{"error": {"message": "busy"}}')


@pytest.fixture
async def server() -> AsyncIterator[AnswerServer]:
    srv = AnswerServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as http:
        yield http


def endpoint(root: str) -> Endpoint:
    return Endpoint(name="lane", dialect="openai-chat", base_url=root, api_key="sk-t", timeout=30)


class Reader:
    """A `read` for post_and_read that notes how many answers it handles at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.sizes: list[int] = []

    async def __call__(self, raw: bytearray) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)  # a decode that takes a while, so turns would overlap
            self.sizes.append(len(raw))
            return len(raw)
        finally:
            self.now -= 1


async def test_a_burst_of_big_answers_is_read_a_few_at_a_time(
    server: AnswerServer, client: httpx.AsyncClient
) -> None:
    reader = Reader()
    ep = endpoint(server.root)
    got = await asyncio.gather(
        *(post_and_read(client, ep, f"{server.root}/big", {"i": i}, reader) for i in range(12)),
        *(get_and_read(client, ep, f"{server.root}/chunked", reader) for _ in range(12)),
    )
    assert got == [BIG] * 24
    assert 1 < reader.most <= provider_http.ANSWER_LANE_WIDTH


async def test_small_answers_never_wait_for_the_lane(
    server: AnswerServer, client: httpx.AsyncClient
) -> None:
    ep = endpoint(server.root)
    lane = answer_lane()
    for _ in range(provider_http.ANSWER_LANE_WIDTH):
        await lane.acquire()  # every turn taken
    try:
        small = await asyncio.wait_for(
            post_and_read(client, ep, f"{server.root}/small", {}, Reader()), timeout=10
        )
        assert small == 2
        big = asyncio.ensure_future(post_and_read(client, ep, f"{server.root}/big", {}, Reader()))
        await asyncio.sleep(0.2)
        assert not big.done()  # its body waits, unread, for a turn
    finally:
        for _ in range(provider_http.ANSWER_LANE_WIDTH):
            lane.release()
    assert await big == BIG


async def test_turns_are_given_back_when_answers_fail(
    server: AnswerServer, client: httpx.AsyncClient
) -> None:
    ep = endpoint(server.root)

    async def refuse(raw: bytearray) -> None:
        raise ProviderError(ProviderErrorKind.BAD_RESPONSE, "unreadable")

    rounds = 2 * provider_http.ANSWER_LANE_WIDTH
    for _ in range(rounds):
        with pytest.raises(ProviderError) as too_big:
            await post_and_read(client, ep, f"{server.root}/chunked", {}, Reader(), max_bytes=1000)
        assert "too large" in too_big.value.detail
        with pytest.raises(ProviderError, match="unreadable"):
            await post_and_read(client, ep, f"{server.root}/big", {}, refuse)
        with pytest.raises(ProviderError) as busy:
            await post_and_read(client, ep, f"{server.root}/fail", {}, Reader())
        assert busy.value.kind is ProviderErrorKind.SERVER
    lane = answer_lane()
    assert not lane.locked()
    for _ in range(provider_http.ANSWER_LANE_WIDTH):  # every turn is free again
        await asyncio.wait_for(lane.acquire(), timeout=1)
    for _ in range(provider_http.ANSWER_LANE_WIDTH):
        lane.release()


async def test_each_event_loop_has_its_own_lane() -> None:
    first = answer_lane()
    assert answer_lane() is first
    other = await asyncio.to_thread(asyncio.run, _lane_of_a_new_loop())
    assert other is not first


async def _lane_of_a_new_loop() -> asyncio.Semaphore:
    return answer_lane()


async def test_small_bodies_are_built_and_parsed_at_once_big_ones_in_the_gil_lane() -> None:
    where: list[int] = []

    def build(request: ImageRequest, endpoint: Endpoint) -> bytes:
        where.append(threading.get_ident())
        return b"{}"

    def parse(raw: bytes | bytearray) -> int:
        where.append(threading.get_ident())
        return len(raw)

    ep = Endpoint(name="e", dialect="openai-chat", base_url="http://x", api_key="k")
    here = threading.get_ident()
    text_only = ImageRequest(prompt="p", model="m")
    big_inline = ImageRequest(prompt="p", model="m", images=[InputImage(b"x" * BIG, "image/png")])
    big_history = ImageRequest(
        prompt="p",
        model="m",
        history=[Turn("user", [TextPart("t"), ImagePart("image/png", data=b"x" * BIG)])],
    )
    for request in (text_only, big_inline, big_history):
        await provider_http.build_body(build, request, ep)
    await provider_http.parse_answer(parse, b"{}")
    await provider_http.parse_answer(parse, b"x" * BIG)
    assert [w == here for w in where] == [True, False, False, True, False]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/big", b"b" * BIG),
        ("/chunked", b"c" * BIG),
        ("/odd", b"A" * 100_000 + b"B" * 100_000 + b"C" * 100_000 + b"tail-of-the-body!"),
        ("/small", b"{}"),
    ],
)
async def test_a_body_is_read_whole_and_exact_with_or_without_its_length(
    server: AnswerServer, client: httpx.AsyncClient, path: str, expected: bytes
) -> None:
    async def keep(raw: bytearray) -> bytes:
        return bytes(raw)

    ep = endpoint(server.root)
    got = await get_and_read(client, ep, server.root + path, keep, max_bytes=2 * BIG)
    assert got == expected
