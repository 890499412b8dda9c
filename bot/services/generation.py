"""The use cases around one image job: take in user images, run a job, record everything."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import imaging
from bot.providers.base import ImageProvider, ImageRequest, ImageResult, InputImage
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.services.errors import UserInputError
from bot.storage.blobs import BlobStore
from bot.storage.models import ChatState, Image, ImageSource, Job, JobKind, JobStatus, utcnow
from bot.storage.repositories import Repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Who:
    """Who asks, and where: enough to record the request and answer in the right place."""

    user_id: int
    first_name: str
    username: str | None
    language_code: str | None
    chat_id: int
    chat_type: str
    chat_title: str | None = None
    thread_id: int = 0


@dataclass(frozen=True)
class StoredImage:
    id: int
    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    tg_file_id: str | None = None

    @classmethod
    def of(cls, row: Image) -> StoredImage:
        return cls(
            row.id, row.sha256, row.mime, row.width, row.height, row.size_bytes, row.tg_file_id
        )


@dataclass
class JobOutcome:
    job_id: int
    model: str
    prompt: str
    seconds: float
    images: list[StoredImage] = field(default_factory=list)
    text: str | None = None


@dataclass(frozen=True)
class GenerationLimits:
    max_prompt_chars: int = 4000
    max_input_side: int = 2048
    max_input_images: int = 10


class GenerationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        provider: ImageProvider,
        *,
        model: str,
        dialect: str,
        limits: GenerationLimits | None = None,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._provider = provider
        self._model = model
        self._dialect = dialect
        self._limits = limits or GenerationLimits()
        self._chat_locks: dict[tuple[int, int], asyncio.Lock] = {}

    # -- user images ---------------------------------------------------------------------
    async def take_user_image(
        self,
        who: Who,
        data: bytes,
        *,
        file_id: str | None,
        file_unique_id: str | None,
        message_id: int,
        make_current: bool,
    ) -> StoredImage:
        """Validate and keep an image the user sent; optionally make it the chat's current one."""
        try:
            info = await imaging.aprobe(data)
        except imaging.ImageInputError as exc:
            raise UserInputError(f"image_{exc.code}") from exc
        sha = await self._blobs.put(data)
        async with self._sessions.begin() as s:
            repo = await self._touch(s, who)
            row = await repo.add_image(
                Image(
                    chat_id=who.chat_id,
                    source=ImageSource.USER,
                    sha256=sha,
                    size_bytes=len(data),
                    mime=info.mime,
                    width=info.width,
                    height=info.height,
                    tg_file_id=file_id,
                    tg_file_unique_id=file_unique_id,
                )
            )
            await repo.add_image_message(who.chat_id, message_id, row.id)
            if make_current:
                (await repo.chat_state(who.chat_id, who.thread_id)).current_image_id = row.id
            return StoredImage.of(row)

    async def current_image(self, chat_id: int, thread_id: int = 0) -> StoredImage | None:
        async with self._sessions() as s:
            state = await s.get(ChatState, (chat_id, thread_id))
            if state is None or state.current_image_id is None:
                return None
            row = await s.get(Image, state.current_image_id)
            return StoredImage.of(row) if row else None

    async def start_over(self, chat_id: int, thread_id: int = 0) -> None:
        """Forget the current image: the next text draws anew."""
        async with self._sessions.begin() as s:
            state = await s.get(ChatState, (chat_id, thread_id))
            if state is not None:
                state.current_image_id = None

    async def image_for_message(self, chat_id: int, message_id: int) -> StoredImage | None:
        async with self._sessions() as s:
            row = await Repo(s).image_by_message(chat_id, message_id)
            return StoredImage.of(row) if row else None

    async def image(self, image_id: int, chat_id: int) -> StoredImage | None:
        """An image by id, only if it belongs to this chat."""
        async with self._sessions() as s:
            row = await Repo(s).image(image_id)
            return StoredImage.of(row) if row and row.chat_id == chat_id else None

    async def image_bytes(self, image: StoredImage) -> bytes:
        return await self._blobs.get(image.sha256)

    async def record_delivery(
        self, chat_id: int, message_id: int, image_id: int, file_id: str | None
    ) -> None:
        """Remember where we showed an image (reply-to-edit) and Telegram's id for resending."""
        async with self._sessions.begin() as s:
            repo = Repo(s)
            await repo.add_image_message(chat_id, message_id, image_id)
            row = await repo.image(image_id)
            if row is not None and file_id and not row.tg_file_id:
                row.tg_file_id = file_id

    # -- jobs ------------------------------------------------------------------------------
    def check_prompt(self, prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise UserInputError("empty_prompt")
        if len(prompt) > self._limits.max_prompt_chars:
            raise UserInputError("prompt_too_long", limit=self._limits.max_prompt_chars)
        return prompt

    def chat_lock(self, chat_id: int, thread_id: int = 0) -> asyncio.Lock:
        return self._chat_locks.setdefault((chat_id, thread_id), asyncio.Lock())

    async def run(
        self, who: Who, prompt: str, inputs: list[StoredImage], *, message_id: int | None
    ) -> JobOutcome:
        """Run one job end to end. Failures are recorded on the job, then raised."""
        prompt = self.check_prompt(prompt)
        if len(inputs) > self._limits.max_input_images:
            raise UserInputError("too_many_images", limit=self._limits.max_input_images)
        kind = (
            JobKind.GENERATE
            if not inputs
            else (JobKind.EDIT if len(inputs) == 1 else JobKind.COMPOSE)
        )
        job_id = await self._open_job(who, prompt, kind, inputs, message_id)
        started = time.monotonic()
        try:
            request = ImageRequest(
                prompt=prompt, model=self._model, images=await self._upload_inputs(inputs)
            )
            result = await self._provider.generate(request)
            upstream_ms = int((time.monotonic() - started) * 1000)
            stored = await self._store_outputs(who, result)
        except BaseException as exc:
            await self._fail_job(job_id, exc, started)
            raise
        await self._finish_job(job_id, who, result, stored, upstream_ms)
        return JobOutcome(
            job_id=job_id,
            model=result.model or self._model,
            prompt=prompt,
            seconds=time.monotonic() - started,
            images=stored,
            text=result.text,
        )

    async def _touch(self, s: AsyncSession, who: Who) -> Repo:
        repo = Repo(s)
        await repo.upsert_user(who.user_id, who.first_name, who.username, who.language_code)
        await repo.upsert_chat(who.chat_id, who.chat_type, who.chat_title)
        await s.flush()
        return repo

    async def _open_job(
        self,
        who: Who,
        prompt: str,
        kind: JobKind,
        inputs: list[StoredImage],
        message_id: int | None,
    ) -> int:
        async with self._sessions.begin() as s:
            repo = await self._touch(s, who)
            job = Job(
                chat_id=who.chat_id,
                thread_id=who.thread_id,
                user_id=who.user_id,
                request_message_id=message_id,
                kind=kind,
                prompt=prompt,
                dialect=self._dialect,
                model=self._model,
                status=JobStatus.RUNNING,
                started_at=utcnow(),
                attempts=1,
            )
            await repo.add_job(job, [i.id for i in inputs])
            return job.id

    async def _upload_inputs(self, inputs: list[StoredImage]) -> list[InputImage]:
        prepared = []
        for image in inputs:
            raw = await self._blobs.get(image.sha256)
            try:
                data, info = await imaging.anormalise_input(
                    raw, max_side=self._limits.max_input_side
                )
            except imaging.ImageInputError as exc:
                raise UserInputError(f"image_{exc.code}") from exc
            prepared.append(InputImage(data=data, mime=info.mime))
        return prepared

    async def _store_outputs(self, who: Who, result: ImageResult) -> list[StoredImage]:
        """Validate and keep every returned image (files first, rows with the job's finish)."""
        stored = []
        for out in result.images:
            try:
                info = await imaging.avalidate_output(out.data)
            except imaging.ImageInputError as exc:
                raise ProviderError(
                    ProviderErrorKind.BAD_RESPONSE,
                    f"upstream image unusable: {exc.code}",
                    endpoint=result.endpoint,
                ) from exc
            sha = await self._blobs.put(out.data)
            stored.append(StoredImage(0, sha, info.mime, info.width, info.height, len(out.data)))
        return stored

    async def _finish_job(
        self,
        job_id: int,
        who: Who,
        result: ImageResult,
        stored: list[StoredImage],
        upstream_ms: int,
    ) -> None:
        async with self._sessions.begin() as s:
            repo = Repo(s)
            job = await repo.job(job_id)
            assert job is not None
            job.status = JobStatus.SUCCEEDED if stored else JobStatus.TEXT_ONLY
            job.finished_at = utcnow()
            job.upstream_ms = upstream_ms
            job.model_text = result.text
            job.endpoint = result.endpoint
            if result.model:
                job.model = result.model
            last_id = None
            for i, img in enumerate(stored):
                row = await repo.add_image(
                    Image(
                        chat_id=who.chat_id,
                        source=ImageSource.BOT,
                        sha256=img.sha256,
                        size_bytes=img.size_bytes,
                        mime=img.mime,
                        width=img.width,
                        height=img.height,
                        job_id=job_id,
                    )
                )
                stored[i] = StoredImage.of(row)
                last_id = row.id
            if last_id is not None:
                (await repo.chat_state(who.chat_id, who.thread_id)).current_image_id = last_id

    async def _fail_job(self, job_id: int, exc: BaseException, started: float) -> None:
        code, detail = describe_failure(exc)
        log.info("job %s failed: %s", job_id, code)
        async with self._sessions.begin() as s:
            job = await Repo(s).job(job_id)
            if job is None:
                return
            job.status = JobStatus.FAILED
            job.finished_at = utcnow()
            job.upstream_ms = int((time.monotonic() - started) * 1000)
            job.error_code = code
            job.error_detail = detail[:2000]


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(short code, detail) for the job row. Details never carry secrets."""
    if isinstance(exc, ProviderError):
        return exc.kind.value, f"[{exc.endpoint}] {exc.detail}" if exc.endpoint else exc.detail
    if isinstance(exc, UserInputError):
        return exc.code, exc.code
    if isinstance(exc, imaging.ImageInputError):
        return f"image_{exc.code}", str(exc)
    return "internal", type(exc).__name__
