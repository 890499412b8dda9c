"""Running one image job end to end, and recording every step of it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot import imaging
from bot.providers.base import (
    ImageProvider,
    ImageRequest,
    ImageResult,
    InputImage,
    ProgressCallback,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.services.conversation import history_for, pack_model_turn
from bot.services.errors import UserInputError
from bot.services.ordering import FairScheduler
from bot.services.prefs import MATCH_INPUT, Prefs
from bot.services.prompts import PromptFlags, nearest_ratio
from bot.services.quotas import QuotaService
from bot.services.types import JobOptions, JobOutcome, StoredImage, Who
from bot.storage.blobs import BlobStore
from bot.storage.database import Database
from bot.storage.models import ImageSource, JobKind, JobStatus, utcnow

log = logging.getLogger(__name__)

Pricing = Callable[[str, str, str | None], float | None]  # (endpoint, model, size) -> per image


class GenerationLimits:
    def __init__(
        self,
        max_prompt_chars: int = 4000,
        max_input_side: int = 2048,
        max_input_images: int = 10,
        history_window: int = 2,
    ) -> None:
        self.max_prompt_chars = max_prompt_chars
        self.max_input_side = max_input_side
        self.max_input_images = max_input_images
        self.history_window = history_window


class GenerationService:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        provider: ImageProvider,
        *,
        model: str,
        dialect: str,
        real_history: bool = False,
        supports_n: bool = False,
        limits: GenerationLimits | None = None,
        quotas: QuotaService | None = None,
        scheduler: FairScheduler | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        self.supports_n = supports_n
        self._quotas = quotas
        self._scheduler = scheduler or FairScheduler(total=8, per_user=2)
        self._pricing = pricing
        self._db = database
        self._blobs = blobs
        self._provider = provider
        self.default_model = model
        self._dialect = dialect
        self._real_history = real_history
        self._limits = limits or GenerationLimits()

    def check_prompt(self, prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise UserInputError("empty_prompt")
        if len(prompt) > self._limits.max_prompt_chars:
            raise UserInputError("prompt_too_long", limit=self._limits.max_prompt_chars)
        return prompt

    def check_inputs(self, inputs: list[StoredImage], model: str | None = None) -> None:
        limit = max_input_images(model or self.default_model, self._limits.max_input_images)
        if len(inputs) > limit:
            raise UserInputError("too_many_images", limit=limit, model=model or self.default_model)

    def options_for(
        self, prefs: Prefs, flags: PromptFlags, inputs: list[StoredImage]
    ) -> JobOptions:
        """Chat preferences, overridden by flags in the prompt."""
        ratio = flags.aspect_ratio or prefs.aspect_ratio
        if ratio == MATCH_INPUT:
            ratio = nearest_ratio(inputs[0].width, inputs[0].height) if inputs else None
        return JobOptions(
            model=prefs.model or self.default_model,
            aspect_ratio=ratio,
            image_size=flags.image_size or prefs.image_size,
            n=flags.n or 1,
        )

    async def job_owner(self, job_id: int) -> int | None:
        async with self._db.read() as repo:
            return await repo.job_owner(job_id)

    async def job_spec(
        self, job_id: int, chat_id: int
    ) -> tuple[str, list[StoredImage], JobOptions] | None:
        """Prompt, inputs and options of an earlier job of this chat (for Regenerate)."""
        async with self._db.read() as repo:
            job = await repo.job(job_id)
            if job is None or job.chat_id != chat_id:
                return None
            inputs = await repo.job_inputs(job.id)
            options = JobOptions(job.model, job.aspect_ratio, job.image_size, job.n)
            return job.prompt, inputs, options

    async def run(
        self,
        who: Who,
        prompt: str,
        inputs: list[StoredImage],
        *,
        message_id: int | None,
        options: JobOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> JobOutcome:
        """Run one job end to end. Failures are recorded on the job, then raised."""
        prompt = self.check_prompt(prompt)
        options = options or JobOptions(model=self.default_model)
        self.check_inputs(inputs, options.model)
        job_id = await self._admit(who, prompt, inputs, message_id, options)
        return await self._execute(job_id, who, prompt, inputs, options, progress)

    async def resume(
        self, job_id: int, who: Who, *, progress: ProgressCallback | None = None
    ) -> JobOutcome:
        """Run again a job a dead process left before its request went upstream: the same
        row (its quota was taken when it was admitted), prompt, inputs and options."""
        spec = await self.job_spec(job_id, who.chat_id)
        if spec is None:
            error = LookupError(f"job {job_id} is not in chat {who.chat_id}")
            await self._fail_job(job_id, error, time.monotonic())
            raise error
        prompt, inputs, options = spec
        async with self._db.write() as repo:
            await repo.restart_job(job_id)
        return await self._execute(job_id, who, prompt, inputs, options, progress)

    async def mark_delivered(self, job_id: int) -> None:
        """The job's result reached the chat: a restart need not send it again."""
        async with self._db.write() as repo:
            await repo.mark_delivered(job_id)

    async def _execute(
        self,
        job_id: int,
        who: Who,
        prompt: str,
        inputs: list[StoredImage],
        options: JobOptions,
        progress: ProgressCallback | None,
    ) -> JobOutcome:
        started = time.monotonic()
        try:
            request = await self._request(prompt, inputs, options)
            on_wait = None
            if progress is not None:
                report = progress

                async def on_wait(position: int) -> None:
                    await report(f"queue:{position}")

            request.on_send = self._upstream_mark(job_id)
            async with self._scheduler.slot(who.user_id, on_wait):
                result = await self._generate(request, progress)
            await request.on_send()  # a provider that never called it (outside a pool)
            upstream_ms = int((time.monotonic() - started) * 1000)
            stored = await self._store_outputs(result)
            await self._finish_job(job_id, who, options, result, stored, upstream_ms)
            await self._db.to_disk()  # the result is on disk before the user can have it
        except BaseException as exc:
            await self._fail_job(job_id, exc, started)
            raise
        return JobOutcome(
            job_id=job_id,
            model=result.model or options.model,
            prompt=prompt,
            seconds=time.monotonic() - started,
            images=stored,
            text=result.text,
        )

    def _upstream_mark(self, job_id: int) -> Callable[[], Awaitable[None]]:
        """On disk before the request first leaves (once, however many calls a job makes):
        from then on it may be billed, and a restart must not send it again unasked."""
        marking: asyncio.Future[None] | None = None

        async def mark() -> None:
            async with self._db.write() as repo:
                await repo.mark_upstream(job_id)
            await self._db.to_disk()

        async def once() -> None:
            nonlocal marking
            if marking is None:
                marking = asyncio.ensure_future(mark())
            await asyncio.shield(marking)

        return once

    async def _admit(
        self,
        who: Who,
        prompt: str,
        inputs: list[StoredImage],
        message_id: int | None,
        options: JobOptions,
    ) -> int:
        """Check the quota and open the job as one step, so two requests can't both squeeze in."""
        if self._quotas is None:
            return await self._open_job(who, prompt, inputs, message_id, options)
        async with self._quotas.guard(who):
            await self._quotas.check(who, options.n)
            return await self._open_job(who, prompt, inputs, message_id, options)

    async def _generate(
        self, request: ImageRequest, progress: ProgressCallback | None
    ) -> ImageResult:
        """One call, or n calls at once where the dialect cannot ask for n images."""
        if request.n <= 1 or self.supports_n:
            return await self._provider.generate(request, progress)
        single = replace(request, n=1)
        results = await asyncio.gather(
            *(self._provider.generate(single, progress) for _ in range(request.n)),
            return_exceptions=True,
        )
        good = [r for r in results if isinstance(r, ImageResult)]
        if not good:
            error = results[0]
            assert isinstance(error, BaseException)
            raise error
        merged = good[0]
        for extra in good[1:]:
            merged.images.extend(extra.images)
        merged.model_turn = None  # several answers: no single model turn to continue from
        return merged

    async def _request(
        self, prompt: str, inputs: list[StoredImage], options: JobOptions
    ) -> ImageRequest:
        request = ImageRequest(
            prompt=prompt,
            model=options.model,
            aspect_ratio=options.aspect_ratio,
            image_size=options.image_size,
            n=options.n,
        )
        if self._real_history and len(inputs) == 1 and inputs[0].job_id is not None:
            async with self._db.read() as repo:
                history = await history_for(
                    repo, self._blobs, inputs[0].id, self._limits.history_window
                )
            if history:
                request.history = history  # the current image travels inside the history
                return request
        request.images = await self._upload_inputs(inputs)
        return request

    async def _open_job(
        self,
        who: Who,
        prompt: str,
        inputs: list[StoredImage],
        message_id: int | None,
        options: JobOptions,
    ) -> int:
        kind = (
            JobKind.GENERATE
            if not inputs
            else (JobKind.EDIT if len(inputs) == 1 else JobKind.COMPOSE)
        )
        async with self._db.write(who) as repo:
            return await repo.insert_job(
                [i.id for i in inputs],
                chat_id=who.chat_id,
                thread_id=who.thread_id,
                user_id=who.user_id,
                request_message_id=message_id,
                kind=kind,
                prompt=prompt,
                dialect=self._dialect,
                model=options.model,
                aspect_ratio=options.aspect_ratio,
                image_size=options.image_size,
                n=options.n,
                status=JobStatus.RUNNING,
                started_at=utcnow(),
                attempts=1,
            )

    async def _upload_inputs(self, inputs: list[StoredImage]) -> list[InputImage]:
        prepared = []
        for image in inputs:
            raw = await self._blobs.get(image.sha256)
            try:
                data, info = await imaging.anormalise_input(
                    raw, max_side=self._limits.max_input_side, probed=image.probed
                )
            except imaging.ImageInputError as exc:
                raise UserInputError(f"image_{exc.code}") from exc
            prepared.append(InputImage(data=data, mime=info.mime))
        return prepared

    async def _store_outputs(self, result: ImageResult) -> list[StoredImage]:
        """Validate and keep every returned image file (rows come with the job's finish)."""
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
        options: JobOptions,
        result: ImageResult,
        stored: list[StoredImage],
        upstream_ms: int,
    ) -> None:
        """One transaction: the job's outcome, its output rows, the chat's new current image."""
        done: dict[str, object] = {
            "status": JobStatus.SUCCEEDED if stored else JobStatus.TEXT_ONLY,
            "finished_at": utcnow(),
            "upstream_ms": upstream_ms,
            "model_text": result.text,
            "endpoint": result.endpoint,
        }
        if self._pricing is not None and stored:
            price = self._pricing(result.endpoint, options.model, options.image_size)
            done["cost"] = None if price is None else round(price * len(stored), 6)
        if result.model_turn is not None and stored:
            done["model_parts"] = pack_model_turn(result.model_turn, stored)
        async with self._db.write() as repo:
            await repo.update_job(job_id, **done)
            for i, img in enumerate(stored):
                image_id = await repo.insert_image(
                    chat_id=who.chat_id,
                    source=ImageSource.BOT,
                    sha256=img.sha256,
                    size_bytes=img.size_bytes,
                    mime=img.mime,
                    width=img.width,
                    height=img.height,
                    job_id=job_id,
                    user_id=who.user_id,
                )
                stored[i] = replace(img, id=image_id, job_id=job_id)
            if stored:
                await repo.set_current_image(who.chat_id, who.thread_id, stored[-1].id)

    async def _fail_job(self, job_id: int, exc: BaseException, started: float) -> None:
        code, detail = describe_failure(exc)
        log.info("job %s failed: %s", job_id, code)
        async with self._db.write() as repo:
            await repo.update_job(
                job_id,
                status=JobStatus.FAILED,
                finished_at=utcnow(),
                upstream_ms=int((time.monotonic() - started) * 1000),
                error_code=code,
                error_detail=detail[:2000],
            )


def max_input_images(model: str, default: int) -> int:
    """How many input images a model takes (GI: 2.5 Flash Image works with up to 3, 3 Pro 14)."""
    name = model.lower()
    if "2.5-flash-image" in name:
        return 3
    if name.startswith("gemini-3"):
        return 14
    return default


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(short code, detail) for the job row. Details never carry secrets."""
    if isinstance(exc, ProviderError):
        return exc.kind.value, f"[{exc.endpoint}] {exc.detail}" if exc.endpoint else exc.detail
    if isinstance(exc, UserInputError):
        return exc.code, exc.code
    if isinstance(exc, imaging.ImageInputError):
        return f"image_{exc.code}", str(exc)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", "the bot stopped while the job ran"
    return "internal", type(exc).__name__
