"""The HTTP transport to the Bot API: PTB's request interface over aiohttp.

Every Bot API call of the bot goes through here (sends, edits, chat actions, file downloads;
getUpdates keeps PTB's own). PTB's default transport, httpx, costs several times more CPU per
call, and httpcore's pool does work proportional to its open connections on every request
start and end, so at hundreds of chats Telegram calls, not images, set the pace (measurements:
README, Performance). aiohttp's connector queues requests beyond its limit in O(1) and keeps
all its connections alive.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.metrics import METRICS

POOL_SIZE = 32  # at api.telegram.org latencies, many times what the flood limits let through
#: The most a file download may bring: the Bot API serves bots files up to 20 MB (getFile).
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_CHUNK = 64 * 1024
#: Files bigger than this are handed to the socket a slice at a time (see _SlicedBytes).
SLICED_UPLOAD_BYTES = 1024 * 1024
_UPLOAD_SLICE = 256 * 1024


class DownloadTooLargeError(TelegramError):
    """A file download brought more than the limit: stopped there, nothing kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file download exceeds {limit} bytes")
        self.limit = limit


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        pool_size: int = POOL_SIZE,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
        download_limit: int = DOWNLOAD_LIMIT,
    ) -> None:
        self._pool_size = pool_size
        self._download_limit = download_limit
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # Proxies from the environment (HTTPS_PROXY, NO_PROXY), as httpx honoured them;
            # resolved once per host here: aiohttp's trust_env re-reads them (and ~/.netrc) in
            # a thread on every request, which tripled the cost of a call.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size)
            )

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        # aiohttp has no write timeout: the whole call gets connect + write + read.
        total = None if None in (read, write, connect) else read + write + connect  # type: ignore[operator]
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
        body: Any = None
        if request_data is not None:
            params = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for name, value in params.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    value = _sliced(content, mimetype)
                    form.add_field(name, value, filename=filename, content_type=mimetype)
                body = form
            elif params:
                body = params
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                timeout=timeout,
                headers={"User-Agent": self.USER_AGENT},
                proxy=_proxy_for(*_origin(url)),
            ) as response:
                METRICS.bot_api_answered()
                if response.status == 429:
                    METRICS.telegram_rate_limited()
                if _is_file_download(url, method):
                    return response.status, await _read_capped(response, self._download_limit)
                return response.status, await response.read()
        except TimeoutError as exc:
            METRICS.bot_api_failed()
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            METRICS.bot_api_failed()
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


class _SlicedBytes(aiohttp.BytesPayload):
    """A big file written to the connection in slices, each awaited until the socket takes it.

    aiohttp writes a bytes body in one call, and the event loop's transport copies what the
    socket does not take at once (a 4K original is 16 MB) twice, into fresh memory: one long
    stall of the loop per upload. Slices of a memoryview copy nothing but the part waiting."""

    def __init__(self, value: bytes, content_type: str) -> None:
        super().__init__(value, content_type=content_type)
        self._view = memoryview(value)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = self._view
        end = len(view) if content_length is None else min(content_length, len(view))
        for start in range(0, end, _UPLOAD_SLICE):
            await writer.write(view[start : min(start + _UPLOAD_SLICE, end)])


def _sliced(content: Any, mimetype: str) -> Any:
    """A big file's bytes as a _SlicedBytes payload (a payload keeps its own content type:
    the form's is not applied to it); anything else as it is."""
    if isinstance(content, bytes) and len(content) > SLICED_UPLOAD_BYTES:
        return _SlicedBytes(content, mimetype)
    return content


def _is_file_download(url: str, method: str) -> bool:
    """A file's bytes (``{root}/file/bot<token>/<path>``), not a Bot API method call."""
    return method == "GET" and "/file/bot" in urlsplit(url).path


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read as it streams in and abandoned past ``limit``: the size getFile
    declared is the server's word, and a lying or broken one must not fill memory."""
    if response.content_length is not None and response.content_length > limit:
        raise DownloadTooLargeError(limit)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise DownloadTooLargeError(limit)
    return bytes(body)


# PTB's "not given" marker, from its public BaseRequest; its class marks every such default.
_NOT_GIVEN_TYPE = type(BaseRequest.DEFAULT_NONE)


def _given(value: Any, default: float | None) -> float | None:
    return default if isinstance(value, _NOT_GIVEN_TYPE) else value


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or ""


@lru_cache(maxsize=64)
def _proxy_for(scheme: str, host: str) -> str | None:
    if not host or proxy_bypass(host):
        return None
    return getproxies().get(scheme)
