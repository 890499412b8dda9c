"""A fake HTTP load balancer on 127.0.0.1: Caddy's ``reverse_proxy`` with ``lb_policy round_robin``.

Tests that run two bot processes in webhook mode put it in front of them, as production puts Caddy
in front of the replicas, and give the fake Telegram its URL as the one public webhook::

    async with FakeBalancer([bot_a_url, bot_b_url]) as balancer:
        await bot.set_webhook(f"{balancer.url}/webhook")

Each request (any method and path, query string kept) goes to the next backend in turn with its
method, body and headers, and the backend's status, body and headers come back. Hop-by-hop
headers are dropped both ways, and so is Host (the backend sees its own address; Caddy would pass
the client's on); X-Forwarded-For, -Proto and -Host are set as Caddy sets them. A backend that
refuses the connection or fails at the transport level is marked down for ``retry_down_after``
seconds and the request is tried on the next one, as Caddy's passive health checks with retries
do (a request the backend may have half-handled is tried again too); when no backend answers,
the client gets 502 ``bad gateway``. ``forwarded`` and ``failed`` count per backend.
"""

from __future__ import annotations

import time
from collections import Counter

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

__all__ = ["FakeBalancer"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Headers aiohttp's client would add by itself: a proxy sends only what the client sent.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def _pass_on(headers: CIMultiDictProxy[str], drop: frozenset[str]) -> CIMultiDict[str]:
    """``headers`` without ``drop`` and without those the Connection header names."""
    named = {n.strip().lower() for v in headers.getall("Connection", []) for n in v.split(",")}
    return CIMultiDict(
        (k, v) for k, v in headers.items() if k.lower() not in drop and k.lower() not in named
    )


class FakeBalancer:
    def __init__(self, backends: list[str], retry_down_after: float = 1.0) -> None:
        self.backends = list(backends)
        self.retry_down_after = retry_down_after
        self.forwarded: Counter[str] = Counter()  # backend -> requests it answered
        self.failed: Counter[str] = Counter()  # backend -> transport failures
        self._down_until: dict[str, float] = {}  # backend -> time.monotonic() it may be tried
        self._turn = 0
        self._url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the balancer is not started")
        return self._url

    def set_backends(self, backends: list[str]) -> None:
        self.backends = list(backends)

    async def start(self) -> str:
        self._http = aiohttp.ClientSession(
            # a fresh connection per request: no stale keep-alive socket to a restarted backend
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=30, connect=1),
            auto_decompress=False,  # the body goes on as the backend encoded it
        )
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> FakeBalancer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _order(self) -> list[str]:
        """The backends up now, starting with the next one in turn."""
        now, n, first = time.monotonic(), len(self.backends), self._turn
        self._turn += 1
        order = [self.backends[(first + i) % n] for i in range(n)]
        return [b for b in order if self._down_until.get(b, 0.0) <= now]

    async def _proxy(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = _pass_on(request.headers, HOP_BY_HOP | {"host", "content-length"})
        headers["X-Forwarded-For"] = request.remote or ""  # Caddy trusts no proxy by default
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        for backend in self._order():
            try:
                async with self._http.request(
                    request.method,
                    URL(backend.rstrip("/") + request.raw_path, encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    skip_auto_headers=_NO_AUTO_HEADERS,
                ) as answer:
                    content = await answer.read()
            except (aiohttp.ClientError, TimeoutError):
                self.failed[backend] += 1
                self._down_until[backend] = time.monotonic() + self.retry_down_after
                continue
            self._down_until.pop(backend, None)
            self.forwarded[backend] += 1
            return web.Response(
                status=answer.status,
                reason=answer.reason,
                body=content,
                headers=_pass_on(answer.headers, HOP_BY_HOP | {"content-length"}),
            )
        return web.Response(status=502, text="bad gateway")
