"""One refusal an hour per person, in memory of bounded size."""

from __future__ import annotations

from bot.telegram.callback_data import decode
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


def test_people_refused_over_an_hour_ago_take_no_room() -> None:
    clock = Clock(0.0)
    memory = RefusalMemory(every=3600.0, size=3, clock=clock.monotonic)
    assert memory.should_tell(1) and memory.should_tell(2)
    clock.now += 3600.0
    assert memory.should_tell(3)
    assert len(memory) == 1  # the two expired refusals are gone, not waiting to be pushed out
    assert memory.should_tell(4) and memory.should_tell(5)
    assert not memory.should_tell(3)  # within its hour, and not pushed out by 4 and 5


def test_row_of_names_rows_only_with_ids_the_database_can_hold() -> None:
    def row(data: str) -> tuple[str, int] | None:
        return row_of(decode(data))

    assert row("regen:12") == ("job", 12)
    assert row("var:12") == ("job", 12)
    assert row("orig:3") == ("image", 3)
    assert row("hist:3") == ("image", 3)
    # ids the database cannot hold are malformed data now: they name no row at all
    assert row("regen:1234567890123456789012345678901234567890") is None
    assert row("hist:9223372036854775808") is None
    assert row("orig:١٢") is None
    assert row("histp:1") is None and row("new") is None and row("") is None
