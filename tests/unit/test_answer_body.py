"""How an answer's bytes are held while read (bot.providers.http): a big body in memory mapped
for it, exact to the byte with or without a Content-Length, and every dialect's parse (errors
sent with 200 and bodies that are not JSON included) reads such a view as it reads bytes.
Real httpx client against an aiohttp server on 127.0.0.1."""

from __future__ import annotations

import json
import mmap
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bot.providers import gemini, openai_chat, openai_images
from bot.providers import http as provider_http
from bot.providers.base import Endpoint
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.http import MAPPED_BODY_BYTES, post_and_read

MB = 1 << 20
PAD = "p" * (2 * MB)  # makes a JSON answer big enough to be mapped


def pattern(size: int) -> bytes:
    """Bytes where a chunk landing in the wrong place shows (no run repeats within 251)."""
    return bytes(i % 251 for i in range(size))


BODIES = {
    "/declared": pattern(3 * MB + 17),
    "/small": pattern(5000),
    "/rate-limited": json.dumps({"error": {"code": 429, "message": "slow down"}, "pad": PAD}),
    "/html": "<html><title>Bad gateway</title>" + PAD + "</html>",
    "/gemini-blocked": json.dumps({"promptFeedback": {"blockReason": "SAFETY"}, "pad": PAD}),
    "/task-error": json.dumps({"error": {"code": 503, "message": "overloaded"}, "pad": PAD}),
}


async def _declared(request: web.Request) -> web.Response:
    body = BODIES[request.path]
    return web.Response(body=body.encode() if isinstance(body, str) else body)


async def _chunked(request: web.Request) -> web.StreamResponse:
    """3 MB + 17 without a length, in uneven chunks: the room doubles past the mapped size."""
    body = pattern(3 * MB + 17)
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(body), 100_003):
        await response.write(body[start : start + 100_003])
    await response.write_eof()
    return response


@pytest.fixture
async def root() -> AsyncIterator[str]:
    app = web.Application()
    for path in BODIES:
        app.router.add_post(path, _declared)
    app.router.add_post("/chunked", _chunked)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def endpoint(root: str) -> Endpoint:
    return Endpoint(name="body", dialect="openai-chat", base_url=root, api_key="sk-t", timeout=30)


async def _read(client: httpx.AsyncClient, root: str, path: str) -> tuple[type, bytes]:
    async def keep(raw: provider_http.Body) -> tuple[type, bytes]:
        return type(raw), bytes(raw)

    return await post_and_read(client, endpoint(root), f"{root}{path}", {}, keep)


@pytest.mark.parametrize("path", ["/declared", "/chunked"])
async def test_a_big_body_is_read_into_mapped_memory_exactly(
    root: str, client: httpx.AsyncClient, path: str
) -> None:
    kind, data = await _read(client, root, path)
    assert kind is memoryview
    assert data == pattern(3 * MB + 17)


async def test_a_small_body_stays_a_bytearray(root: str, client: httpx.AsyncClient) -> None:
    assert await _read(client, root, "/small") == (bytearray, BODIES["/small"])


def test_room_that_cannot_be_resized_in_place_is_copied_into_a_bigger_one() -> None:
    class Fixed(mmap.mmap):  # as on a system without mremap
        def resize(self, newsize: int) -> None:
            raise SystemError("mmap: resizing not available")

    small = bytearray(b"abc") + bytearray(10)
    grown = provider_http._grown(small, 3, MAPPED_BODY_BYTES)  # crosses into mapped memory
    assert isinstance(grown, mmap.mmap) and len(grown) == MAPPED_BODY_BYTES
    assert grown[:3] == b"abc"
    fixed = Fixed(-1, MAPPED_BODY_BYTES)
    fixed[:4] = b"wxyz"
    bigger = provider_http._grown(fixed, 4, 2 * MAPPED_BODY_BYTES)
    assert bigger is not fixed and len(bigger) == 2 * MAPPED_BODY_BYTES
    assert bigger[:4] == b"wxyz"


async def _parse(client: httpx.AsyncClient, root: str, path: str, parse: object) -> None:
    async def read(raw: provider_http.Body) -> object:
        assert isinstance(raw, memoryview)
        return parse(raw)  # type: ignore[operator]

    await post_and_read(client, endpoint(root), f"{root}{path}", {}, read)


@pytest.mark.parametrize(
    "parse", [openai_chat.parse_response, openai_images.parse_response, gemini.parse_response]
)
async def test_an_error_sent_with_200_in_a_big_body_is_classified(
    root: str, client: httpx.AsyncClient, parse: object
) -> None:
    with pytest.raises(ProviderError) as info:
        await _parse(client, root, "/rate-limited", parse)
    assert info.value.kind is ProviderErrorKind.RATE_LIMITED


@pytest.mark.parametrize(
    "parse", [openai_chat.parse_response, openai_images.parse_response, gemini.parse_response]
)
async def test_a_big_body_that_is_not_json_is_a_bad_response(
    root: str, client: httpx.AsyncClient, parse: object
) -> None:
    with pytest.raises(ProviderError) as info:
        await _parse(client, root, "/html", parse)
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert "not JSON" in info.value.detail


async def test_a_blocked_prompt_in_a_big_gemini_body_is_a_refusal(
    root: str, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as info:
        await _parse(client, root, "/gemini-blocked", gemini.parse_response)
    assert info.value.kind is ProviderErrorKind.BLOCKED


async def test_a_failed_task_in_a_big_body_is_classified(
    root: str, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as info:
        await _parse(client, root, "/task-error", openai_images.parse_task)
    assert info.value.kind is ProviderErrorKind.SERVER
