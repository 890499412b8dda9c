"""How many requests each endpoint gets at once: a limit that adapts to what it takes (AIMD).

`AdaptiveLimit` is pure (the caller passes the time): the limit grows while requests
succeed and shrinks by `backoff` on an overload (429, 503, connection refused, timeout),
never below the floor nor above the ceiling; a busy answer while the endpoint still holds
others of ours is a measurement instead (the limit becomes what it holds); a Retry-After / RetryInfo
from the endpoint is a cool-down during which it gets no new requests. `Slots` hands the
limits out: the first endpoint of a list that has room, else the first free slot among
them, in the order the jobs first asked (a job sent back by a refusal keeps its place).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from bisect import insort
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

FLOOR = 1
CEILING = 128  # high enough that a burst of a hundred chats goes out at once on a big endpoint
START = 128  # optimistic: a burst goes out at once, and a small endpoint's refusals of that
# burst teach the limit its size (what it holds when it refuses), so nobody waits for a slot
# an endpoint would have taken
PLACE_EVERY = 2.0  # seconds between looks at a waiting job's place in line
BACKOFF = 0.7  # kept after an overload: gentle enough that the limit hovers near the capacity


class Outcome(Enum):
    OK = "ok"  # the endpoint did the work
    BUSY = "busy"  # it answered that it is too busy (429, 503)
    OVERLOAD = "overload"  # it did not answer in time, or refused the connection
    OTHER = "other"  # an answer that says nothing about its load (a bad request, a refusal)


@dataclass
class AdaptiveLimit:
    """Requests in flight to one endpoint, between `floor` and `ceiling`.

    Until the first overload the limit grows by one per success (slow start, to find a big
    endpoint's size quickly); after it, by one per limit's worth of successes. Growth only
    counts successes while the limit is in use, so a quiet bot does not drift to the ceiling.
    """

    floor: int = FLOOR
    ceiling: int = CEILING
    start: int = START
    backoff: float = BACKOFF
    limit: float = field(init=False)
    in_flight: int = field(default=0, init=False)
    cool_until: float = field(default=0.0, init=False)
    slow_start: bool = field(default=True, init=False)
    # A cut is made once per generation: the other answers to requests sent just before it
    # describe the same overload, and only bring the limit down to what is still in flight
    # (what the endpoint took of the burst).
    generation: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.ceiling:
            raise ValueError("need 1 <= floor <= ceiling")
        self.limit = float(min(self.ceiling, max(self.floor, self.start)))

    @property
    def fixed(self) -> bool:
        return self.floor == self.ceiling

    def cooling(self, now: float) -> bool:
        return now < self.cool_until

    def has_room(self, now: float) -> bool:
        return not self.cooling(now) and self.in_flight < math.floor(self.limit)

    def take(self) -> int:
        """One more request in flight; returns its generation, to give back to `done`."""
        self.in_flight += 1
        return self.generation

    def done(
        self, generation: int, outcome: Outcome, now: float, cool_down: float | None = None
    ) -> None:
        busy = self.in_flight >= math.floor(self.limit)
        self.in_flight -= 1
        if cool_down is not None and cool_down > 0:
            self.cool_until = max(self.cool_until, now + cool_down)
        if outcome is Outcome.OK and busy:
            step = 1.0 if self.slow_start else 1 / self.limit
            self.limit = min(float(self.ceiling), self.limit + step)
        elif outcome is Outcome.BUSY and self.in_flight > 0:
            # refused one more while holding the rest of ours: that is its size now
            self.slow_start = False
            self.limit = min(self.limit, float(self.in_flight))
        elif outcome in (Outcome.BUSY, Outcome.OVERLOAD):
            self.slow_start = False
            if generation == self.generation:
                self.limit *= self.backoff
                self.generation += 1
            elif generation == self.generation - 1:
                self.limit = min(self.limit, float(self.in_flight))
            self.limit = max(float(self.floor), self.limit)


@dataclass
class Lease:
    name: str
    generation: int


@dataclass(eq=False)  # waiters are told apart by identity: two may ask at the same instant
class _Waiter:
    since: float
    names: Sequence[str]
    granted: asyncio.Future[Lease]

    def __lt__(self, other: _Waiter) -> bool:
        return self.since < other.since


class Slots:
    """Per-endpoint adaptive limits, handed out in order of preference and of arrival."""

    def __init__(
        self,
        limits: Mapping[str, AdaptiveLimit],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._sleep = sleep
        self._waiting: list[_Waiter] = []
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf

    def now(self) -> float:
        return self._clock()

    @property
    def waiting(self) -> int:
        """Attempts waiting for an endpoint's slot now."""
        return len(self._waiting)

    def _free(self, names: Sequence[str], now: float) -> str | None:
        return next((n for n in names if self.limits[n].has_room(now)), None)

    async def acquire(
        self,
        names: Sequence[str],
        since: float | None = None,
        on_wait: Callable[[int], Awaitable[None]] | None = None,
    ) -> Lease:
        """A slot on the first of `names` with room; else waits its turn for the first free.

        `since` is when the job first asked (default: now): it orders the line. `on_wait` hears
        the place in line when the wait begins and whenever it has changed, every PLACE_EVERY s.
        """
        now = self._clock()
        if not self._waiting:
            name = self._free(names, now)
            if name is not None:
                return Lease(name, self.limits[name].take())
        loop = asyncio.get_running_loop()
        waiter = _Waiter(now if since is None else since, names, loop.create_future())
        insort(self._waiting, waiter)
        self._wake()
        try:
            told = 0
            while on_wait is not None and not waiter.granted.done():
                place = self._waiting.index(waiter) + 1
                if place != told:
                    told = place
                    await on_wait(place)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter.granted), PLACE_EVERY)
            return await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.release(waiter.granted.result(), Outcome.OTHER)
            raise
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    def cooling_for(self, names: Sequence[str]) -> float:
        """Seconds until the first of `names` stops cooling down (0 when one is not cooling)."""
        now = self._clock()
        return max(0.0, min(self.limits[n].cool_until - now for n in names))

    def release(self, lease: Lease, outcome: Outcome, cool_down: float | None = None) -> int:
        """Gives the slot back; returns how many requests that endpoint still has in flight."""
        limit = self.limits[lease.name]
        limit.done(lease.generation, outcome, self._clock(), cool_down)
        held = limit.in_flight
        self._wake()
        return held

    def _wake(self) -> None:
        now = self._clock()
        for waiter in list(self._waiting):
            if waiter.granted.done():
                self._waiting.remove(waiter)
                continue
            name = self._free(waiter.names, now)
            if name is not None:
                self._waiting.remove(waiter)
                waiter.granted.set_result(Lease(name, self.limits[name].take()))
        self._arm_timer(now)

    def _arm_timer(self, now: float) -> None:
        """While someone waits on an endpoint that only cools down, wake them when it ends."""
        ends = [
            self.limits[n].cool_until
            for w in self._waiting
            for n in w.names
            if self.limits[n].cooling(now)
        ]
        if not ends or (self._timer is not None and self._timer_at <= min(ends)):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = min(ends)
        self._timer = asyncio.get_running_loop().create_task(self._after(self._timer_at - now))

    async def _after(self, seconds: float) -> None:
        await self._sleep(seconds)
        self._timer, self._timer_at = None, math.inf
        self._wake()
