"""FairScheduler: global and per-user caps, first come first served, positions reported."""

from __future__ import annotations

import asyncio

from bot.services.ordering import ChatQueue, FairScheduler


async def test_caps_and_order() -> None:
    sched = FairScheduler(total=2, per_user=1)
    release = asyncio.Event()
    started: list[str] = []
    positions: dict[str, list[int]] = {}

    async def job(name: str, user: int) -> None:
        async def told(pos: int) -> None:
            positions.setdefault(name, []).append(pos)

        async with sched.slot(user, told):
            started.append(name)
            await release.wait()

    tasks = [
        asyncio.create_task(job(n, u)) for n, u in (("a1", 1), ("a2", 1), ("b1", 2), ("c1", 3))
    ]
    await asyncio.sleep(0.05)
    # a1 and b1 run (a2 waits for user 1's cap; c1 for the global cap)
    assert started == ["a1", "b1"]
    assert positions["a2"] == [1] and positions["c1"] == [2]
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(started) == ["a1", "a2", "b1", "c1"]


async def test_waiters_are_served_first_come_first_served() -> None:
    sched = FairScheduler(total=1, per_user=1)
    order: list[str] = []
    gate = asyncio.Event()

    async def job(name: str, user: int) -> None:
        async with sched.slot(user):
            order.append(name)
            await gate.wait()

    first = asyncio.create_task(job("u1-1", 1))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(job(n, u)) for n, u in (("u1-2", 1), ("u2-1", 2))]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(first, *rest)
    assert order == ["u1-1", "u1-2", "u2-1"]


async def test_chat_queue_counts_and_cleans_up() -> None:
    queue = ChatQueue()
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def hold() -> None:
        async with queue.turn("c"):
            inside.set()
            await leave.wait()

    task = asyncio.create_task(hold())
    await inside.wait()
    assert queue.ahead("c") == 1
    leave.set()
    await task
    assert queue.ahead("c") == 0


async def test_a_users_requests_upstream_in_other_replicas_count_against_the_cap() -> None:
    elsewhere = {7: 2, 8: 1}  # user -> requests upstream in the other replicas now

    async def count(user_id: int) -> int:
        return elsewhere.get(user_id, 0)

    scheduler = FairScheduler(total=10, per_user=2, elsewhere=count, recheck=0.01)
    told: list[int] = []

    async def on_wait(position: int) -> None:
        told.append(position)

    entered: list[int] = []

    async def ask(user_id: int) -> None:
        async with scheduler.slot(user_id, on_wait):
            entered.append(user_id)
            await asyncio.sleep(0.05)

    seven = asyncio.create_task(ask(7))
    await asyncio.gather(ask(8), ask(9))  # 8 has room for one more; 9 has nothing elsewhere
    assert sorted(entered) == [8, 9] and told == [1]  # 7 waits, and hears it once
    elsewhere[7] = 1  # one of them finished over there
    await asyncio.wait_for(seven, 1.0)
    assert entered[-1] == 7 and told == [1]
