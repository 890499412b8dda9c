"""bot/storage/subjects.py on plain data: which user and chat rows a request must write."""

from __future__ import annotations

from typing import Any

import pytest

from bot.services.types import Who
from bot.storage import subjects as subjects_module
from bot.storage.subjects import LAST_SEEN_RESOLUTION, Subjects


class Recorder:
    """Stands in for the repository: records the upserts a unit of work makes."""

    def __init__(self) -> None:
        self.written_users: dict[int, Any] = {}
        self.written_chats: dict[int, Any] = {}

    async def upsert_user(self, user_id: int, *values: Any) -> None:
        self.written_users[user_id] = values

    async def upsert_chat(self, chat_id: int, *values: Any) -> None:
        self.written_chats[chat_id] = values


def who(user: int, name: str = "Ann", title: str | None = "G") -> Who:
    return Who(user, name, None, "en", -user, "group", title)


async def _request(subjects: Subjects, w: Who, *, commit: bool = True) -> Recorder:
    repo = Recorder()
    await subjects.write_due(repo, w)  # type: ignore[arg-type]
    if commit:
        subjects.note(repo)  # type: ignore[arg-type]
    return repo


async def test_rows_are_written_when_new_or_changed_and_remembered_once_committed() -> None:
    now = [0.0]
    subjects = Subjects(clock=lambda: now[0])
    first = await _request(subjects, who(1))
    assert set(first.written_users) == {1} and set(first.written_chats) == {-1}
    again = await _request(subjects, who(1))
    assert again.written_users == again.written_chats == {}
    renamed = await _request(subjects, who(1, name="Bea", title="H"))
    assert renamed.written_users == {1: ("Bea", None, "en")}
    assert renamed.written_chats == {-1: ("group", "H")}
    rolled_back = await _request(subjects, who(1, name="Cy"), commit=False)
    assert set(rolled_back.written_users) == {1}
    assert set((await _request(subjects, who(1, name="Cy"))).written_users) == {1}


async def test_a_user_is_written_again_once_last_seen_is_stale() -> None:
    now = [0.0]
    subjects = Subjects(clock=lambda: now[0])
    await _request(subjects, who(1))
    now[0] += LAST_SEEN_RESOLUTION - 1
    assert (await _request(subjects, who(1))).written_users == {}
    now[0] += 2
    stale = await _request(subjects, who(1))
    assert set(stale.written_users) == {1} and stale.written_chats == {}


async def test_the_memory_is_bounded_and_forgets_the_least_recently_used_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subjects_module, "MAX_REMEMBERED", 2)
    subjects = Subjects(clock=lambda: 0.0)
    for user in (1, 2):
        await _request(subjects, who(user))
    await _request(subjects, who(1))  # 1 is used again: 2 is now the oldest
    await _request(subjects, who(3))
    assert (await _request(subjects, who(1))).written_chats == {}
    assert set((await _request(subjects, who(2))).written_chats) == {-2}
