"""The fake load balancer: round robin, pass-through, a backend that goes down and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.fakes.balancer import FakeBalancer


class Backend:
    """A tiny server on 127.0.0.1 that answers with its name and echoes what it got."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port the first time, on the same port after that."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": self.name,
                "method": request.method,
                "path": request.path_qs,
                "x_test": request.headers.get("X-Test"),
                "x_hop": request.headers.get("X-Hop"),
                "host": request.headers.get("Host"),
                "forwarded_host": request.headers.get("X-Forwarded-Host"),
                "body": (await request.read()).decode(),
            },
            status=self.status,
            headers={"X-Backend": self.name},
        )


@pytest.fixture
async def backends() -> AsyncIterator[tuple[Backend, Backend]]:
    a, b = Backend("A"), Backend("B")
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def _names(http: httpx.AsyncClient, url: str, count: int) -> list[str]:
    names = []
    for _ in range(count):
        response = await http.post(f"{url}/hook", content=b"{}")
        assert response.status_code == 200
        names.append(response.json()["name"])
    return names


async def test_posts_alternate_and_pass_through(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    async with FakeBalancer([a.url, b.url]) as balancer:
        answers: list[dict[str, Any]] = []
        for n in range(4):
            response = await http.post(
                f"{balancer.url}/hook/{n}?x={n}&y=%20z",
                content=f"body {n}".encode(),
                headers={"X-Test": f"t{n}", "Connection": "keep-alive, X-Hop", "X-Hop": "1"},
            )
            assert response.status_code == 200
            assert response.headers["X-Backend"] == response.json()["name"]
            assert response.headers["Content-Type"].startswith("application/json")
            answers.append(response.json())
        host = balancer.url.removeprefix("http://")
    assert [x["name"] for x in answers] == ["A", "B", "A", "B"]
    for n, x in enumerate(answers):
        assert x["method"] == "POST"
        assert x["path"] == f"/hook/{n}?x={n}&y=%20z"
        assert x["x_test"] == f"t{n}"
        assert x["body"] == f"body {n}"
        assert x["x_hop"] is None  # named in Connection: a hop-by-hop header
        assert x["host"] == (a.url if x["name"] == "A" else b.url).removeprefix("http://")
        assert x["forwarded_host"] == host
    assert balancer.forwarded == {a.url: 2, b.url: 2}
    assert balancer.failed == {}


async def test_status_and_other_methods_pass_through(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    a.status = b.status = 403
    async with FakeBalancer([a.url, b.url]) as balancer:
        got = await http.get(f"{balancer.url}/")
        assert got.status_code == 403
        assert (got.json()["method"], got.json()["path"], got.json()["body"]) == ("GET", "/", "")
        put = await http.put(f"{balancer.url}/thing", content=b"new")
        assert put.status_code == 403
        assert (put.json()["method"], put.json()["body"]) == ("PUT", "new")


async def test_a_stopped_backend_is_skipped(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    await b.stop()
    async with FakeBalancer([a.url, b.url], retry_down_after=60) as balancer:
        assert await _names(http, balancer.url, 4) == ["A"] * 4
    assert balancer.forwarded == {a.url: 4}
    assert balancer.failed == {b.url: 1}  # down after its first failure: not tried again


async def test_every_backend_down_is_a_502(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    await a.stop()
    await b.stop()
    async with FakeBalancer([a.url, b.url]) as balancer:
        for _ in range(2):
            response = await http.post(f"{balancer.url}/hook", content=b"{}")
            assert (response.status_code, response.text) == (502, "bad gateway")
    assert balancer.forwarded == {}
    assert balancer.failed == {a.url: 1, b.url: 1}


async def test_a_restarted_backend_gets_requests_again(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    await b.stop()
    async with FakeBalancer([a.url, b.url], retry_down_after=0.2) as balancer:
        assert await _names(http, balancer.url, 2) == ["A", "A"]
        await b.start()  # the same port as before
        assert await _names(http, balancer.url, 2) == ["A", "A"]  # still marked down
        await asyncio.sleep(0.3)
        assert sorted(await _names(http, balancer.url, 4)) == ["A", "A", "B", "B"]
    assert balancer.failed == {b.url: 1}
    assert balancer.forwarded == {a.url: 6, b.url: 2}


async def test_set_backends_adds_one(
    backends: tuple[Backend, Backend], http: httpx.AsyncClient
) -> None:
    a, b = backends
    async with FakeBalancer([]) as balancer:
        response = await http.post(f"{balancer.url}/hook", content=b"{}")
        assert response.status_code == 502
        balancer.set_backends([a.url])
        assert await _names(http, balancer.url, 2) == ["A", "A"]
        balancer.set_backends([a.url, b.url])
        assert sorted(await _names(http, balancer.url, 2)) == ["A", "B"]
