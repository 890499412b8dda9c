"""The app's upstream client (make_http_client) against servers on 127.0.0.1 that behave, and
misbehave, as relays do: its errors must say whether a request left, its connections are
reused and freed, and the environment's proxies are honoured."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from bot.providers.base import Endpoint
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.factory import make_http_client
from bot.providers.http import post_and_read

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server speaking whatever `handler` writes; yields its http:// root."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


@contextlib.asynccontextmanager
async def web_server(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def endpoint(root: str, timeout: float = 5) -> Endpoint:
    return Endpoint(name="t", dialect="openai-chat", base_url=root, api_key="sk-x", timeout=timeout)


async def _identity(raw: bytearray) -> bytes:
    return bytes(raw)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(trust_env=False) as client:
        yield client


async def test_keep_alive_reuses_one_connection(http: httpx.AsyncClient) -> None:
    peers: list[int] = []

    async def answer(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"n": len(peers), "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/x", answer)
    async with web_server(app) as root:
        for i in range(3):
            resp = await http.post(f"{root}/x", content=f"body {i}".encode())
            assert resp.json() == {"n": i + 1, "body": f"body {i}"}
    assert len(set(peers)) == 1


async def test_a_refused_connection_is_a_connect_error(http: httpx.AsyncClient) -> None:
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_server_closing_without_an_answer_is_a_protocol_error(
    http: httpx.AsyncClient,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.close()

    async with raw_server(hang_up) as root:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{root}/x", content=b"{}")
        # through the provider path: a connection fault, not a timeout, and not "answered"
        with pytest.raises(ProviderError) as caught:
            await post_and_read(http, endpoint(root), f"{root}/x", {"a": 1}, _identity)
        assert caught.value.kind is ProviderErrorKind.CONNECTION
        assert not caught.value.answered
        assert "sk-x" not in str(caught.value)


async def test_a_body_cut_short_is_a_protocol_error(http: httpx.AsyncClient) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    async with raw_server(cut) as root:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{root}/x")
        with pytest.raises(ProviderError) as caught:
            await post_and_read(http, endpoint(root), f"{root}/x", {}, _identity)
        assert caught.value.kind is ProviderErrorKind.CONNECTION
        assert caught.value.answered  # the 2xx came: the job may have been billed


async def test_a_silent_server_is_a_read_timeout(http: httpx.AsyncClient) -> None:
    gone = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await gone.wait()
        writer.close()

    async with raw_server(silent) as root:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{root}/x", timeout=httpx.Timeout(0.3))
        with pytest.raises(ProviderError) as caught:
            await post_and_read(http, endpoint(root, timeout=0.3), f"{root}/x", {}, _identity)
        assert caught.value.kind is ProviderErrorKind.TIMEOUT  # maybe done upstream
        gone.set()


async def test_host_header_of_a_pinned_request_reaches_the_server(http: httpx.AsyncClient) -> None:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.Response(body=b"ok")

    app = web.Application()
    app.router.add_get("/img", answer)
    async with web_server(app) as root:
        resp = await http.get(f"{root}/img", headers={"Host": "images.example:8443"})
        assert resp.content == b"ok"
    assert seen == ["images.example:8443"]


async def test_streamed_uploads_and_compressed_answers(http: httpx.AsyncClient) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=gzip.compress(body[::-1]), headers={"Content-Encoding": "gzip"})

    async def parts() -> AsyncIterator[bytes]:
        for i in range(50):
            yield f"{i:04d}".encode() * 1000

    app = web.Application(client_max_size=10_000_000)
    app.router.add_post("/echo", answer)
    async with web_server(app) as root:
        resp = await http.post(f"{root}/echo", content=parts())
    expected = b"".join(f"{i:04d}".encode() * 1000 for i in range(50))[::-1]
    assert resp.content == expected


async def test_an_answer_left_half_read_frees_its_connection(http: httpx.AsyncClient) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"z" * 2_000_000)

    app = web.Application()
    app.router.add_get("/big", big)
    async with web_server(app) as root:
        for _ in range(5):  # each abandoned after the first chunk; a leak would hang or fail
            async with http.stream("GET", f"{root}/big") as resp:
                async for _chunk in resp.aiter_bytes():
                    break
        resp2 = await http.get(f"{root}/big")
        assert len(resp2.content) == 2_000_000


async def test_environment_proxies_are_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))  # a proxy is asked with the absolute URL
        return web.Response(body=b"via proxy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with web_server(app) as root:
        monkeypatch.setenv("HTTP_PROXY", root)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with make_http_client() as client:
            resp = await client.get("http://relay.invalid/v1/models")
    assert resp.content == b"via proxy"
    assert seen == ["http://relay.invalid/v1/models"]
