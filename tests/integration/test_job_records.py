"""The services on a migrated SQLite file: what one job writes, and how few statements it takes.

The job path was trimmed (users and chats written when new, no quota counting without a quota,
one statement per upsert, no re-reads of rows just written); these tests pin what must still be
recorded and the statement counts, so a regression in either shows.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.providers.base import GeneratedImage, ImagePart, ImageResult, TextPart, Turn
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.gemini import contents_of
from bot.services.errors import UserInputError
from bot.services.generation import GenerationService
from bot.services.images import ImageLibrary
from bot.services.prefs import Prefs, PrefsService
from bot.services.quotas import QuotaExceededError, QuotaService
from bot.services.types import JobOptions, StoredImage, Who
from bot.storage import db
from bot.storage import subjects as subjects_module
from bot.storage.blobs import LocalBlobStore
from bot.storage.database import Database
from bot.storage.models import (
    Chat,
    ChatState,
    Image,
    ImageMessage,
    Job,
    JobStatus,
    SubjectKind,
    User,
)
from tests.integration.asking import ask


def _image(fmt: str, color: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


class Provider:
    """Answers at once with a new PNG per call, or with the error it is given."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None
        self.requests: list[Any] = []

    async def generate(self, request: Any, progress: Any = None) -> ImageResult:
        self.calls += 1
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        png = _image("PNG", (self.calls % 256, 10, 20))
        return ImageResult([GeneratedImage(png, "image/png")], endpoint="ep", model=request.model)


@dataclass
class Env:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    database: Database
    now: list[float]  # the clock of the database's memory of users and chats
    provider: Provider
    quotas: QuotaService
    generation: GenerationService
    images: ImageLibrary
    statements: Counter[str]

    def count(self) -> int:
        return sum(self.statements.values())

    async def rows(self, model: type[Any]) -> list[Any]:
        async with self.sessions() as s:
            return list((await s.execute(select(model))).scalars().all())


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    await db.aupgrade(db_url)
    engine = db.create_engine(db_url)
    statements: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[" ".join(statement.split()[:3])] += 1

    sessions = db.create_sessionmaker(engine)
    # the services' statements run on the inline engine (SQLite files), the checks' on the async
    inline = db.inline_engine(sessions)
    for counted in (engine.sync_engine, *([inline] if inline is not None else [])):
        event.listen(counted, "before_cursor_execute", count)
    now = [1000.0]
    database = Database(sessions, clock=lambda: now[0])
    blobs = LocalBlobStore(tmp_path / "images")
    provider = Provider()
    quotas = QuotaService(database, per_user=0, per_chat=0)
    generation = GenerationService(
        database,
        blobs,
        provider,  # type: ignore[arg-type]
        model="gemini-2.5-flash-image",
        dialect="openai-chat",
        quotas=quotas,
        pricing=lambda endpoint, model, size: 0.04,
    )
    images = ImageLibrary(database, blobs)
    yield Env(engine, sessions, database, now, provider, quotas, generation, images, statements)
    await engine.dispose()


def who(user: int = 7, chat: int = 7, name: str = "Ann", **kw: Any) -> Who:
    return Who(user, name, "ann", "en", chat, kw.pop("chat_type", "private"), **kw)


async def take_photo(env: Env, w: Who, message_id: int, *, current: bool = False) -> StoredImage:
    return await env.images.take_user_image(
        w,
        _image("JPEG", (200, 30, 30)),
        file_id=f"f{message_id}",
        file_unique_id=f"u{message_id}",
        message_id=message_id,
        make_current=current,
    )


# --- what a job records ----------------------------------------------------------------------


async def test_a_photo_edit_records_everything_before_it_returns(env: Env) -> None:
    w = who()
    photo = await take_photo(env, w, 10)
    outcome = await ask(
        env.generation,
        w,
        "make it blue",
        [photo],
        message_id=10,
        options=JobOptions("gemini-2.5-flash-image"),
    )
    [job] = await env.rows(Job)
    assert (job.status, job.endpoint, job.kind, job.user_id) == (
        JobStatus.SUCCEEDED,
        "ep",
        "edit",
        7,
    )
    assert job.cost == pytest.approx(0.04) and job.upstream_ms is not None
    assert job.finished_at is not None
    images = {i.id: i for i in await env.rows(Image)}
    [result] = outcome.images
    assert images[result.id].job_id == job.id and images[photo.id].source == "user"
    assert result.id > 0 and result.sha256 == images[result.id].sha256
    [state] = await env.rows(ChatState)
    assert state.current_image_id == result.id
    [user], [chat] = await env.rows(User), await env.rows(Chat)
    assert (user.first_name, user.username, chat.type) == ("Ann", "ann", "private")


async def test_a_failure_is_recorded_on_the_job(env: Env) -> None:
    env.provider.fail = ProviderError(ProviderErrorKind.RATE_LIMITED, "slow down", endpoint="ep")
    with pytest.raises(ProviderError):
        await ask(env.generation, who(), "a cat", [], message_id=1)
    [job] = await env.rows(Job)
    assert job.status == JobStatus.FAILED and job.error_code == "rate_limited"
    assert job.error_detail == "[ep] slow down" and job.finished_at is not None


async def test_user_images_go_up_without_a_second_decode_results_with_one(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import imaging

    seen: list[bool] = []
    real = imaging.anormalise_input

    async def spy(data: bytes, **kw: Any) -> Any:
        seen.append(kw["probed"])
        return await real(data, **kw)

    monkeypatch.setattr(imaging, "anormalise_input", spy)
    w = who()
    photo = await take_photo(env, w, 10)
    outcome = await ask(env.generation, w, "blue", [photo], message_id=10)
    await ask(env.generation, w, "bluer", outcome.images, message_id=11)
    assert seen == [True, False]


# --- users and chats: written when new or changed, never lost to a rollback -----------------


async def test_a_fresh_photo_job_writes_the_user_and_chat_once(env: Env) -> None:
    w = who(user=8, chat=8)
    photo = await take_photo(env, w, 10)
    await ask(env.generation, w, "blue", [photo], message_id=10)
    assert env.statements["INSERT INTO users"] == 1
    assert env.statements["INSERT INTO chats"] == 1


async def test_new_names_and_titles_are_written(env: Env) -> None:
    await ask(
        env.generation, who(chat=-5, chat_type="group", chat_title="Old"), "a", [], message_id=1
    )
    w = who(name="Bea", chat=-5, chat_type="supergroup", chat_title="New")
    await ask(env.generation, w, "b", [], message_id=2)
    [user], [chat] = await env.rows(User), await env.rows(Chat)
    assert user.first_name == "Bea"
    assert (chat.type, chat.title) == ("supergroup", "New")


async def test_a_title_written_by_settings_is_not_mistaken_for_the_requests_one(env: Env) -> None:
    group = who(chat=-5, chat_type="group", chat_title="A")
    await ask(env.generation, group, "a", [], message_id=1)
    await PrefsService(env.database).update(-5, "group", "B", refine=False)
    await ask(env.generation, group, "b", [], message_id=2)
    [chat] = await env.rows(Chat)
    assert chat.title == "A"


async def test_last_seen_is_refreshed_after_the_resolution(env: Env) -> None:
    await ask(env.generation, who(), "a", [], message_id=1)
    first = (await env.rows(User))[0].last_seen_at
    await ask(env.generation, who(), "b", [], message_id=2)
    assert env.statements["INSERT INTO users"] == 1
    env.now[0] += subjects_module.LAST_SEEN_RESOLUTION + 1
    await ask(env.generation, who(), "c", [], message_id=3)
    assert env.statements["INSERT INTO users"] == 2
    assert (await env.rows(User))[0].last_seen_at > first


async def test_a_rolled_back_write_is_not_taken_for_a_stored_user(env: Env) -> None:
    with pytest.raises(RuntimeError):
        async with env.database.write(who(user=9, chat=9)):
            raise RuntimeError("boom")
    assert await env.rows(User) == []
    await ask(env.generation, who(user=9, chat=9), "a", [], message_id=1)  # FK needs the rows
    assert [u.id for u in await env.rows(User)] == [9]


async def test_services_of_one_database_share_what_they_know(env: Env) -> None:
    await ask(env.generation, who(), "a", [], message_id=1)  # writes the user and the chat
    await take_photo(env, who(), 2)
    assert env.statements["INSERT INTO users"] == env.statements["INSERT INTO chats"] == 1


# --- quotas ------------------------------------------------------------------------------------


async def test_no_quota_no_counting(env: Env) -> None:
    await env.quotas.check(who(), 1)  # reads the /quota overrides once
    env.statements.clear()
    await env.quotas.check(who(), 1)
    await env.quotas.check(who(chat=-3, chat_type="group"), 1)
    assert env.count() == 0


async def test_a_quota_override_applies_at_once_and_default_lifts_it(env: Env) -> None:
    await ask(env.generation, who(), "a", [], message_id=1)
    await env.quotas.set_limit(SubjectKind.USER, 7, 1, by=1)
    with pytest.raises(QuotaExceededError):
        await ask(env.generation, who(), "b", [], message_id=2)
    await env.quotas.set_limit(SubjectKind.USER, 7, None, by=1)
    await ask(env.generation, who(), "c", [], message_id=3)
    assert (await env.quotas.usage(SubjectKind.USER, 7)).limit is None


async def test_overrides_stored_earlier_are_honoured_after_a_restart(env: Env) -> None:
    await env.quotas.set_limit(SubjectKind.CHAT, -3, 1, by=1)
    restarted = QuotaService(env.database, per_user=0, per_chat=0)
    group = who(chat=-3, chat_type="group")
    await restarted.check(group, 1)
    with pytest.raises(QuotaExceededError):
        await restarted.check(group, 2)
    usage = await restarted.usage(SubjectKind.CHAT, -3)
    assert (usage.used, usage.limit) == (0, 1)


async def test_running_jobs_count_against_the_quota(env: Env) -> None:
    quotas = QuotaService(env.database, per_user=2, per_chat=0)
    await ask(env.generation, who(), "a", [], message_id=1)
    async with env.sessions.begin() as s:
        running = Job(chat_id=7, user_id=7, kind="generate", prompt="p", dialect="d", model="m")
        running.status = JobStatus.RUNNING
        s.add(running)
    assert await quotas.used(SubjectKind.USER, 7) == 2
    with pytest.raises(QuotaExceededError):
        await quotas.check(who(), 1)


# --- deliveries and the inputs of a text -------------------------------------------------------


async def test_a_delivery_keeps_the_first_record_and_the_first_file_id(env: Env) -> None:
    w = who()
    a = await take_photo(env, w, 10)
    b = await take_photo(env, w, 11)
    await env.images.record_delivery(7, 50, a.id, "first")
    await env.images.record_delivery(7, 50, b.id, "second")  # the same message again
    await env.images.record_delivery(7, 51, a.id, "later")
    [shown] = [m for m in await env.rows(ImageMessage) if m.message_id == 50]
    assert shown.image_id == a.id
    files = {i.id: i.tg_file_id for i in await env.rows(Image)}
    assert files[a.id] == "f10"  # it came with a file id already
    assert (await env.images.for_message(7, 51)) == StoredImage.of(
        next(i for i in await env.rows(Image) if i.id == a.id)
    )


async def test_a_result_gets_its_file_id_once(env: Env) -> None:
    outcome = await ask(env.generation, who(), "a", [], message_id=1)
    [result] = outcome.images
    await env.images.record_delivery(7, 2, result.id, "tg-1")
    await env.images.record_delivery(7, 3, result.id, "tg-2")
    rows = {i.id: i for i in await env.rows(Image)}
    assert rows[result.id].tg_file_id == "tg-1"


async def test_a_text_takes_the_waiting_album_in_order_then_the_current_image(env: Env) -> None:
    w = who()
    assert await env.images.for_text(7) == []
    a, b = await take_photo(env, w, 10), await take_photo(env, w, 11)
    current = await take_photo(env, w, 12, current=True)
    await env.images.keep_album(w, [b, a])
    assert [i.id for i in await env.images.for_text(7)] == [b.id, a.id]
    assert [i.id for i in await env.images.for_text(7)] == [current.id]  # album forgotten
    assert await env.images.for_text(7, refine=False) == []
    await env.images.keep_album(w, [a])
    assert [i.id for i in await env.images.for_text(7, refine=False)] == [a.id]


# --- rows written and read as Core statements: the same values as the ORM objects had ----------


async def test_what_a_job_returns_equals_its_rows(env: Env) -> None:
    w = who()
    photo = await take_photo(env, w, 10, current=True)
    outcome = await ask(env.generation, w, "blue", [photo], message_id=11)
    rows = {i.id: StoredImage.of(i) for i in await env.rows(Image)}
    assert rows[photo.id] == photo and photo.tg_file_id == "f10" and photo.job_id is None
    [result] = outcome.images
    assert rows[result.id] == result and result.job_id == outcome.job_id
    [job] = await env.rows(Job)
    assert (job.status, job.attempts, job.n, job.thread_id) == (JobStatus.SUCCEEDED, 1, 1, 0)
    assert job.created_at is not None and job.started_at is not None
    [image] = [i for i in await env.rows(Image) if i.id == result.id]
    assert image.created_at is not None and image.source == "bot"
    assert await env.generation.job_owner(outcome.job_id) == 7
    assert await env.generation.job_owner(outcome.job_id + 100) is None
    assert await env.images.for_text(7) == [result]


async def test_a_compose_records_its_inputs_in_order(env: Env) -> None:
    w = who()
    a, b, c = [await take_photo(env, w, m) for m in (10, 11, 12)]
    outcome = await ask(env.generation, w, "mix", [c, a, b], message_id=13)
    async with env.database.read() as repo:
        assert await repo.job_input_ids(outcome.job_id) == [c.id, a.id, b.id]
    [job] = await env.rows(Job)
    assert job.kind == "compose"


async def test_prefs_are_read_back_as_stored(env: Env) -> None:
    assert await PrefsService(env.database).get(-5) == Prefs()  # no row: the defaults
    await PrefsService(env.database).update(
        -5, "group", "G", refine=False, aspect_ratio="4:3", model="m", language="zh"
    )
    prefs = await PrefsService(env.database).get(-5)
    assert (prefs.refine, prefs.aspect_ratio, prefs.image_size) == (False, "4:3", None)
    assert (prefs.reply_mode, prefs.model, prefs.language) == ("photo", "m", "zh")


# --- a refused image: no row, and its file goes unless a row holds the same bytes --------------


def _blob_files(env: Env) -> list[Path]:
    root = env.images._blobs.root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_refused_image_leaves_no_row_and_no_file(env: Env) -> None:
    kept = await take_photo(env, who(), 10)
    with pytest.raises(UserInputError) as refused:
        await env.images.take_user_image(
            who(),
            b"not an image at all",
            file_id="x",
            file_unique_id="y",
            message_id=11,
            make_current=True,
        )
    assert refused.value.code == "image_not_image"
    assert [i.id for i in await env.rows(Image)] == [kept.id]
    assert [p.name for p in _blob_files(env)] == [kept.sha256]
    assert [m.message_id for m in await env.rows(ImageMessage)] == [10]


async def test_a_refused_images_file_stays_when_a_row_holds_the_same_bytes(env: Env) -> None:
    from bot.storage.models import ImageSource

    bad = b"\x89PNG\r\n\x1a\n broken"
    sha = await env.images._blobs.put(bad)
    async with env.sessions.begin() as s:
        s.add(Chat(id=7, type="private"))
        await s.flush()
        s.add(
            Image(
                chat_id=7,
                source=ImageSource.BOT,
                sha256=sha,
                size_bytes=len(bad),
                mime="image/png",
                width=1,
                height=1,
            )
        )
    with pytest.raises(UserInputError):
        await env.images.take_user_image(
            who(), bad, file_id=None, file_unique_id=None, message_id=1, make_current=False
        )
    assert [p.name for p in _blob_files(env)] == [sha]


async def test_a_known_chats_photo_edit_and_delivery_take_eleven_statements(env: Env) -> None:
    w = who()
    await ask(env.generation, w, "warm", [await take_photo(env, w, 1)], message_id=1)
    env.statements.clear()
    photo = await take_photo(env, w, 2)
    outcome = await ask(env.generation, w, "blue", [photo], message_id=2)
    await env.images.record_delivery(7, 3, outcome.images[0].id, "tg")
    await env.generation.mark_delivered(outcome.job_id)
    assert dict(env.statements) == {
        "INSERT INTO images": 2,
        "INSERT INTO image_messages": 2,
        "INSERT INTO jobs": 1,
        "INSERT INTO job_inputs": 1,
        # upstream_at (committed before the request leaves), the finish, delivered_at
        "UPDATE jobs SET": 3,
        "INSERT INTO chat_states": 1,
        "UPDATE images SET": 1,
    }


def _history_service(env: Env) -> GenerationService:
    """The gemini set-up: the fake provider's answers carry a model turn, as gemini's do."""
    provider = env.provider
    real = provider.generate

    async def with_turn(request: Any, progress: Any = None) -> ImageResult:
        result = await real(request, progress)
        result.model_turn = Turn(
            "model",
            [
                TextPart(f"turn {provider.calls}", {"thoughtSignature": f"sig-{provider.calls}"}),
                ImagePart("image/png", data=result.images[0].data),
            ],
        )
        return result

    provider.generate = with_turn  # type: ignore[method-assign]
    return GenerationService(
        env.database,
        env.images._blobs,
        provider,  # type: ignore[arg-type]
        model="gemini-2.5-flash-image",
        dialect="gemini",
        limits=None,
    )


async def test_a_gemini_refine_carries_the_turns_that_made_the_current_image(env: Env) -> None:
    generation = _history_service(env)
    w = who()
    photo = await take_photo(env, w, 1)
    first = await ask(generation, w, "one", [photo], message_id=2)
    second = await ask(generation, w, "two", first.images, message_id=3)
    await ask(generation, w, "three", second.images, message_id=4)
    third = env.provider.requests[-1]
    assert third.images == [] and [t.role for t in third.history] == ["user", "model"] * 2
    one, turn_one, two, turn_two = third.history
    assert one.parts == [
        TextPart("one"),
        ImagePart("image/jpeg", sha256=photo.sha256, data=await env.images.data(photo)),
    ]
    assert two.parts == [TextPart("two")]  # its input is the model turn before it
    assert turn_one.parts[0] == TextPart("turn 1", {"thoughtSignature": "sig-1"})
    assert turn_two.parts[0] == TextPart("turn 2", {"thoughtSignature": "sig-2"})
    [result] = second.images
    assert turn_two.parts[1] == ImagePart(
        result.mime, sha256=result.sha256, data=await env.images.data(result)
    )


async def test_a_job_row_of_the_old_gemini_shape_still_gives_its_history(env: Env) -> None:
    """Rows written before turns were neutral: Gemini parts, images as {"blob": sha256}."""
    generation = _history_service(env)
    w = who()
    first = await ask(generation, w, "one", [], message_id=2)
    [result] = first.images
    old_shape = [
        {"text": "here", "thoughtSignature": "sig-old"},
        {
            "inlineData": {"mimeType": "image/png", "blob": result.sha256},
            "thoughtSignature": "sig-img",
        },
    ]
    async with env.database.write() as repo:
        await repo.update_job(first.job_id, model_parts=json.dumps(old_shape))
    await ask(generation, w, "two", first.images, message_id=3)
    request = env.provider.requests[-1]
    assert request.images == []
    assert request.history == [
        Turn("user", [TextPart("one")]),
        Turn(
            "model",
            [
                TextPart("here", {"thoughtSignature": "sig-old"}),
                ImagePart(
                    "image/png",
                    sha256=result.sha256,
                    data=await env.images.data(result),
                    token={"thoughtSignature": "sig-img"},
                ),
            ],
        ),
    ]
    # and as the gemini dialect sends it: the picture's bytes back inline, signatures beside
    [_, model] = contents_of(request.history)
    data = base64.b64encode(await env.images.data(result)).decode()
    assert model["parts"] == [
        {"text": "here", "thoughtSignature": "sig-old"},
        {"inlineData": {"mimeType": "image/png", "data": data}, "thoughtSignature": "sig-img"},
    ]


async def test_a_job_row_keeps_its_model_turn_without_bytes(env: Env) -> None:
    generation = _history_service(env)
    first = await ask(generation, who(), "one", [], message_id=2)
    [job] = await env.rows(Job)
    assert job.model_parts is not None and len(job.model_parts) < 300
    assert json.loads(job.model_parts) == {
        "v": 1,
        "role": "model",
        "parts": [
            {"text": "turn 1", "token": {"thoughtSignature": "sig-1"}},
            {"image": first.images[0].sha256, "mime": "image/png"},
        ],
    }


async def test_the_prefs_cache_is_bounded_and_reads_a_forgotten_chat_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.services import prefs as prefs_module

    monkeypatch.setattr(prefs_module, "MAX_CACHED", 1)
    prefs = PrefsService(env.database)
    await prefs.update(-5, "group", "G", aspect_ratio="4:3")
    assert prefs.cached(-5) is not None
    env.statements.clear()
    assert (await prefs.get(-5)).aspect_ratio == "4:3"
    assert env.count() == 0  # from the cache
    await prefs.get(-6)  # takes the only place
    assert prefs.cached(-5) is None
    assert (await prefs.get(-5)).aspect_ratio == "4:3"
    assert env.statements["SELECT chat_prefs.refine, chat_prefs.aspect_ratio,"] == 2


async def test_a_stored_result_lets_go_of_its_image_bytes_before_the_finish_commits(
    env: Env,
) -> None:
    """In a burst, jobs waiting for their finish to commit must not each hold their image."""
    generation = _history_service(env)
    answered: list[ImageResult] = []
    held_at_commit: list[int] = []
    generate, write = env.provider.generate, env.database.write

    async def keeping(request: Any, progress: Any = None) -> ImageResult:
        answered.append(await generate(request, progress))
        return answered[-1]

    def watching(*args: Any, **kw: Any) -> Any:
        for result in answered:
            turn = result.model_turn
            pictures = [p for p in (turn.parts if turn else []) if isinstance(p, ImagePart)]
            held_at_commit.append(len(result.images) + sum(p.data is not None for p in pictures))
        return write(*args, **kw)

    env.provider.generate = keeping  # type: ignore[method-assign]
    env.database.write = watching  # type: ignore[method-assign]
    outcome = await ask(generation, who(), "one", [], message_id=2)
    assert held_at_commit and held_at_commit[-1] == 0
    [stored] = outcome.images
    assert await env.images.data(stored)  # the bytes live on in the file
    [job] = await env.rows(Job)
    assert json.loads(job.model_parts)["parts"][1] == {"image": stored.sha256, "mime": "image/png"}
