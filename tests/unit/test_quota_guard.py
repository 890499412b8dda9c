"""QuotaService.guard: one request at a time per user and per group, never one for all."""

from __future__ import annotations

import asyncio

import pytest

from bot.services.quotas import QuotaService
from bot.services.types import Who


def who(user: int, chat: int, chat_type: str = "private") -> Who:
    return Who(user, "x", None, "en", chat, chat_type)


@pytest.fixture
def quotas() -> QuotaService:
    return QuotaService(None, per_user=0, per_chat=0)  # type: ignore[arg-type]


async def test_different_users_do_not_wait_for_each_other(quotas: QuotaService) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with quotas.guard(who(1, 1)):
            entered.set()
            await release.wait()

    task = asyncio.create_task(first())
    await entered.wait()
    # another user gets in while the first is inside
    async with quotas.guard(who(2, 2)):
        pass
    release.set()
    await task
    assert quotas._locks == {}


async def test_same_user_and_same_group_are_serialised(quotas: QuotaService) -> None:
    order: list[str] = []

    async def job(name: str, w: Who) -> None:
        async with quotas.guard(w):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    group = -100
    await asyncio.gather(
        job("a", who(1, 1)),
        job("b", who(1, 1)),  # same user, same private chat
        job("c", who(2, group, "group")),
        job("d", who(3, group, "group")),  # another user, same group
    )
    for x, y in (("a", "b"), ("c", "d")):
        i, j = order.index(f"{x}+"), order.index(f"{y}+")
        assert order.index(f"{x}-") < j or order.index(f"{y}-") < i
    assert quotas._locks == {}


async def test_cancelled_waiter_does_not_release_the_holder(quotas: QuotaService) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with quotas.guard(who(1, 1)):
            inside.set()
            await release.wait()

    async def waiter() -> None:
        async with quotas.guard(who(1, 1)):
            pass

    h = asyncio.create_task(holder())
    await inside.wait()
    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    w.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w
    assert quotas._locks[("user", 1)].locked()  # still the holder's
    release.set()
    await h
    assert quotas._locks == {}
