"""bot.telegram.transport.AiohttpRequest against small servers on 127.0.0.1.

The raw `do_request` contract first (what reaches the server, (status, body) back, errors
mapped to PTB's), then through PTB: its `post`/`retrieve` wrappers and a real `Bot` talking
to the fake Bot API, so uploads and downloads are checked end to end.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import json
import socket
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram import transport
from bot.telegram.transport import AiohttpRequest
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


# --- a small server -----------------------------------------------------------------------


class Server:
    """Routes: /echo (what arrived), /status/{code} (that status, a Bot API error body),
    /slow (answers after half a second), /stall (headers, then a body that never ends)."""

    def __init__(self) -> None:
        self.root = ""
        self.seen: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/slow", self._slow)
        app.router.add_route("*", "/stall", self._stall)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.root = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.root

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _echo(self, request: web.Request) -> web.Response:
        seen: dict[str, Any] = {
            "method": request.method,
            "content_type": request.content_type,
            "user_agent": request.headers.get("User-Agent"),
            "fields": {},
            "files": {},
        }
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.filename:  # type: ignore[union-attr]
                    seen["files"][part.name] = {  # type: ignore[union-attr]
                        "filename": part.filename,  # type: ignore[union-attr]
                        "content_type": part.headers.get("Content-Type"),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                    }
                else:
                    seen["fields"][part.name] = data.decode()  # type: ignore[union-attr]
        elif request.can_read_body:
            seen["fields"] = dict(await request.post())
        self.seen.append(seen)
        return web.json_response({"ok": True, "result": seen})

    async def _status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": f"error {code}"}
        if code == 429:
            body["parameters"] = {"retry_after": 7}
        return web.json_response(body, status=code)

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"ok": True, "result": "late"})

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"ok": true, "result": ')
        await asyncio.sleep(1.0)
        return response


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    r = AiohttpRequest()
    await r.initialize()
    yield r
    await r.shutdown()


async def post_once(url: str, **settings: float | None) -> tuple[int, bytes]:
    """One call through a fresh AiohttpRequest (after the test set its environment)."""
    r = AiohttpRequest(**settings)  # type: ignore[arg-type]
    await r.initialize()
    try:
        return await r.do_request(url, "POST", params(a=1))
    finally:
        await r.shutdown()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    transport._proxy_for.cache_clear()
    yield
    transport._proxy_for.cache_clear()


def params(**values: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- do_request -----------------------------------------------------------------------------


async def test_parameters_are_posted_as_a_form(server: Server, request_: AiohttpRequest) -> None:
    data = params(chat_id=42, text="héllo & bye", reply_markup={"inline_keyboard": []})
    status, body = await request_.do_request(f"{server.root}/echo", "POST", data)
    assert status == 200
    seen = json.loads(body)["result"]
    assert seen["method"] == "POST"
    assert seen["content_type"] == "application/x-www-form-urlencoded"
    assert seen["fields"] == {
        "chat_id": "42",
        "text": "héllo & bye",
        "reply_markup": '{"inline_keyboard": []}',
    }
    assert seen["user_agent"] == AiohttpRequest.USER_AGENT


async def test_a_call_without_parameters(server: Server, request_: AiohttpRequest) -> None:
    status, body = await request_.do_request(f"{server.root}/echo", "POST", RequestData())
    assert status == 200
    assert json.loads(body)["result"]["fields"] == {}
    status, body = await request_.do_request(f"{server.root}/echo", "GET")
    assert (status, json.loads(body)["result"]["method"]) == (200, "GET")


# aiohttp warns (ResourceWarning) about bytes bodies over 1 MiB; the transport hands it bytes
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_files_reach_the_server_intact(server: Server, request_: AiohttpRequest) -> None:
    photo = bytes(range(256)) * 4096 + b"\r\n--boundary-lookalike--\r\n"  # ~1 MB, any bytes
    doc = b"\x00\xff" * 1000
    data = params(
        chat_id=-100,
        caption="a caption",
        photo=InputFile(photo, filename="a.png"),
        document=InputFile(doc, filename="b.bin"),
    )
    assert data.contains_files
    status, body = await request_.do_request(f"{server.root}/echo", "POST", data)
    assert status == 200
    seen = json.loads(body)["result"]
    assert seen["content_type"] == "multipart/form-data"
    assert seen["fields"]["chat_id"] == "-100"
    assert seen["fields"]["caption"] == "a caption"
    files = {f["filename"]: f for f in seen["files"].values()}
    assert files["a.png"]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert files["a.png"]["size"] == len(photo)
    assert files["a.png"]["content_type"] == "image/png"
    assert files["b.bin"]["sha256"] == hashlib.sha256(doc).hexdigest()


async def test_a_big_file_arrives_intact_and_goes_out_in_slices(
    server: Server, request_: AiohttpRequest
) -> None:
    # a 4K original's size, not a multiple of the slice: the last slice is short
    original = hashlib.sha256(b"4k").digest() * (16_500_007 // 32) + b"tail"
    data = params(chat_id=7, document=InputFile(original, filename="image.png"))
    status, body = await request_.do_request(f"{server.root}/echo", "POST", data)
    assert status == 200
    (seen,) = json.loads(body)["result"]["files"].values()
    assert seen["filename"] == "image.png"
    assert seen["content_type"] == "image/png"
    assert seen["size"] == len(original)
    assert seen["sha256"] == hashlib.sha256(original).hexdigest()

    class Writer:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        async def write(self, chunk: memoryview) -> None:
            self.sizes.append(len(chunk))

    writer = Writer()
    payload = transport._sliced(original, "image/png")
    await payload.write(writer)  # type: ignore[arg-type]
    assert sum(writer.sizes) == len(original)
    assert max(writer.sizes) <= transport._UPLOAD_SLICE
    assert transport._sliced(b"small", "image/png") == b"small"  # small files as they are


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 429, 500, 502])
async def test_error_statuses_come_back_as_status_and_body(
    server: Server, request_: AiohttpRequest, code: int
) -> None:
    status, body = await request_.do_request(f"{server.root}/status/{code}", "POST", params(a=1))
    assert status == code
    assert json.loads(body)["description"] == f"error {code}"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, BadRequest),
        (401, InvalidToken),
        (403, Forbidden),
        (404, InvalidToken),
        (429, RetryAfter),
        (502, NetworkError),
    ],
)
async def test_ptb_turns_error_statuses_into_its_errors(
    server: Server, request_: AiohttpRequest, code: int, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await request_.post(f"{server.root}/status/{code}", params(a=1))
    if code == 429:
        assert caught.value._retry_after.total_seconds() == 7  # type: ignore[attr-defined]


async def test_a_slow_answer_times_out(server: Server) -> None:
    r = AiohttpRequest(read_timeout=0.1, write_timeout=0.1, connect_timeout=0.1)
    await r.initialize()
    try:
        with pytest.raises(TimedOut):
            await r.do_request(f"{server.root}/slow", "POST", params(a=1))
        with pytest.raises(TimedOut):  # PTB's wrapper keeps it a TimedOut
            await r.post(f"{server.root}/slow", params(a=1))
    finally:
        await r.shutdown()


async def test_a_stalled_body_times_out(server: Server) -> None:
    r = AiohttpRequest(read_timeout=0.1)
    await r.initialize()
    try:
        with pytest.raises(TimedOut):
            await r.do_request(f"{server.root}/stall", "POST", params(a=1))
    finally:
        await r.shutdown()


async def test_a_timeout_given_per_call_wins(server: Server, request_: AiohttpRequest) -> None:
    assert request_.read_timeout == 5.0
    with pytest.raises(TimedOut):
        await request_.do_request(f"{server.root}/slow", "POST", params(a=1), read_timeout=0.1)


async def test_no_timeout_at_all(server: Server) -> None:
    status, body = await post_once(
        f"{server.root}/slow", read_timeout=None, write_timeout=None, connect_timeout=None
    )
    assert (status, json.loads(body)["result"]) == (200, "late")


async def test_connection_refused_is_a_network_error(request_: AiohttpRequest) -> None:
    url = f"http://127.0.0.1:{free_port()}/bot123:abc/getMe"
    with pytest.raises(NetworkError) as caught:
        await request_.do_request(url, "POST", params(a=1))
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp." in str(caught.value)
    with pytest.raises(NetworkError):
        await request_.post(url, params(a=1))


async def test_calls_need_initialize(server: Server) -> None:
    r = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await r.do_request(f"{server.root}/echo", "POST", params(a=1))
    with pytest.raises(NetworkError):  # what PTB makes of it
        await r.post(f"{server.root}/echo", params(a=1))
    await r.initialize()
    await r.initialize()  # twice is harmless
    assert (await r.do_request(f"{server.root}/echo", "POST", params(a=1)))[0] == 200
    await r.shutdown()
    await r.shutdown()  # so is shutting down twice
    with pytest.raises(RuntimeError, match="not initialized"):
        await r.do_request(f"{server.root}/echo", "POST", params(a=1))
    await r.initialize()  # and starting again
    assert (await r.do_request(f"{server.root}/echo", "POST", params(a=1)))[0] == 200
    await r.shutdown()


async def test_shutdown_leaves_no_open_session(server: Server) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = AiohttpRequest()
        await r.initialize()
        await r.do_request(f"{server.root}/echo", "POST", params(a=1))
        await r.shutdown()
        del r
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_many_calls_at_once_share_the_pool(server: Server) -> None:
    r = AiohttpRequest(pool_size=4)
    await r.initialize()
    try:
        answers = await asyncio.gather(
            *(r.do_request(f"{server.root}/echo", "POST", params(i=i)) for i in range(40))
        )
    finally:
        await r.shutdown()
    assert sorted(int(json.loads(b)["result"]["fields"]["i"]) for _, b in answers) == list(
        range(40)
    )


# --- proxies from the environment -----------------------------------------------------------


class Proxy:
    """An HTTP proxy that answers every request itself and remembers its request line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.lines.append(head.split(b"\r\n", 1)[0].decode())
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        body = b'{"ok": true, "result": "via proxy"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    p = Proxy()
    await p.start()
    yield p
    await p.stop()


async def test_calls_go_through_the_proxy_from_the_environment(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    # the host need not resolve: only the proxy is connected to
    url = "http://api.telegram.invalid/bot123:abc/getMe"
    status, body = await post_once(url)
    assert (status, json.loads(body)["result"]) == (200, "via proxy")
    assert proxy.lines == [f"POST {url} HTTP/1.1"]


async def test_no_proxy_hosts_are_reached_directly(
    server: Server, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    status, _ = await post_once(f"{server.root}/echo")
    assert status == 200
    assert proxy.lines == []
    assert len(server.seen) == 1


async def test_a_proxy_for_another_scheme_is_not_used(
    server: Server, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    status, _ = await post_once(f"{server.root}/echo")
    assert status == 200
    assert proxy.lines == []


# --- through PTB's Bot, against the fake Bot API --------------------------------------------


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_bot_sends_and_downloads_a_photo(fake_telegram: FakeTelegram) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    photo = buf.getvalue()
    bot = Bot(
        fake_telegram.token,
        base_url=f"{fake_telegram.root}/bot",
        base_file_url=f"{fake_telegram.root}/file/bot",
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(),
    )
    async with bot:
        assert bot.username == fake_telegram.bot_username
        message = await bot.send_photo(5, photo, caption="hi")
        call = fake_telegram.calls_of("sendPhoto")[0]
        assert call.params["chat_id"] == 5 and call.params["caption"] == "hi"
        assert call.files["photo"] == photo
        file = await bot.get_file(message.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == fake_telegram.file_bytes(
            message.photo[-1].file_id
        )
        fake_telegram.fail_next(
            "sendMessage", error_code=400, description="Bad Request: nope", retry_after=None
        )
        with pytest.raises(BadRequest, match=r"(?i)nope"):
            await bot.send_message(5, "x")
        fake_telegram.fail_next("sendMessage", retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(5, "x")
