"""Several endpoints behind one `generate`: retries with backoff, then failover.

Retry policy (also in the README):
- Transient failures are retried on the same endpoint with exponential backoff and jitter,
  honouring the upstream's `Retry-After` / Gemini `RetryInfo` (a wait longer than
  `max_wait` is not waited for: the job moves to the next endpoint instead).
- Not paying twice: a request that failed before the upstream could act on it (connection
  refused, 429, 5xx) is safe to resend. A *read timeout* is different: the upstream may have
  finished and billed the image. Such "maybe charged" failures are resent at most
  `max_uncertain_resends` times per job across all endpoints (default 1), so one slow
  relay can never cost a user more than two images.
- Endpoint faults (bad key, model missing at that endpoint, daily quota used up) are not
  retried on that endpoint; the job moves to the next one and the admins are told.
- Request faults (400, safety block) are not retried anywhere: another endpoint would
  refuse the same request, and the user gets a plain answer at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.providers.base import (
    Endpoint,
    ImageProvider,
    ImageRequest,
    ImageResult,
    ProgressCallback,
    Retrying,
)
from bot.providers.errors import ProviderError, ProviderErrorKind

log = logging.getLogger(__name__)

ENDPOINT_FAULTS = frozenset(
    {ProviderErrorKind.AUTH, ProviderErrorKind.NOT_FOUND, ProviderErrorKind.QUOTA_EXHAUSTED}
)
UNCERTAIN = frozenset({ProviderErrorKind.TIMEOUT})


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_endpoint: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_wait: float = 60.0
    max_uncertain_resends: int = 1

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * random.uniform(0.5, 1.0)


EndpointFaultHook = Callable[[ProviderError], Awaitable[None]]


class ProviderPool:
    """Implements ImageProvider over an ordered list of providers (first is preferred)."""

    def __init__(
        self,
        providers: Sequence[ImageProvider],
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_endpoint_fault: EndpointFaultHook | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a pool needs at least one provider")
        self.providers = list(providers)
        self.endpoint: Endpoint = self.providers[0].endpoint
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._on_fault = on_endpoint_fault
        self._slots = {
            p.endpoint.name: asyncio.Semaphore(max(1, p.endpoint.max_concurrency))
            for p in self.providers
        }

    def serving(self, model: str) -> list[ImageProvider]:
        chosen = [p for p in self.providers if not p.endpoint.models or model in p.endpoint.models]
        return chosen or self.providers

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        uncertain_left = self.policy.max_uncertain_resends
        last: ProviderError | None = None
        for provider in self.serving(request.model):
            try:
                return await self._on_endpoint(provider, request, progress, uncertain_left)
            except _Exhausted as done:
                last, uncertain_left = done.error, done.uncertain_left
                if last.kind in ENDPOINT_FAULTS and self._on_fault is not None:
                    await self._on_fault(last)
                if not (last.transient or last.kind in ENDPOINT_FAULTS):
                    raise last from None
                if last.kind in UNCERTAIN:
                    if uncertain_left <= 0:
                        raise last from None
                    uncertain_left -= 1
                log.warning(
                    "endpoint %s gave up (%s); trying the next",
                    provider.endpoint.name,
                    last.kind.value,
                )
        assert last is not None
        raise last

    async def _on_endpoint(
        self,
        provider: ImageProvider,
        request: ImageRequest,
        progress: ProgressCallback | None,
        uncertain_left: int,
    ) -> ImageResult:
        name = provider.endpoint.name
        for attempt in range(self.policy.attempts_per_endpoint):
            try:
                async with self._slots[name]:
                    if request.on_send is not None:
                        await request.on_send()
                    result = await provider.generate(request, progress)
                result.endpoint = result.endpoint or name
                return result
            except ProviderError as exc:
                exc.endpoint = exc.endpoint or name
                if not exc.transient or attempt + 1 >= self.policy.attempts_per_endpoint:
                    raise _Exhausted(exc, uncertain_left) from exc
                if exc.kind in UNCERTAIN:
                    if uncertain_left <= 0:
                        raise _Exhausted(exc, 0) from exc
                    uncertain_left -= 1
                wait = self.policy.delay(attempt, exc.retry_after)
                if wait > self.policy.max_wait:
                    raise _Exhausted(exc, uncertain_left) from exc
                log.info("endpoint %s: %s, retrying in %.1f s", name, exc.kind.value, wait)
                if progress is not None:
                    await progress(Retrying(exc.kind))
                await self._sleep(wait)
        raise AssertionError("unreachable")


class _Exhausted(Exception):
    def __init__(self, error: ProviderError, uncertain_left: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.uncertain_left = uncertain_left
