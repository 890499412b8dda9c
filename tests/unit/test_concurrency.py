"""AdaptiveLimit (AIMD on plain numbers and a hand-moved clock) and Slots (who gets a slot)."""

from __future__ import annotations

import asyncio

import pytest

from bot.providers.concurrency import AdaptiveLimit, Lease, Outcome, Slots


def _fill(limit: AdaptiveLimit) -> list[int]:
    return [limit.take() for _ in range(int(limit.limit))]


def test_the_start_is_clamped_between_floor_and_ceiling() -> None:
    assert AdaptiveLimit(floor=1, ceiling=4, start=16).limit == 4
    assert AdaptiveLimit(floor=20, ceiling=64, start=16).limit == 20
    with pytest.raises(ValueError):
        AdaptiveLimit(floor=5, ceiling=4)


def _succeed_under_load(limit: AdaptiveLimit, successes: int) -> None:
    """`successes` answers, with waiting requests taking every free slot at once."""
    sent = _fill(limit)
    for _ in range(successes):
        limit.done(sent.pop(0), Outcome.OK, now=0.0)
        while limit.in_flight < int(limit.limit):
            sent.append(limit.take())


def _overload_once(limit: AdaptiveLimit) -> None:
    limit.done(limit.take(), Outcome.OVERLOAD, now=0.0)


def test_until_the_first_overload_each_success_at_the_limit_adds_one() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=4)
    _succeed_under_load(limit, 4)
    assert limit.limit == 8


def test_after_an_overload_a_limit_worth_of_successes_adds_one() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=8, backoff=0.5)
    _overload_once(limit)
    assert limit.limit == 4
    _succeed_under_load(limit, 4)
    assert 4.9 < limit.limit <= 5.0


def test_successes_below_the_limit_do_not_grow_it() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=4)
    for _ in range(50):
        limit.done(limit.take(), Outcome.OK, now=0.0)
    assert limit.limit == 4


def test_growth_stops_at_the_ceiling() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=5, start=5)
    for _ in range(100):
        generations = _fill(limit)
        for generation in generations:
            limit.done(generation, Outcome.OK, now=0.0)
    assert limit.limit == 5


def test_one_burst_of_overloads_cuts_once_then_down_to_what_the_endpoint_took() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=10, backoff=0.5)
    sent = _fill(limit)
    limit.done(sent[0], Outcome.OVERLOAD, now=0.0)
    assert limit.limit == 5  # one cut for the burst ...
    for generation in sent[1:6]:
        limit.done(generation, Outcome.OVERLOAD, now=0.0)
    assert limit.limit == 4  # ... then no more than the four still in flight
    limit.done(limit.take(), Outcome.OVERLOAD, now=0.0)  # sent after the cut: cuts again
    assert limit.limit == 2


def test_a_late_overload_from_long_ago_does_not_collapse_the_limit() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=10, backoff=0.5)
    old = limit.take()
    _overload_once(limit)
    _overload_once(limit)
    assert limit.limit == 2.5
    limit.done(old, Outcome.OVERLOAD, now=0.0)
    assert limit.limit == 2.5


def test_the_limit_never_falls_below_the_floor() -> None:
    limit = AdaptiveLimit(floor=3, ceiling=64, start=4, backoff=0.5)
    for _ in range(10):
        _overload_once(limit)
    assert limit.limit == 3 and limit.has_room(0.0)


def test_a_fixed_limit_stays_fixed() -> None:
    limit = AdaptiveLimit(floor=4, ceiling=4)
    assert limit.fixed
    limit.done(limit.take(), Outcome.OVERLOAD, now=0.0)
    for generation in _fill(limit):
        limit.done(generation, Outcome.OK, now=0.0)
    assert limit.limit == 4


def test_other_failures_leave_the_limit_alone() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=4)
    for generation in _fill(limit):
        limit.done(generation, Outcome.OTHER, now=0.0)
    assert limit.limit == 4 and limit.in_flight == 0


def test_retry_after_cools_the_endpoint_down_until_it_ends() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=4)
    limit.done(limit.take(), Outcome.OVERLOAD, now=100.0, cool_down=5.0)
    assert not limit.has_room(100.0) and not limit.has_room(104.9)
    assert limit.has_room(105.0)
    limit.done(limit.take(), Outcome.OVERLOAD, now=101.0, cool_down=1.0)  # never shortened
    assert limit.cool_until == 105.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.tick = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Waits until the test moves the clock past `seconds` from now."""
        self.slept.append(seconds)
        until = self.now + seconds
        while self.now < until:
            self.tick.clear()
            await self.tick.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.tick.set()


def _slots(clock: Clock, **limits: int) -> Slots:
    return Slots(
        {name: AdaptiveLimit(floor=1, ceiling=n, start=n) for name, n in limits.items()},
        clock=clock,
        sleep=clock.sleep,
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_preferred_endpoint_first_then_the_next_with_room() -> None:
    slots = _slots(Clock(), a=2, b=1)
    names = [(await slots.acquire(["a", "b"])).name for _ in range(3)]
    assert names == ["a", "a", "b"]


async def test_a_cooling_endpoint_spills_over() -> None:
    clock = Clock()
    slots = _slots(clock, a=4, b=4)
    slots.release(await slots.acquire(["a", "b"]), Outcome.OVERLOAD, cool_down=10.0)
    assert (await slots.acquire(["a", "b"])).name == "b"


async def test_when_all_are_full_waiters_are_served_first_come_first_served() -> None:
    slots = _slots(Clock(), a=1, b=1)
    held = [await slots.acquire(["a", "b"]), await slots.acquire(["a", "b"])]
    order: list[str] = []

    async def wait(tag: str) -> None:
        lease = await slots.acquire(["a", "b"])
        order.append(tag)
        slots.release(lease, Outcome.OK)

    tasks = [asyncio.create_task(wait(tag)) for tag in "xyz"]
    await _settle()
    assert order == []
    slots.release(held[1], Outcome.OK)  # b frees first: the first waiter takes it
    await _settle()
    await asyncio.gather(*tasks)
    assert order == ["x", "y", "z"]
    slots.release(held[0], Outcome.OK)
    assert all(limit.in_flight == 0 for limit in slots.limits.values())


async def test_a_newcomer_does_not_jump_the_queue() -> None:
    slots = _slots(Clock(), a=1)
    held = await slots.acquire(["a"])
    first = asyncio.create_task(slots.acquire(["a"]))
    await _settle()
    slots.release(held, Outcome.OK)
    late = asyncio.create_task(slots.acquire(["a"]))
    await _settle()
    assert first.done() and not late.done()
    slots.release(first.result(), Outcome.OK)
    await _settle()
    assert late.done()
    slots.release(late.result(), Outcome.OK)


async def test_waiters_on_a_cooling_endpoint_go_when_the_cool_down_ends() -> None:
    clock = Clock()
    slots = _slots(clock, a=4)
    slots.release(await slots.acquire(["a"]), Outcome.OVERLOAD, cool_down=3.0)
    waiting = asyncio.create_task(slots.acquire(["a"]))
    await _settle()
    assert not waiting.done() and clock.slept == [3.0]
    clock.advance(2.0)
    await _settle()
    assert not waiting.done()
    clock.advance(1.0)
    await _settle()
    assert waiting.done() and waiting.result().name == "a"
    slots.release(waiting.result(), Outcome.OK)


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    slots = _slots(Clock(), a=1)
    held = await slots.acquire(["a"])
    waiting = asyncio.create_task(slots.acquire(["a"]))
    await _settle()
    waiting.cancel()
    await _settle()
    slots.release(held, Outcome.OK)
    assert slots.limits["a"].in_flight == 0
    lease = await slots.acquire(["a"])
    assert isinstance(lease, Lease)


def test_a_busy_answer_with_others_in_flight_sets_the_limit_to_what_it_holds() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=64, start=17, backoff=0.5)
    sent = _fill(limit)
    limit.done(sent[-1], Outcome.BUSY, now=0.0)  # the 17th was one too many: it holds 16
    assert limit.limit == 16
    limit.done(limit.take(), Outcome.OVERLOAD, now=0.0)  # a timeout says nothing of its size
    assert limit.limit == 8
    for generation in sent[:-1]:
        limit.done(generation, Outcome.OK, now=0.0)
    before = limit.limit
    limit.done(limit.take(), Outcome.BUSY, now=0.0)  # refused with nothing of ours in flight
    assert limit.limit == before / 2


def test_a_burst_refused_beyond_capacity_leaves_the_limit_at_the_capacity() -> None:
    limit = AdaptiveLimit(floor=1, ceiling=128, start=128)
    sent = [limit.take() for _ in range(100)]
    for generation in sent[16:]:  # the endpoint took the first sixteen
        limit.done(generation, Outcome.BUSY, now=0.0)
    assert limit.limit == 16 and limit.in_flight == 16


async def test_a_job_sent_back_by_a_refusal_keeps_its_place_in_line() -> None:
    clock = Clock()
    slots = _slots(clock, a=1)
    held = await slots.acquire(["a"], since=0.0)
    clock.advance(1.0)
    newcomer = asyncio.create_task(slots.acquire(["a"]))  # asked at 1.0
    await _settle()
    veteran = asyncio.create_task(slots.acquire(["a"], since=0.5))  # first asked at 0.5
    await _settle()
    slots.release(held, Outcome.OK)
    await _settle()
    assert veteran.done() and not newcomer.done()
    slots.release(veteran.result(), Outcome.OK)
    await _settle()
    assert newcomer.done()
    slots.release(newcomer.result(), Outcome.OK)


async def test_two_waiters_asking_at_the_same_instant_are_both_served() -> None:
    slots = _slots(Clock(), a=1)
    held = await slots.acquire(["a"])
    first = asyncio.create_task(slots.acquire(["a"], since=0.0))
    second = asyncio.create_task(slots.acquire(["a"], since=0.0))
    await _settle()
    slots.release(held, Outcome.OK)
    await _settle()
    assert first.done() and not second.done()
    assert slots.release(first.result(), Outcome.OK) == 0  # in flight before the handover
    await _settle()
    assert second.done()
    slots.release(second.result(), Outcome.OK)
