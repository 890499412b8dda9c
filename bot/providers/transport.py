"""httpx's transport interface over aiohttp, for the upstream calls sent directly.

The providers speak httpx (requests, streamed responses, its errors); only the connection
pool underneath changes. httpcore's pool checks every open connection for being alive at the
start and end of each request, which made a request's cost grow with the chats in flight; at
100 chats most of the upstream client's time went there (measurements: benchmarks/README.md).
aiohttp's connector learns of a closed connection when the socket says so and reuses or opens
one in O(1). A request the environment sends through a proxy (HTTP(S)_PROXY, ALL_PROXY,
NO_PROXY) goes through httpx's own transport for that proxy, as before; and everything above
the connection stays httpx's: redirects, auth, cookies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx

CHUNK_BYTES = 64 * 1024
KEEPALIVE_SECONDS = 5.0  # as httpx's default keep-alive expiry


@contextlib.contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    """aiohttp's errors as the httpx errors the providers tell apart: a request that never
    left (connect errors and timeouts) from one that may have reached the upstream."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # connecting, or waiting for a connection
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:  # a read that waited too long
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS handshake
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientResponseError as exc:  # a malformed answer (status line, headers)
        raise httpx.RemoteProtocolError(exc.message, request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:  # reset or broken mid-request: it may have been sent
        raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # back to the pool if read to its end, else closed


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, opened on the first request (in the loop that sends it).
    `trust_env`: proxies and certificates from the environment, as httpx reads them."""

    def __init__(self, *, trust_env: bool = True) -> None:
        self._trust_env = trust_env
        self._ssl = httpx.create_ssl_context(trust_env=trust_env)
        self._session: aiohttp.ClientSession | None = None
        self._proxied: dict[str, httpx.AsyncHTTPTransport] = {}

    def _through_proxy(self, url: httpx.URL) -> httpx.AsyncHTTPTransport | None:
        proxy = _proxy_for(url.scheme, url.host) if self._trust_env else None
        if proxy is None:
            return None
        if proxy not in self._proxied:
            self._proxied[proxy] = httpx.AsyncHTTPTransport(proxy=proxy, verify=self._ssl)
        return self._proxied[proxy]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0,  # the scheduler and each endpoint's adaptive limit bound the calls
                    ssl=self._ssl,
                    keepalive_timeout=KEEPALIVE_SECONDS,
                ),
                auto_decompress=False,  # httpx decodes the body by its Content-Encoding
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxied = self._through_proxy(request.url)
        if proxied is not None:
            return await proxied.handle_async_request(request)
        timeout = request.extensions.get("timeout", {})
        try:
            body: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:
            body = request.stream  # type: ignore[assignment]
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        with _as_httpx(request):
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()}
            if response.reason
            else {"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        for proxied in self._proxied.values():
            await proxied.aclose()
        self._proxied.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _proxy_for(scheme: str, host: str) -> str | None:
    """The environment's proxy for this scheme and host, if any."""
    if not host or proxy_bypass(host):
        return None
    proxies = getproxies()
    return proxies.get(scheme) or proxies.get("all")
