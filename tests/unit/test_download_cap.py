"""File downloads through AiohttpRequest stop at the cap, whatever the server says or sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.telegram.transport import AiohttpRequest, DownloadTooLargeError

CAP = 1024 * 1024
TOTAL = 8 * CAP
CHUNK = 64 * 1024


class FileServer:
    """/file/botT/chunked: TOTAL bytes with no Content-Length (sent as they are read);
    /file/botT/small: a body within the cap; /botT/getMe: a big body that is no file."""

    def __init__(self) -> None:
        self.root = ""
        self.sent = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/file/botT/chunked", self._chunked)
        app.router.add_get("/file/botT/small", self._small)
        app.router.add_get("/botT/getMe", self._big_api)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.root = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(TOTAL // CHUNK):
                await response.write(bytes(CHUNK))
                self.sent += CHUNK
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _small(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (CAP // 2))

    async def _big_api(self, request: web.Request) -> web.Response:
        return web.Response(body=b"y" * (2 * CAP))


@pytest.fixture
async def server() -> AsyncIterator[FileServer]:
    s = FileServer()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    r = AiohttpRequest(download_limit=CAP)
    await r.initialize()
    yield r
    await r.shutdown()


async def test_a_chunked_download_stops_reading_at_the_cap(
    server: FileServer, request_: AiohttpRequest
) -> None:
    with pytest.raises(DownloadTooLargeError):
        await request_.retrieve(f"{server.root}/file/botT/chunked")
    assert server.sent < TOTAL  # the rest was never asked for


async def test_a_download_within_the_cap_arrives_whole(
    server: FileServer, request_: AiohttpRequest
) -> None:
    assert await request_.retrieve(f"{server.root}/file/botT/small") == b"x" * (CAP // 2)


async def test_api_answers_are_not_file_downloads(
    server: FileServer, request_: AiohttpRequest
) -> None:
    status, body = await request_.do_request(f"{server.root}/botT/getMe", "GET")
    assert status == 200 and len(body) == 2 * CAP
