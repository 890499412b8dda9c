"""One refusal an hour per person, in memory of bounded size."""

from __future__ import annotations

from bot.telegram.gate import RefusalMemory, row_of
from tests.unit.fakeclock import Clock


def test_one_refusal_an_hour_per_person() -> None:
    clock = Clock(1000.0)
    memory = RefusalMemory(every=3600.0, clock=clock.monotonic)
    assert memory.should_tell(1)
    assert [memory.should_tell(1) for _ in range(4)] == [False] * 4
    assert memory.should_tell(2)
    clock.now += 3599.0
    assert not memory.should_tell(1)
    clock.now += 1.0
    assert memory.should_tell(1)
    memory.forget(2)
    assert memory.should_tell(2)


def test_memory_is_bounded_and_forgets_the_oldest() -> None:
    clock = Clock(0.0)
    memory = RefusalMemory(every=3600.0, size=100, clock=clock.monotonic)
    for user in range(10_000):
        assert memory.should_tell(user)
    assert len(memory) == 100
    assert not memory.should_tell(9_999)
    assert memory.should_tell(0)  # forgotten long ago: told again (at most once more)


def test_row_of_names_rows_only_with_ids_the_database_can_hold() -> None:
    assert row_of("regen:12") == ("job", 12)
    assert row_of("var:12") == ("job", 12)
    assert row_of("orig:3") == ("image", 3)
    assert row_of("hist:3") == ("image", 3)
    assert row_of("regen:1234567890123456789012345678901234567890") == ("job", -1)
    assert row_of("hist:9223372036854775808") == ("image", -1)
    assert row_of("orig:١٢") == ("image", -1)
    assert row_of("histp:1") is None and row_of("new") is None and row_of("") is None
