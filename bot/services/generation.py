"""Running one image job end to end, and recording every step of it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import imaging
from bot.providers.base import (
    ImageProvider,
    ImageRequest,
    ImageResult,
    InputImage,
    ProgressCallback,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.profiles import Capabilities, Catalog
from bot.services.conversation import history_for, pack_model_turn
from bot.services.errors import UserInputError
from bot.services.ordering import FairScheduler
from bot.services.prefs import MATCH_INPUT, Prefs
from bot.services.prompts import PromptFlags, nearest_ratio
from bot.services.quotas import QuotaService
from bot.services.subjects import subjects_of
from bot.services.types import JobOptions, JobOutcome, StoredImage, Who
from bot.storage.blobs import BlobStore
from bot.storage.db import to_disk
from bot.storage.models import ImageSource, JobKind, JobStatus, utcnow
from bot.storage.repositories import Repo, mark_job_delivered, mark_job_upstream, restart_job

log = logging.getLogger(__name__)

Pricing = Callable[[str, str, str | None], float | None]  # (endpoint, model, size) -> per image


class GenerationLimits:
    def __init__(
        self,
        max_prompt_chars: int = 4000,
        max_input_side: int = 2048,
        history_window: int = 2,
    ) -> None:
        self.max_prompt_chars = max_prompt_chars
        self.max_input_side = max_input_side
        self.history_window = history_window


class GenerationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        provider: ImageProvider,
        *,
        model: str,
        dialect: str,
        catalog: Catalog | None = None,
        limits: GenerationLimits | None = None,
        quotas: QuotaService | None = None,
        scheduler: FairScheduler | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        self._quotas = quotas
        self._scheduler = scheduler or FairScheduler(total=8, per_user=2)
        self._pricing = pricing
        self._sessions = sessions
        self._subjects = subjects_of(sessions)
        self._blobs = blobs
        self._provider = provider
        self.default_model = model
        self._dialect = dialect
        self._catalog = catalog or Catalog.of_dialect(dialect)
        self._limits = limits or GenerationLimits()

    def check_prompt(self, prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise UserInputError("empty_prompt")
        if len(prompt) > self._limits.max_prompt_chars:
            raise UserInputError("prompt_too_long", limit=self._limits.max_prompt_chars)
        return prompt

    def capabilities(self, model: str | None = None) -> Capabilities:
        """What `model` (default: the configured one) can do on the endpoints that serve it."""
        return self._catalog.capabilities(model or self.default_model)

    def check_inputs(self, inputs: list[StoredImage], model: str | None = None) -> None:
        model = model or self.default_model
        limit = self.capabilities(model).max_input_images
        if len(inputs) > limit:
            raise UserInputError("too_many_images", limit=limit, model=model)

    def options_for(
        self, prefs: Prefs, flags: PromptFlags, inputs: list[StoredImage]
    ) -> JobOptions:
        """Chat preferences, overridden by flags in the prompt. A flag the model does not take
        is a user error; a preference it does not take (kept from another model) is left out."""
        model = prefs.model or self.default_model
        can = self.capabilities(model)
        if flags.aspect_ratio is not None and flags.aspect_ratio not in can.aspect_ratios:
            raise UserInputError("bad_ratio", ratios=", ".join(can.aspect_ratios))
        if flags.image_size is not None and flags.image_size not in can.image_sizes:
            if not can.image_sizes:
                raise UserInputError("size_not_taken", model=model)
            raise UserInputError("bad_size", sizes=", ".join(can.image_sizes))
        ratio = flags.aspect_ratio or prefs.aspect_ratio
        if ratio == MATCH_INPUT:
            ratio = (
                nearest_ratio(inputs[0].width, inputs[0].height, can.aspect_ratios)
                if inputs
                else None
            )
        size = flags.image_size or prefs.image_size
        return JobOptions(
            model=model,
            aspect_ratio=ratio if ratio in can.aspect_ratios else None,
            image_size=size if size in can.image_sizes else None,
            n=flags.n or 1,
        )

    async def job_owner(self, job_id: int) -> int | None:
        async with self._sessions() as s:
            return await Repo(s).job_owner(job_id)

    async def job_spec(
        self, job_id: int, chat_id: int
    ) -> tuple[str, list[StoredImage], JobOptions] | None:
        """Prompt, inputs and options of an earlier job of this chat (for Regenerate)."""
        async with self._sessions() as s:
            repo = Repo(s)
            job = await repo.job(job_id)
            if job is None or job.chat_id != chat_id:
                return None
            inputs = []
            for image_id in await repo.job_input_ids(job.id):
                row = await repo.image(image_id)
                if row is not None:
                    inputs.append(StoredImage.of(row))
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
        async with self._sessions.begin() as s:
            await restart_job(Repo(s), job_id)
        return await self._execute(job_id, who, prompt, inputs, options, progress)

    async def mark_delivered(self, job_id: int) -> None:
        """The job's result reached the chat: a restart need not send it again."""
        async with self._sessions.begin() as s:
            await mark_job_delivered(Repo(s), job_id)

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
            await to_disk(self._sessions)  # the result is on disk before the user can have it
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
            async with self._sessions.begin() as s:
                await mark_job_upstream(Repo(s), job_id)
            await to_disk(self._sessions)

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
        """One call, or n calls at once where the model's profile on its endpoints takes no n."""
        if request.n <= 1 or self.capabilities(request.model).supports_n:
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
        real_history = self.capabilities(options.model).real_history
        if real_history and len(inputs) == 1 and inputs[0].job_id is not None:
            async with self._sessions() as s:
                history = await history_for(
                    s, self._blobs, inputs[0].id, self._limits.history_window
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
        async with self._subjects.begin(self._sessions, who) as s:
            return await Repo(s).insert_job(
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
            done["model_parts"] = pack_model_turn(
                result.model_turn, result.images, [i.sha256 for i in stored]
            )
        async with self._sessions.begin() as s:
            repo = Repo(s)
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
        async with self._sessions.begin() as s:
            await Repo(s).update_job(
                job_id,
                status=JobStatus.FAILED,
                finished_at=utcnow(),
                upstream_ms=int((time.monotonic() - started) * 1000),
                error_code=code,
                error_detail=detail[:2000],
            )


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
