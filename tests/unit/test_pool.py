"""Retry and failover policy of ProviderPool, on scripted providers (no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.providers.base import (
    Endpoint,
    GeneratedImage,
    ImageRequest,
    ImageResult,
    Queued,
    Started,
)
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


class Held:
    """A provider whose calls wait until the test lets them go; counts calls in flight."""

    def __init__(self, name: str, ceiling: int, floor: int = 1) -> None:
        self.endpoint = Endpoint(
            name=name,
            dialect="openai-chat",
            base_url="http://x",
            api_key="k",
            min_concurrency=floor,
            max_concurrency=ceiling,
        )
        self.go = asyncio.Event()
        self.in_flight = 0
        self.most = 0

    async def generate(self, request: ImageRequest, progress=None) -> ImageResult:  # type: ignore[no-untyped-def]
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.go.wait()
        finally:
            self.in_flight -= 1
        return ImageResult(images=[GeneratedImage(b"png", "image/png")])


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_saturated_endpoint_spills_over_to_the_next() -> None:
    a, b = Held("a", ceiling=2, floor=2), Held("b", ceiling=8)
    pool = ProviderPool([a, b])
    jobs = [asyncio.create_task(pool.generate(REQ)) for _ in range(5)]
    await _settle()
    assert (a.in_flight, b.in_flight) == (2, 3)
    a.go.set()
    b.go.set()
    assert sorted(r.endpoint for r in await asyncio.gather(*jobs)) == ["a", "a", "b", "b", "b"]


async def test_when_every_endpoint_is_full_the_rest_wait_for_a_free_slot() -> None:
    a = Held("a", ceiling=3, floor=3)
    pool = ProviderPool([a])
    jobs = [asyncio.create_task(pool.generate(REQ)) for _ in range(7)]
    await _settle()
    assert a.in_flight == 3
    a.go.set()
    await asyncio.gather(*jobs)
    assert a.most == 3


async def test_an_endpoint_cooling_down_gets_no_new_requests_until_it_ends() -> None:
    a, b = Scripted("a", [K.RATE_LIMITED, "ok"]), Scripted("b", ["ok"])
    pool, waits = _pool(a, b)
    first = await pool.generate(REQ)
    # the 429's Retry-After (2 s) was waited out before a was asked again
    assert (first.endpoint, a.calls, waits) == ("a", 2, [2.0])


async def test_a_429_sends_the_next_jobs_to_the_next_endpoint_while_cooling() -> None:
    now = [0.0]
    a, b = Scripted("a", [K.RATE_LIMITED, "ok"]), Scripted("b", ["ok"])
    pool = ProviderPool([a, b], RetryPolicy(max_wait=1.0), clock=lambda: now[0])
    assert (await pool.generate(REQ)).endpoint == "b"  # 2 s is more than max_wait: moves on
    assert (await pool.generate(REQ)).endpoint == "b"  # a still cools down
    now[0] += 1.0  # the cool-down is at most max_wait
    assert (await pool.generate(REQ)).endpoint == "a"


async def test_overload_answers_shrink_the_endpoint_limit_and_successes_grow_it() -> None:
    a = Scripted("a", [K.RATE_LIMITED, "ok"])
    pool, _ = _pool(a)
    before = pool.slots.limits["a"].limit
    await pool.generate(REQ)
    assert pool.slots.limits["a"].limit < before
    assert pool.slots.limits["a"].in_flight == 0


async def test_the_slot_is_given_back_when_the_job_is_cancelled() -> None:
    a = Held("a", ceiling=1, floor=1)
    pool = ProviderPool([a])
    job = asyncio.create_task(pool.generate(REQ))
    await _settle()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert pool.slots.limits["a"].in_flight == 0


class Busy:
    """An endpoint of capacity `capacity`: calls beyond it are refused with a 429 at once."""

    def __init__(self, capacity: int) -> None:
        self.endpoint = Endpoint(name="a", dialect="openai-chat", base_url="http://x", api_key="k")
        self.capacity = capacity
        self.go = asyncio.Event()
        self.in_flight = self.refused = 0

    async def generate(self, request: ImageRequest, progress=None) -> ImageResult:  # type: ignore[no-untyped-def]
        if self.in_flight >= self.capacity:
            self.refused += 1
            raise ProviderError(K.RATE_LIMITED, "busy")
        self.in_flight += 1
        try:
            await self.go.wait()
        finally:
            self.in_flight -= 1
        return ImageResult(images=[GeneratedImage(b"png", "image/png")])


async def test_refusals_while_the_endpoint_holds_our_other_jobs_spend_no_attempt() -> None:
    a = Busy(capacity=2)
    seen: list[object] = []

    async def progress(event: object) -> None:
        seen.append(event)

    pool = ProviderPool([a], RetryPolicy(attempts_per_endpoint=1))
    jobs = [asyncio.create_task(pool.generate(REQ, progress)) for _ in range(6)]
    await _settle()
    assert a.refused == 1 and pool.slots.limits["a"].limit == 2  # the first refusal taught it
    a.go.set()
    results = await asyncio.gather(*jobs)
    assert len(results) == 6 and a.refused == 1
    # waiting in line is not a retry: the user hears a place in line, then drawing again
    assert seen and all(isinstance(e, Queued | Started) for e in seen)


async def test_a_429_with_nothing_else_in_flight_spends_an_attempt() -> None:
    a = Scripted("a", [K.RATE_LIMITED, K.RATE_LIMITED, "ok"])
    pool, waits = _pool(a, attempts_per_endpoint=2)
    with pytest.raises(ProviderError):
        await pool.generate(REQ)
    assert a.calls == 2 and waits == [2.0]


async def test_a_job_waiting_for_a_full_endpoint_hears_its_place_then_drawing_again() -> None:
    a = Held("a", ceiling=1, floor=1)
    pool = ProviderPool([a])
    heard: dict[int, list[object]] = {0: [], 1: [], 2: []}

    def listener(i: int):  # type: ignore[no-untyped-def]
        async def hear(event: object) -> None:
            heard[i].append(event)

        return hear

    jobs = [asyncio.create_task(pool.generate(REQ, listener(i))) for i in range(3)]
    await _settle()
    assert heard == {0: [], 1: [Queued(1)], 2: [Queued(2)]}
    a.go.set()
    await asyncio.gather(*jobs)
    assert heard[1] == [Queued(1), Started(editing=False)]
    assert heard[2][0] == Queued(2) and heard[2][-1] == Started(editing=False)


# --- a long Retry-After / RetryInfo, and answers that may be billed -----------------------


class Told(Scripted):
    """A provider whose failures carry a given Retry-After and whether a 2xx came first."""

    def __init__(
        self,
        name: str,
        script: Sequence[K | str],
        *,
        retry_after: float | None = None,
        answered: bool = False,
        resend_after_200: bool = False,
    ) -> None:
        super().__init__(name, script)
        self.endpoint = Endpoint(
            name=name,
            dialect="gemini",
            base_url="http://x",
            api_key="k",
            resend_after_200=resend_after_200,
        )
        self.retry_after = retry_after
        self.answered = answered

    async def generate(self, request: ImageRequest, progress=None) -> ImageResult:  # type: ignore[no-untyped-def]
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "ok":
            return ImageResult(images=[GeneratedImage(b"png", "image/png")])
        raise ProviderError(
            K(step), "scripted", retry_after=self.retry_after, answered=self.answered
        )


async def test_a_retry_info_of_34_s_moves_to_the_next_endpoint_at_once() -> None:
    a, b = Told("a", [K.RATE_LIMITED], retry_after=34.4), Told("b", ["ok"])
    pool, waits = _pool(a, b)
    assert (await pool.generate(REQ)).endpoint == "b"
    assert waits == [] and (a.calls, b.calls) == (1, 1)


async def test_a_retry_info_of_34_s_on_the_only_endpoint_tells_the_wait_at_once() -> None:
    a = Told("a", [K.RATE_LIMITED, "ok"], retry_after=34.4)
    pool, waits = _pool(a)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == K.RETRY_LATER and info.value.retry_after == 34.4
    assert waits == [] and a.calls == 1  # not waited out, not resent
    # the next job, while the endpoint still cools down, hears the same without a call
    with pytest.raises(ProviderError) as again:
        await pool.generate(REQ)
    assert again.value.kind == K.RETRY_LATER and 20 < (again.value.retry_after or 0) <= 34.4
    assert a.calls == 1


async def test_a_short_retry_info_is_still_waited_out() -> None:
    a = Told("a", [K.RATE_LIMITED, "ok"], retry_after=19.0)
    pool, waits = _pool(a)
    assert (await pool.generate(REQ)).endpoint == "a"
    assert waits == [19.0] and a.calls == 2


async def test_a_per_day_quota_is_no_retry_later() -> None:
    a = Told("a", [K.QUOTA_EXHAUSTED], retry_after=52758.0)
    pool, _ = _pool(a)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == K.QUOTA_EXHAUSTED


@pytest.mark.parametrize("kind", [K.SERVER, K.TIMEOUT, K.RATE_LIMITED, K.NO_IMAGE])
async def test_nothing_is_resent_after_a_2xx_answer(kind: K) -> None:
    a, b = Told("a", [kind, "ok"], answered=True), Told("b", ["ok"])
    pool, waits = _pool(a, b)
    with pytest.raises(ProviderError) as info:
        await pool.generate(REQ)
    assert info.value.kind == kind and (a.calls, b.calls) == (1, 0) and waits == []


async def test_an_endpoint_that_does_not_bill_empty_200s_may_resend_them() -> None:
    a = Told("a", [K.SERVER, "ok"], answered=True, resend_after_200=True)
    pool, _ = _pool(a)
    assert (await pool.generate(REQ)).endpoint == "a" and a.calls == 2
