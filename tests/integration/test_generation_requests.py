"""GenerationService.prepare: a request's flags, prefs and images, checked once, in order."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from bot.providers.base import (
    Done,
    GeneratedImage,
    ImageResult,
    ProgressEvent,
    Queued,
    Started,
)
from bot.services.errors import UserInputError
from bot.services.generation import GenerationService
from bot.services.images import ImageLibrary
from bot.services.ordering import FairScheduler
from bot.services.prefs import PrefsService
from bot.services.requests import GenerationRequest, RepliedImage, TelegramImage
from bot.services.storage_limit import StorageLimit
from bot.services.types import JobOptions, Who
from bot.storage import db
from bot.storage.blobs import LocalBlobStore
from bot.storage.database import Database

MODEL = "gemini-2.5-flash-image"  # takes up to 3 input images


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (40, 20), color).save(buf, "PNG")
    return buf.getvalue()


class Provider:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def generate(self, request: Any, progress: Any = None) -> ImageResult:
        self.requests.append(request)
        return ImageResult([GeneratedImage(_png((1, 2, 3)), "image/png")], endpoint="ep")


class Telegram:
    """Images still in Telegram: counts what the service downloads."""

    def __init__(self) -> None:
        self.fetched: list[int] = []

    def image(self, message_id: int, data: bytes | None = None) -> TelegramImage:
        async def fetch() -> bytes:
            self.fetched.append(message_id)
            return data if data is not None else _png((message_id % 256, 9, 9))

        return TelegramImage(message_id, f"f{message_id}", f"u{message_id}", fetch)


class Env:
    def __init__(self, tmp_path: Path, db_url: str, mb_per_day: float = 0) -> None:
        self.engine = db.create_engine(db_url)
        database = Database(db.create_sessionmaker(engine=self.engine))
        blobs = LocalBlobStore(tmp_path / "images")
        storage = StorageLimit(database, mb_per_day=mb_per_day, exempt=())
        self.images = ImageLibrary(database, blobs, storage)
        self.prefs = PrefsService(database)
        self.provider = Provider()
        self.generation = GenerationService(
            database,
            blobs,
            self.provider,  # type: ignore[arg-type]
            model=MODEL,
            dialect="openai-chat",
            images=self.images,
            prefs=self.prefs,
            scheduler=FairScheduler(total=1, per_user=1),
        )
        self.telegram = Telegram()


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    await db.aupgrade(db_url)
    made = Env(tmp_path, db_url)
    yield made
    await made.engine.dispose()


WHO = Who(7, "Ann", "ann", "en", 7, "private")


def request(text: str, *images: Any, **kw: Any) -> GenerationRequest:
    return GenerationRequest(WHO, text, reply_to=1, images=images, **kw)


async def test_flags_and_prefs_become_the_options(env: Env) -> None:
    pro = "gemini-3-pro-image"  # a model that takes sizes
    await env.prefs.update(7, "private", None, model=pro, image_size="2K", aspect_ratio="4:3")
    job = await env.generation.prepare(request("a cat --ar 16:9 --n 2"))
    assert job.prompt == "a cat"
    assert job.options == JobOptions(pro, "16:9", "2K", 2)


async def test_a_buttons_options_replace_flags_and_prefs(env: Env) -> None:
    await env.prefs.update(7, "private", None, image_size="2K")
    fixed = JobOptions("gemini-3-pro-image", "1:1", None, 4)
    job = await env.generation.prepare(request("a cat --ar 16:9", options=fixed))
    assert (job.prompt, job.options) == ("a cat --ar 16:9", fixed)


async def test_a_bad_flag_or_prompt_is_refused_before_any_download(env: Env) -> None:
    for text, code in (("--ar 7:1 a cat", "bad_ratio"), ("  --n 2 ", "empty_prompt")):
        with pytest.raises(UserInputError) as err:
            await env.generation.prepare(request(text, env.telegram.image(5)))
        assert err.value.code == code
    assert env.telegram.fetched == []


async def test_one_image_too_many_stops_the_downloads_and_keeps_none(env: Env) -> None:
    album = [env.telegram.image(m) for m in range(10, 16)]
    with pytest.raises(UserInputError) as err:
        await env.generation.prepare(request("mix them", *album))
    assert (err.value.code, err.value.params["limit"]) == ("too_many_images", 3)
    assert env.telegram.fetched == [10, 11, 12, 13]  # the fourth showed it, the rest never came
    assert (await env.images.history(7, 0)).total == 0


async def test_a_bad_image_in_an_album_keeps_none_of_it(env: Env) -> None:
    album = [env.telegram.image(20), env.telegram.image(21, b"not an image")]
    with pytest.raises(UserInputError) as err:
        await env.generation.prepare(request("mix them", *album))
    assert err.value.code.startswith("image_")
    assert (await env.images.history(7, 0)).total == 0


async def test_an_album_over_the_storage_limit_keeps_none_of_it(
    tmp_path: Path, db_url: str
) -> None:
    await db.aupgrade(db_url)
    env = Env(tmp_path, db_url, mb_per_day=0.000001)
    try:
        with pytest.raises(UserInputError):
            await env.generation.prepare(
                request("mix", env.telegram.image(1), env.telegram.image(2))
            )
        assert env.telegram.fetched == [1, 2]  # weighed together, after both were checked
        assert (await env.images.history(7, 0)).total == 0
    finally:
        await env.engine.dispose()


async def test_a_reply_uses_the_known_image_else_the_replied_message_photo(env: Env) -> None:
    shown = await env.generation.run(await env.generation.prepare(request("a cat")))
    await env.images.record_delivery(7, 50, shown.images[0].id, None)
    known = await env.generation.prepare(request("bluer", RepliedImage(50, env.telegram.image(50))))
    assert [i.id for i in known.inputs] == [shown.images[0].id] and env.telegram.fetched == []
    unknown = await env.generation.prepare(
        request("bluer", RepliedImage(60, env.telegram.image(60)))
    )
    assert env.telegram.fetched == [60] and unknown.inputs[0].id != shown.images[0].id


async def test_without_images_a_text_takes_the_current_image_unless_refine_is_off(
    env: Env,
) -> None:
    [kept] = await env.generation.keep_images(WHO, [env.telegram.image(3)])
    job = await env.generation.prepare(request("add a hat", chat_images=True))
    assert [i.id for i in job.inputs] == [kept.id] and job.editing
    await env.prefs.update(7, "private", None, refine=False)
    assert not (await env.generation.prepare(request("add a hat", chat_images=True))).inputs
    assert not (await env.generation.prepare(request("add a hat"))).inputs


async def test_an_edit_that_finds_no_image_says_how_to_edit(env: Env) -> None:
    with pytest.raises(UserInputError) as err:
        await env.generation.prepare(request("bluer", RepliedImage(99), needs_image=True))
    assert err.value.code == "edit_usage"


async def test_a_kept_album_waits_for_the_next_text(env: Env) -> None:
    album = [env.telegram.image(m) for m in (31, 32)]
    kept = await env.generation.keep_images(WHO, album, album=True)
    job = await env.generation.prepare(request("compose", chat_images=True))
    assert [i.id for i in job.inputs] == [i.id for i in kept]


async def test_a_run_reports_its_place_in_line_then_started_then_done(env: Env) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    generate = env.provider.generate

    async def slow(request: Any, progress: Any = None) -> ImageResult:
        entered.set()
        await release.wait()
        return await generate(request, progress)

    env.provider.generate = slow  # type: ignore[method-assign]
    events: list[ProgressEvent] = []

    async def note(event: ProgressEvent) -> None:
        events.append(event)
        if isinstance(event, Queued):
            release.set()

    other = Who(8, "Bo", None, "en", 8, "private")  # holds the only slot
    first = asyncio.create_task(
        env.generation.run(await env.generation.prepare(GenerationRequest(other, "x")))
    )
    await entered.wait()
    job = await env.generation.prepare(request("a", env.telegram.image(40)))
    await env.generation.run(job, note)
    await first
    assert events == [Queued(1), Started(editing=True), Done()]
