"""Several endpoints behind one `generate`: retries with backoff, then failover.

Retry policy (also in the README):
- Transient failures are retried on the same endpoint with exponential backoff and jitter,
  honouring the upstream's `Retry-After` / Gemini `RetryInfo`. A wait longer than
  `long_wait` (20 s) is not waited for: the job moves to the next endpoint at once, and where
  there is none the user is told how long the wait is (RETRY_LATER) instead of waiting
  silently; a job that finds every endpoint cooling down that long is told the same at once.
- Nothing is resent after a 2xx answer (`ProviderError.answered`): some relays bill every
  200, image or not, so such an answer is the user's to retry (a Retry button), unless the
  endpoint sets `resend_after_200`.
- Not paying twice: a request that failed before the upstream could act on it (connection
  refused, 429, 5xx) is safe to resend. A *read timeout* is different: the upstream may have
  finished and billed the image. Such "maybe charged" failures are resent at most
  `max_uncertain_resends` times per job across all endpoints (default 1), so one slow
  relay can never cost a user more than two images.
- Endpoint faults (bad key, model missing or retired at that endpoint, daily quota used up)
  are not retried on that endpoint; the job moves to the next one and the admins are told
  (a retired model with the model that replaces it).
- Request faults (400, safety block) are not retried anywhere: another endpoint would
  refuse the same request, and the user gets a plain answer at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.metrics import METRICS
from bot.providers.base import (
    Endpoint,
    ImageProvider,
    ImageRequest,
    ImageResult,
    ProgressCallback,
    Queued,
    Retrying,
    Started,
)
from bot.providers.concurrency import AdaptiveLimit, Outcome, Slots
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.profiles import successor_of

log = logging.getLogger(__name__)

ENDPOINT_FAULTS = frozenset(
    {
        ProviderErrorKind.AUTH,
        ProviderErrorKind.NOT_FOUND,
        ProviderErrorKind.MODEL_RETIRED,
        ProviderErrorKind.QUOTA_EXHAUSTED,
    }
)
UNCERTAIN = frozenset({ProviderErrorKind.TIMEOUT})
OVERLOAD = frozenset({ProviderErrorKind.CONNECTION, ProviderErrorKind.TIMEOUT})


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_endpoint: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_wait: float = 60.0
    long_wait: float = 20.0  # a Retry-After above this moves on or is told, never waited out
    max_uncertain_resends: int = 1
    # refusals from an endpoint busy with our other requests: the job waits for a slot again
    # instead of spending an attempt (bounded, in case the endpoint never frees one)
    busy_resends: int = 8

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * random.uniform(0.5, 1.0)


EndpointFaultHook = Callable[[ProviderError], Awaitable[None]]


class ProviderPool:
    """Implements ImageProvider over an ordered list of providers (first is preferred).

    Each attempt goes to the first endpoint still in play that has room under its adaptive
    limit (`bot/providers/concurrency.py`), so a saturated or cooling endpoint spills over to
    the next one that serves the model; when all are full the attempt waits for the first
    free slot. Retries and the "at most two paid attempts" rule count as before.
    """

    def __init__(
        self,
        providers: Sequence[ImageProvider],
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_endpoint_fault: EndpointFaultHook | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a pool needs at least one provider")
        self.providers = list(providers)
        self.endpoint: Endpoint = self.providers[0].endpoint
        self._dialects = {p.endpoint.name: p.endpoint.dialect for p in self.providers}
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._on_fault = on_endpoint_fault
        self.slots = Slots(
            {p.endpoint.name: limit_of(p.endpoint) for p in self.providers},
            clock=clock,
            sleep=sleep,
        )

    def serving(self, model: str) -> list[ImageProvider]:
        chosen = [p for p in self.providers if not p.endpoint.models or model in p.endpoint.models]
        return chosen or self.providers

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        uncertain_left = self.policy.max_uncertain_resends
        last: ProviderError | None = None
        in_play = self.serving(request.model)
        while in_play:
            try:
                return await self._on_endpoints(in_play, request, progress, uncertain_left)
            except _Exhausted as done:
                last, uncertain_left = done.error, done.uncertain_left
                if last.kind is ProviderErrorKind.MODEL_RETIRED:
                    last.model, last.successor = request.model, successor_of(request.model)
                if last.kind in ENDPOINT_FAULTS and self._on_fault is not None:
                    await self._on_fault(last)
                if done.final or not (last.transient or last.kind in ENDPOINT_FAULTS):
                    raise last from None
                if last.kind in UNCERTAIN:
                    if uncertain_left <= 0:
                        raise last from None
                    uncertain_left -= 1
                log.warning("endpoint %s gave up (%s); trying the next", done.name, last.kind.value)
                METRICS.upstream_retry(self._dialects[done.name], last.kind.value)
                in_play = [p for p in in_play if p.endpoint.name != done.name]
        assert last is not None
        raise self._told_to_wait(last) or last

    async def _on_endpoints(
        self,
        in_play: list[ImageProvider],
        request: ImageRequest,
        progress: ProgressCallback | None,
        uncertain_left: int,
    ) -> ImageResult:
        by_name = {p.endpoint.name: p for p in in_play}
        asked = self.slots.now()
        attempt, busy_left = 0, self.policy.busy_resends
        waited = False

        async def in_line(place: int) -> None:
            nonlocal waited
            waited = True
            if progress is not None:
                await progress(Queued(place))

        while True:
            self._refuse_long_cool_down(list(by_name))
            lease = await self.slots.acquire(list(by_name), since=asked, on_wait=in_line)
            if waited and progress is not None:  # drawing again after a wait for the endpoint
                await progress(Started(editing=bool(request.images or request.history)))
            waited = False
            name = lease.name
            dialect, sent = by_name[name].endpoint.dialect, time.monotonic()
            try:
                if request.on_send is not None:
                    await request.on_send()
                sent = time.monotonic()
                result = await by_name[name].generate(request, progress)
            except ProviderError as exc:
                METRICS.upstream_call(dialect, exc.kind.value, time.monotonic() - sent)
                exc.endpoint = exc.endpoint or name
                outcome = outcome_of(exc)
                held = self.slots.release(lease, outcome, self._cool_down(exc))
                if exc.answered and not by_name[name].endpoint.resend_after_200:
                    raise _Exhausted(exc, uncertain_left, name, final=True) from exc
                short = exc.retry_after is None or exc.retry_after <= self.policy.long_wait
                if outcome is Outcome.BUSY and held > 0 and busy_left > 0 and short:
                    busy_left -= 1  # it holds others of ours: wait in line for its next slot
                    METRICS.upstream_retry(dialect, exc.kind.value)
                    continue
                attempt += 1
                if not exc.transient or attempt >= self.policy.attempts_per_endpoint:
                    raise _Exhausted(exc, uncertain_left, name) from exc
                if exc.kind in UNCERTAIN:
                    if uncertain_left <= 0:
                        raise _Exhausted(exc, 0, name) from exc
                    uncertain_left -= 1
                wait = self.policy.delay(attempt - 1, exc.retry_after)
                if wait > min(self.policy.long_wait, self.policy.max_wait):
                    raise _Exhausted(exc, uncertain_left, name) from exc
                log.info("endpoint %s: %s, retrying in %.1f s", name, exc.kind.value, wait)
                if progress is not None:
                    await progress(Retrying(exc.kind))
                await self._sleep(wait)
                METRICS.upstream_retry(dialect, exc.kind.value)
                continue
            except BaseException:
                self.slots.release(lease, Outcome.OTHER)
                raise
            METRICS.upstream_call(dialect, "ok", time.monotonic() - sent)
            self.slots.release(lease, Outcome.OK)
            result.endpoint = result.endpoint or name
            return result

    def _told_to_wait(self, last: ProviderError) -> ProviderError | None:
        """The last endpoint's long Retry-After as the user's answer: how long to wait."""
        if not last.transient or last.retry_after is None:
            return None
        if last.retry_after <= self.policy.long_wait:
            return None
        return _retry_later(last.retry_after, last.detail, last.endpoint)

    def _refuse_long_cool_down(self, names: list[str]) -> None:
        """Every endpoint cools down longer than a job waits: say so now, not after the wait."""
        wait = self.slots.cooling_for(names)
        if wait > self.policy.long_wait:
            raise _retry_later(wait, "every endpoint asked to wait", names[0])

    def _cool_down(self, exc: ProviderError) -> float | None:
        """An overloaded endpoint's Retry-After, no longer than a job would wait for it."""
        if exc.retry_after is None or outcome_of(exc) is Outcome.OTHER:
            return None
        return min(exc.retry_after, self.policy.max_wait)


def limit_of(endpoint: Endpoint) -> AdaptiveLimit:
    return AdaptiveLimit(floor=endpoint.min_concurrency, ceiling=endpoint.max_concurrency)


def outcome_of(exc: ProviderError) -> Outcome:
    """What a failure says about the endpoint's load."""
    if exc.kind is ProviderErrorKind.RATE_LIMITED or (
        exc.kind is ProviderErrorKind.SERVER and exc.status == 503
    ):
        return Outcome.BUSY
    if exc.kind in OVERLOAD:
        return Outcome.OVERLOAD
    return Outcome.OTHER


def _retry_later(seconds: float, detail: str, endpoint: str) -> ProviderError:
    return ProviderError(
        ProviderErrorKind.RETRY_LATER,
        f"asked to wait {seconds:.1f} s: {detail}",
        retry_after=seconds,
        endpoint=endpoint,
    )


class _Exhausted(Exception):
    def __init__(
        self, error: ProviderError, uncertain_left: int, name: str, *, final: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.uncertain_left = uncertain_left
        self.name = name  # the endpoint that gave up
        self.final = final  # no other endpoint may be tried either (the call may be billed)
