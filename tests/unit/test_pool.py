"""Retry and failover policy of ProviderPool, on scripted providers (no HTTP)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.providers.base import Endpoint, GeneratedImage, ImageRequest, ImageResult
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.pool import ProviderPool, RetryPolicy


class Scripted:
    """A provider that answers from a script: an exception kind or 'ok'."""

    def __init__(self, name: str, script: Sequence[K | str], models: tuple[str, ...] = ()) -> None:
        self.endpoint = Endpoint(
            name=name, dialect="openai-chat", base_url="http://x", api_key="k", models=models
        )
        self.script = list(script)
        self.calls = 0

    async def generate(self, request: ImageRequest, progress=None) -> ImageResult:  # type: ignore[no-untyped-def]
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "ok":
            return ImageResult(images=[GeneratedImage(b"png", "image/png")])
        retry_after = 2.0 if step == K.RATE_LIMITED else None
        raise ProviderError(K(step), "scripted", retry_after=retry_after)


def _pool(*providers: Scripted, **kw: object) -> tuple[ProviderPool, list[float]]:
    """A pool whose waits are recorded and pass at once on its own clock."""
    waits: list[float] = []
    now = [0.0]

    async def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    pool = ProviderPool(providers, RetryPolicy(**kw), sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    return pool, waits


REQ = ImageRequest(prompt="p", model="m")


async def test_transient_is_retried_then_succeeds() -> None:
    a = Scripted("a", [K.SERVER, K.SERVER, "ok"])
    pool, waits = _pool(a)
    result = await pool.generate(REQ)
    assert a.calls == 3 and result.endpoint == "a" and len(waits) == 2


async def test_retry_after_is_honoured() -> None:
    a = Scripted("a", [K.RATE_LIMITED, "ok"])
    pool, waits = _pool(a)
    await pool.generate(REQ)
    assert waits == [2.0]


async def test_failover_to_the_second_endpoint() -> None:
    a, b = Scripted("a", [K.SERVER]), Scripted("b", ["ok"])
    pool, _ = _pool(a, b, attempts_per_endpoint=2)
    result = await pool.generate(REQ)
    assert (a.calls, b.calls, result.endpoint) == (2, 1, "b")


@pytest.mark.parametrize("kind", [K.BAD_REQUEST, K.BLOCKED])
async def test_request_faults_are_not_retried_anywhere(kind: K) -> None:
    a, b = Scripted("a", [kind]), Scripted("b", ["ok"])
    pool, waits = _pool(a, b)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == kind and (a.calls, b.calls) == (1, 0) and waits == []


@pytest.mark.parametrize("kind", [K.AUTH, K.NOT_FOUND, K.QUOTA_EXHAUSTED])
async def test_endpoint_faults_move_on_without_retrying(kind: K) -> None:
    a, b = Scripted("a", [kind]), Scripted("b", ["ok"])
    faults: list[ProviderError] = []

    async def hook(err: ProviderError) -> None:
        faults.append(err)

    pool = ProviderPool([a, b], RetryPolicy(), on_endpoint_fault=hook)
    result = await pool.generate(REQ)
    assert (a.calls, b.calls, result.endpoint) == (1, 1, "b")
    assert [f.endpoint for f in faults] == ["a"]


async def test_a_maybe_charged_timeout_is_resent_only_once_per_job() -> None:
    a, b = Scripted("a", [K.TIMEOUT]), Scripted("b", [K.TIMEOUT])
    pool, _ = _pool(a, b)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == K.TIMEOUT
    assert a.calls + b.calls == 2


async def test_a_wait_longer_than_max_wait_moves_on() -> None:
    a, b = Scripted("a", [K.RATE_LIMITED]), Scripted("b", ["ok"])
    pool, waits = _pool(a, b, max_wait=1.0)
    assert (await pool.generate(REQ)).endpoint == "b"
    assert waits == [] and a.calls == 1


async def test_endpoints_are_chosen_by_model() -> None:
    a = Scripted("a", ["ok"], models=("other",))
    b = Scripted("b", ["ok"], models=("m",))
    pool, _ = _pool(a, b)
    assert (await pool.generate(REQ)).endpoint == "b" and a.calls == 0


async def test_all_fail_raises_the_last_error() -> None:
    a, b = Scripted("a", [K.SERVER]), Scripted("b", [K.CONNECTION])
    pool, _ = _pool(a, b, attempts_per_endpoint=1)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == K.CONNECTION and info.value.endpoint == "b"
