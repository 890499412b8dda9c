"""The repository on a migrated SQLite file: every query gives back typed rows whose fields
come by name, and each chat and user sees only its own rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.services.types import Who
from bot.storage import db
from bot.storage.database import Database
from bot.storage.models import ImageSource, JobStatus, LedgerKind
from bot.storage.repositories import Repo
from bot.storage.rows import (
    ChatRow,
    HistoryRow,
    JobRow,
    JobTurn,
    PrefsRow,
    StatRow,
    StoredImage,
    UserRow,
)

ANN = Who(1, "Ann", "ann", "en", -100, "group", "X")  # user A in chat X
BOB = Who(2, "Bob", None, "zh", -200, "supergroup", "Y")  # user B in chat Y


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    yield Database(db.create_sessionmaker(engine))
    await engine.dispose()


async def _photo(repo: Repo, who: Who, sha: str, size: int, message_id: int) -> int:
    image_id = await repo.insert_image(
        chat_id=who.chat_id,
        source=ImageSource.USER,
        sha256=sha,
        size_bytes=size,
        mime="image/jpeg",
        width=40 + size,
        height=30 + size,
        tg_file_id=f"file-{sha}",
        user_id=who.user_id,
    )
    await repo.add_image_message(who.chat_id, message_id, image_id)
    return image_id


async def _job(repo: Repo, who: Who, prompt: str, inputs: list[int]) -> int:
    return await repo.insert_job(
        inputs,
        chat_id=who.chat_id,
        thread_id=3,
        user_id=who.user_id,
        request_message_id=77,
        kind="edit",
        prompt=prompt,
        dialect="gemini",
        model="m-1",
        aspect_ratio="4:3",
        image_size="2K",
        n=2,
        status=JobStatus.RUNNING,
        attempts=1,
    )


@dataclass
class Two:
    ann_photo: int
    bob_photo: int
    ann_job: int
    ann_result: int


@pytest.fixture
async def two(database: Database) -> Two:
    """A photo of Ann in chat X, one of Bob in chat Y, and a job of Ann's that edited hers."""
    async with database.write(ANN) as repo:
        ann_photo = await _photo(repo, ANN, "a" * 64, 11, message_id=5)
    async with database.write(BOB) as repo:
        bob_photo = await _photo(repo, BOB, "b" * 64, 22, message_id=5)  # the same message id
    async with database.write(ANN) as repo:
        ann_job = await _job(repo, ANN, "make it blue", [ann_photo])
        ann_result = await repo.insert_image(
            chat_id=ANN.chat_id,
            source=ImageSource.BOT,
            sha256="c" * 64,
            size_bytes=33,
            mime="image/png",
            width=8,
            height=9,
            job_id=ann_job,
            user_id=ANN.user_id,
        )
        await repo.update_job(ann_job, model_parts='[{"text": "done"}]')
    return Two(ann_photo, bob_photo, ann_job, ann_result)


async def test_an_image_comes_back_by_name_in_its_own_chat_only(
    database: Database, two: Two
) -> None:
    ann = StoredImage(two.ann_photo, "a" * 64, "image/jpeg", 51, 41, 11, "file-" + "a" * 64)
    bob = StoredImage(two.bob_photo, "b" * 64, "image/jpeg", 62, 52, 22, "file-" + "b" * 64)
    async with database.read() as repo:
        assert await repo.image(two.ann_photo) == ann
        assert await repo.image(two.bob_photo) == bob
        assert await repo.image_in_chat(two.ann_photo, ANN.chat_id) == ann
        assert await repo.image_in_chat(two.ann_photo, BOB.chat_id) is None
        assert await repo.image_by_message(ANN.chat_id, 5) == ann
        assert await repo.image_by_message(BOB.chat_id, 5) == bob
        assert await repo.images([two.bob_photo, 999, two.ann_photo]) == [bob, ann]


async def test_who_owns_a_row_is_told_per_chat(database: Database, two: Two) -> None:
    async with database.read() as repo:
        assert await repo.image_owner_in_chat(two.ann_photo, ANN.chat_id) == (True, 1)
        assert await repo.image_owner_in_chat(two.ann_photo, BOB.chat_id) == (False, None)
        assert await repo.image_owner_in_chat(two.bob_photo, BOB.chat_id) == (True, 2)
        assert await repo.job_owner_in_chat(two.ann_job, ANN.chat_id) == (True, 1)
        assert await repo.job_owner_in_chat(two.ann_job, BOB.chat_id) == (False, None)
        assert await repo.job_owner(two.ann_job) == 1


async def test_users_and_chats_come_back_as_written(database: Database, two: Two) -> None:
    async with database.read() as repo:
        assert await repo.user(1) == UserRow(1, "Ann", "ann", "en")
        assert await repo.user(2) == UserRow(2, "Bob", None, "zh")
        assert await repo.chat(-100) == ChatRow(-100, "group", "X")
        assert await repo.chat(-200) == ChatRow(-200, "supergroup", "Y")
        assert await repo.user(3) is None and await repo.chat(-300) is None


async def test_a_job_comes_back_by_name_with_its_inputs_and_turn(
    database: Database, two: Two
) -> None:
    async with database.read() as repo:
        job = await repo.job(two.ann_job)
        photo = await repo.image(two.ann_photo)
        assert await repo.job_inputs(two.ann_job) == [photo]
        assert await repo.job_input_ids(two.ann_job) == [two.ann_photo]
        assert await repo.job_turn(two.ann_job) == JobTurn("make it blue", '[{"text": "done"}]')
        assert [i.id for i in await repo.outputs_of_job(two.ann_job)] == [two.ann_result]
        assert await repo.job(two.ann_job + 1) is None
    assert job == JobRow(
        id=two.ann_job,
        chat_id=-100,
        thread_id=3,
        user_id=1,
        request_message_id=77,
        status=JobStatus.RUNNING,
        prompt="make it blue",
        model="m-1",
        aspect_ratio="4:3",
        image_size="2K",
        n=2,
        search=False,
        attempts=1,
        upstream_at=None,
        upstream_ms=None,
        model_text=None,
    )


async def test_a_chats_history_holds_its_images_only_newest_first(
    database: Database, two: Two
) -> None:
    async with database.read() as repo:
        ann = await repo.history_of_chat(ANN.chat_id, 10)
        bob = await repo.history_of_chat(BOB.chat_id, 10)
        assert await repo.count_images_of_chat(ANN.chat_id) == 2
        assert await repo.history_of_chat(ANN.chat_id, 1, offset=1) == ann[1:]
    assert [(h.image.id, h.prompt) for h in ann] == [
        (two.ann_result, "make it blue"),
        (two.ann_photo, None),
    ]
    assert [(h.image.id, h.prompt) for h in bob] == [(two.bob_photo, None)]
    assert all(isinstance(h, HistoryRow) and h.created_at.tzinfo for h in ann + bob)


async def test_stored_bytes_and_used_images_are_counted_per_user_and_chat(
    database: Database, two: Two
) -> None:
    today = datetime.now(UTC) - timedelta(hours=1)
    async with database.read() as repo:
        assert await repo.stored_bytes_since(1, today) == 11 + 33
        assert await repo.stored_bytes_since(2, today) == 22
        # Ann's job made one image and, still running, may make its n=2 more
        assert await repo.images_used("user", 1, today) == 3
        assert await repo.images_used("chat", -100, today) == 3
        assert await repo.images_used("user", 2, today) == 0
        assert await repo.images_used("chat", -200, today) == 0


async def test_a_chats_inputs_current_image_and_album(database: Database, two: Two) -> None:
    async with database.write(ANN) as repo:
        assert await repo.chat_inputs(ANN.chat_id, 0) is None
        await repo.set_current_image(ANN.chat_id, 0, two.ann_result)
        await repo.keep_album(BOB.chat_id, 0, [two.bob_photo])
    async with database.read() as repo:
        ann, bob = await repo.chat_inputs(ANN.chat_id, 0), await repo.chat_inputs(BOB.chat_id, 0)
        assert ann is not None and bob is not None
        assert (ann.pending_album, ann.current) == (None, await repo.image(two.ann_result))
        assert (bob.pending_album, bob.current) == ([two.bob_photo], None)
        assert await repo.current_image(ANN.chat_id, 0) == ann.current
        assert await repo.chat_inputs(ANN.chat_id, 1) is None  # another topic
    async with database.write() as repo:
        await repo.drop_album(BOB.chat_id, 0)
        await repo.forget_current(ANN.chat_id, 0)
    async with database.read() as repo:
        assert await repo.chat_inputs(BOB.chat_id, 0) == (await repo.chat_inputs(ANN.chat_id, 0))


async def test_prefs_come_back_by_name_and_changes_keep_the_rest(
    database: Database, two: Two
) -> None:
    async with database.write() as repo:
        assert await repo.prefs_of_chat(ANN.chat_id) is None
        first = await repo.update_prefs(ANN.chat_id, {"aspect_ratio": "16:9", "model": "m-2"})
        second = await repo.update_prefs(ANN.chat_id, {"refine": False})
        third = await repo.update_prefs(ANN.chat_id, {"search": True})
    assert first == PrefsRow(True, "16:9", None, "photo", "m-2", None, False)
    assert second == PrefsRow(False, "16:9", None, "photo", "m-2", None, False)
    assert third == PrefsRow(False, "16:9", None, "photo", "m-2", None, True)
    second = third
    async with database.read() as repo:
        assert await repo.prefs_of_chat(ANN.chat_id) == second
        assert await repo.prefs_of_chat(BOB.chat_id) is None


async def test_an_access_rule_and_a_limit_of_one_subject_are_set_apart(
    database: Database,
) -> None:
    async with database.write() as repo:
        await repo.set_allowed("user", 1, True, by=9)
        await repo.set_daily_limit("user", 1, 5, by=9)
        await repo.set_allowed("chat", -200, False, by=9)
        await repo.set_daily_limit("chat", -100, 7, by=9)
        await repo.set_daily_limit("chat", -100, None, by=9)
    async with database.read() as repo:
        assert await repo.access_rules() == {("user", 1): True, ("chat", -200): False}
        assert await repo.daily_limit_overrides() == {("user", 1): 5}


async def test_settling_reads_running_and_unanswered_jobs_as_rows(
    database: Database, two: Two
) -> None:
    async with database.read() as repo:
        [running] = await repo.running_jobs()
    assert running.id == two.ann_job and running.upstream_at is None
    async with database.write() as repo:
        await repo.mark_upstream(two.ann_job)
        await repo.restart_job(two.ann_job)
        await repo.interrupt_jobs([two.ann_job], "stopped")
    async with database.read() as repo:
        [told] = await repo.unanswered_jobs()
        assert await repo.running_jobs() == []
    assert (told.id, told.status, told.attempts) == (two.ann_job, JobStatus.FAILED, 2)
    assert told.upstream_at is not None
    async with database.write() as repo:
        await repo.mark_delivered(two.ann_job)
    async with database.read() as repo:
        assert await repo.unanswered_jobs() == []


async def test_stats_group_successful_jobs_by_key(database: Database, two: Two) -> None:
    since = datetime.now(UTC) - timedelta(days=1)
    async with database.write(BOB) as repo:
        await repo.update_job(two.ann_job, status=JobStatus.SUCCEEDED, cost=0.5)
        await _job(repo, BOB, "still running", [])  # not counted
    async with database.read() as repo:
        assert await repo.job_stats(None, since, 1) == [StatRow("all", 1, 1, 0.5)]
        assert await repo.job_stats("user", since, 10) == [StatRow("1", 1, 1, 0.5)]
        assert await repo.job_stats("chat", since, 10) == [StatRow("-100", 1, 1, 0.5)]
        assert await repo.job_stats("model", since, 10) == [StatRow("m-1", 1, 1, 0.5)]
        [day] = await repo.job_stats("day", since, 2)
    assert (day.jobs, day.images, day.cost) == (1, 1, 0.5)


async def test_ids_past_2_31_from_telegram_and_from_the_tables(db_url: str) -> None:
    """Telegram's ids (users past 2**32, supergroups, message and topic ids) and the tables'
    own row ids past 2**31 are stored and read back whole (BIGINT on PostgreSQL)."""
    big = 2**31 + 5
    ann = Who(7_000_000_001, "Ann", "ann", "en", -1001234567890, "supergroup", "G", thread_id=big)
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    database = Database(db.create_sessionmaker(engine))
    async with engine.begin() as conn:  # as if billions of rows had come before
        for table in ("jobs", "images", "image_messages", "ledger", "chat_styles"):
            if conn.dialect.name == "postgresql":
                seq = f"pg_get_serial_sequence('{table}', 'id')"
                await conn.execute(text(f"SELECT setval({seq}, {big})"))
            else:  # AUTOINCREMENT's counter (a table rebuilt by a migration may have one)
                forget = text("DELETE FROM sqlite_sequence WHERE name = :t")
                await conn.execute(forget, {"t": table})
                await conn.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"),
                    {"t": table, "n": big},
                )
    async with database.write(ann) as repo:
        photo = await _photo(repo, ann, "d" * 64, 5, message_id=big + 1)
        job = await _job(repo, ann, "a kite", [photo])
        assert await repo.add_entry(LedgerKind.RESERVE, ann.user_id, -3, job_id=job, chat_id=big)
        await repo.set_current_image(ann.chat_id, ann.thread_id, photo)
        assert await repo.add_chat_style(ann.chat_id, "noir", "noir {prompt}", ann.user_id)
    assert photo > big and job > big
    async with database.read() as repo:
        shown = await repo.image_by_message(ann.chat_id, big + 1)
        assert shown is not None and shown.id == photo
        row = await repo.job(job)
        assert row is not None and (row.user_id, row.chat_id) == (ann.user_id, ann.chat_id)
        current = await repo.current_image(ann.chat_id, big)
        assert current is not None and current.id == photo
        [entry] = await repo.entries_of_job(job)
        assert entry.id > big and entry.chat_id == big
        [style] = await repo.chat_styles(ann.chat_id)
        assert style.id > big
    await engine.dispose()


async def test_names_longer_than_their_columns_are_cut_not_refused(database: Database) -> None:
    """SQLite keeps text past a VARCHAR's length, PostgreSQL refuses it: what Telegram sends
    is cut to fit before it is written, alike on both."""
    long = Who(3, "N" * 300, "u" * 80, "x-" * 20, -300, "supergroup", "T" * 300)
    async with database.write(long) as repo:
        await repo.set_current_image(long.chat_id, 0, None)
    async with database.read() as repo:
        assert await repo.user(3) == UserRow(3, "N" * 256, "u" * 64, ("x-" * 20)[:16])
        assert await repo.chat(-300) == ChatRow(-300, "supergroup", "T" * 256)
