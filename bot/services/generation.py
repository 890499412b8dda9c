"""A request checked once into a job, and that job run end to end with every step recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from bot import imaging
from bot.metrics import METRICS
from bot.providers.base import (
    Done,
    ImagePart,
    ImageProvider,
    ImageRequest,
    ImageResult,
    InputImage,
    ProgressCallback,
    ProgressEvent,
    Queued,
    Started,
    Turn,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.profiles import Capabilities, Catalog
from bot.services import styles
from bot.services.conversation import history_for, pack_model_turn
from bot.services.errors import JobTakenOver, UserInputError, note_failed_job
from bot.services.images import ImageLibrary
from bot.services.ordering import FairScheduler
from bot.services.payments import Wallet
from bot.services.prefs import MATCH_INPUT, Prefs, PrefsService
from bot.services.prompts import PromptFlags, nearest_ratio, parse_flags
from bot.services.quotas import QuotaService
from bot.services.requests import (
    GenerationRequest,
    ImageInput,
    PreparedJob,
    RepliedImage,
    TelegramImage,
)
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
        history_window: int = 2,
    ) -> None:
        self.max_prompt_chars = max_prompt_chars
        self.max_input_side = max_input_side
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
        catalog: Catalog | None = None,
        limits: GenerationLimits | None = None,
        quotas: QuotaService | None = None,
        scheduler: FairScheduler | None = None,
        pricing: Pricing | None = None,
        images: ImageLibrary | None = None,
        prefs: PrefsService | None = None,
        wallet: Wallet | None = None,
        owner: str | None = None,
    ) -> None:
        self.owner = owner  # the replica whose jobs these are (bot/services/replicas.py)
        # The app passes its own ImageLibrary and PrefsService (one prefs cache per process).
        self._images = images or ImageLibrary(database, blobs)
        self._prefs = prefs or PrefsService(database)
        self._quotas = quotas
        self.wallet = wallet  # None: paid mode off, and nothing here touches the ledger
        self._scheduler = scheduler or FairScheduler()
        self._pricing = pricing
        self._db = database
        self._blobs = blobs
        self._provider = provider
        self.default_model = model
        self._dialect = dialect
        self._catalog = catalog or Catalog.of_dialect(dialect)
        self._limits = limits or GenerationLimits()

    # --- the request: flags, prefs, images, checked once -------------------------------------

    async def prepare(self, request: GenerationRequest) -> PreparedJob:
        """Check a request and resolve it into a job: its prompt, its images (downloaded and
        kept as they are checked) and its options. Raises UserInputError on what is wrong."""
        who = request.who
        flags = parse_flags(request.text) if request.options is None else PromptFlags(request.text)
        prompt = self._check_prompt(flags.prompt)
        style = await self._waiting_style(who) if request.take_style else None
        if style is not None:
            prompt = self._check_prompt(styles.fill(style, prompt))
        prefs = await self._prefs.get(who.chat_id)
        model = request.options.model if request.options else prefs.model or self.default_model
        inputs = await self._take_in(who, request.images, model, make_current=False)
        if not inputs and request.chat_images:
            inputs = await self._images.for_text(who.chat_id, who.thread_id, refine=prefs.refine)
            self._check_count(len(inputs), model)
        if not inputs and request.needs_image:
            raise UserInputError("edit_usage")
        options = request.options or self._options_for(prefs, flags, inputs, model)
        if style is not None:  # taken only by a request that passed every check
            async with self._db.write() as repo:
                await repo.drop_pending_style(who.chat_id, who.thread_id)
        return PreparedJob(who, prompt, inputs, options, request.reply_to)

    async def _waiting_style(self, who: Who) -> str | None:
        async with self._db.read() as repo:
            return await repo.pending_style(who.chat_id, who.thread_id)

    async def keep_images(
        self, who: Who, images: Sequence[TelegramImage], *, album: bool = False
    ) -> list[StoredImage]:
        """Images sent without a request: a photo becomes the chat's current image; an album
        waits for the next text, which composes it. All of them are kept, or none."""
        prefs = await self._prefs.get(who.chat_id)
        model = prefs.model or self.default_model
        kept = await self._take_in(who, images, model, make_current=not album)
        if album:
            await self._images.keep_album(who, kept)
        return kept

    def _check_prompt(self, prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise UserInputError("empty_prompt")
        if len(prompt) > self._limits.max_prompt_chars:
            raise UserInputError("prompt_too_long", limit=self._limits.max_prompt_chars)
        return prompt

    def capabilities(self, model: str | None = None) -> Capabilities:
        """What `model` (default: the configured one) can do on the endpoints that serve it."""
        return self._catalog.capabilities(model or self.default_model)

    def _check_count(self, count: int, model: str) -> None:
        limit = self.capabilities(model).max_input_images
        if count > limit:
            raise UserInputError("too_many_images", limit=limit, model=model)

    async def _take_in(
        self, who: Who, images: Sequence[ImageInput], model: str, *, make_current: bool
    ) -> list[StoredImage]:
        """The request's images as stored ones. Images still in Telegram are each checked as
        they arrive (one too many stops the downloads), weighed together against the
        storage limit, and only then kept: all of them or none."""
        found: list[StoredImage | tuple[TelegramImage, bytes, StoredImage]] = []
        for image in images:
            if isinstance(image, RepliedImage):
                known = await self._images.for_message(who.chat_id, image.message_id)
                resolved = known or image.telegram
                if resolved is None:
                    continue
                image = resolved
            if isinstance(image, TelegramImage):
                data = await image.fetch()
                found.append((image, data, await self._images.accept(data, file_id=image.file_id)))
            else:
                found.append(image)
            self._check_count(len(found), model)
        fresh = [item for item in found if isinstance(item, tuple)]
        if fresh:
            await self._images.check_room(who, sum(len(data) for _, data, _ in fresh))
        kept = []
        for item in found:
            if isinstance(item, tuple):
                source, data, candidate = item
                item = await self._images.keep(
                    who,
                    candidate,
                    data,
                    file_unique_id=source.file_unique_id,
                    message_id=source.message_id,
                    make_current=make_current,
                )
            kept.append(item)
        return kept

    def _options_for(
        self, prefs: Prefs, flags: PromptFlags, inputs: list[StoredImage], model: str
    ) -> JobOptions:
        """Chat preferences, overridden by flags in the prompt. A flag the model does not take
        is a user error; a preference it does not take (kept from another model) is left out."""
        can = self.capabilities(model)
        if flags.aspect_ratio is not None and flags.aspect_ratio not in can.aspect_ratios:
            raise UserInputError(
                "ratio_not_taken",
                model=model,
                ratio=flags.aspect_ratio,
                ratios=", ".join(can.aspect_ratios),
            )
        if flags.image_size is not None and flags.image_size not in can.image_sizes:
            if not can.image_sizes:
                raise UserInputError("size_not_taken", model=model)
            raise UserInputError(
                "size_not_offered",
                model=model,
                size=flags.image_size,
                sizes=", ".join(can.image_sizes),
            )
        if flags.search and not can.grounding:
            raise UserInputError("search_not_taken", model=model)
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
            search=(flags.search or prefs.search) and can.grounding,
        )

    # --- the job: quota, row, upstream call, record -------------------------------------------

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
            options = JobOptions(job.model, job.aspect_ratio, job.image_size, job.n, job.search)
            return job.prompt, inputs, options

    async def run(self, job: PreparedJob, progress: ProgressCallback | None = None) -> JobOutcome:
        """Run a prepared job end to end. Failures are recorded on the job, then raised."""
        job_id = await self._admit(job)
        return await self._execute(job_id, job, progress)

    async def resume(
        self, job_id: int, who: Who, progress: ProgressCallback | None = None
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
        return await self._execute(job_id, PreparedJob(who, prompt, inputs, options), progress)

    async def mark_delivered(self, job_id: int) -> None:
        """The job's result reached the chat: a restart need not send it again (and in paid
        mode its reservation is settled in the same commit)."""
        async with self._db.write() as repo:
            await repo.mark_delivered(job_id)
            if self.wallet is not None:
                await self.wallet.settle(repo, job_id, delivered=True)

    async def give_up_delivery(self, job_id: int) -> None:
        """The result can never reach its chat: nobody is told again, and nothing is charged."""
        async with self._db.write() as repo:
            await repo.mark_delivered(job_id)
            if self.wallet is not None:
                await self.wallet.settle(repo, job_id, delivered=False)

    async def release(self, job_id: int) -> None:
        """Paid mode: the result did not reach the chat; its reservation goes back."""
        if self.wallet is not None:
            await self.wallet.release(job_id)

    def button_prices(self, outcome: JobOutcome, variations: int) -> tuple[int | None, int | None]:
        """Stars that Regenerate and Variations of this result cost, where a button shows them
        (paid mode, above STAR_PRICE_SHOWN_ABOVE); None where it shows none."""
        if self.wallet is None:
            return None, None
        again = JobOptions(outcome.model, image_size=outcome.image_size, n=outcome.n)
        vary = replace(again, n=variations)
        return self.wallet.price_to_show(again), self.wallet.price_to_show(vary)

    async def _execute(
        self, job_id: int, job: PreparedJob, progress: ProgressCallback | None
    ) -> JobOutcome:
        report = progress or _unheard
        started = time.monotonic()
        try:
            request = await self._request(job.prompt, job.inputs, job.options)

            async def on_wait(position: int) -> None:
                await report(Queued(position))

            request.on_send = self._upstream_mark(job_id)
            async with self._scheduler.slot(job.who.user_id, on_wait):
                await report(Started(editing=job.editing))
                result = await self._generate(request, progress)
            await request.on_send()  # a provider that never called it (outside a pool)
            upstream_ms = int((time.monotonic() - started) * 1000)
            stored = await self._store_outputs(result)
            await self._finish_job(job_id, job.who, job.options, result, stored, upstream_ms)
            await self._db.to_disk()  # the result is on disk before the user can have it
        except JobTakenOver:
            log.info("job %s was taken over by another replica; left to it", job_id)
            raise
        except BaseException as exc:
            await self._fail_job(job_id, exc, started)
            note_failed_job(exc, job_id)
            raise
        await report(Done())
        return JobOutcome(
            job_id=job_id,
            model=result.model or job.options.model,
            prompt=job.prompt,
            seconds=time.monotonic() - started,
            images=stored,
            text=result.text,
            image_size=job.options.image_size,
            n=job.options.n,
            sources=list(result.sources),
        )

    def _upstream_mark(self, job_id: int) -> Callable[[], Awaitable[None]]:
        """On disk before the request first leaves (once, however many calls a job makes):
        from then on it may be billed, and a restart must not send it again unasked."""
        marking: asyncio.Future[None] | None = None

        async def mark() -> None:
            async with self._db.write() as repo:
                if not await repo.mark_upstream(job_id, self.owner):
                    raise JobTakenOver(job_id)
            await self._db.to_disk()

        async def once() -> None:
            nonlocal marking
            if marking is None:
                marking = asyncio.ensure_future(mark())
            await asyncio.shield(marking)

        return once

    async def _admit(self, job: PreparedJob) -> int:
        """Check the quota and open the job as one step, so two requests can't both squeeze in."""
        if self._quotas is None:
            return await self._open_job(job)
        async with self._quotas.guard(job.who):
            await self._quotas.check(job.who, job.options.n)
            return await self._open_job(job)

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
            merged.sources.extend(s for s in extra.sources if s not in merged.sources)
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
            search=options.search,
        )
        real_history = self.capabilities(options.model).real_history
        if real_history and len(inputs) == 1 and inputs[0].job_id is not None:
            async with self._db.read() as repo:
                history = await history_for(
                    repo, self._blobs, inputs[0].id, self._limits.history_window
                )
            if history:
                request.history = history  # the current image travels inside the history
                return request
        request.images = await self._upload_inputs(inputs)
        return request

    async def _open_job(self, job: PreparedJob) -> int:
        who, inputs, options = job.who, job.inputs, job.options
        kind = (
            JobKind.GENERATE
            if not inputs
            else (JobKind.EDIT if len(inputs) == 1 else JobKind.COMPOSE)
        )
        async with self._db.write(who) as repo:
            if self._quotas is not None:  # counted again under a lock other replicas respect
                await self._quotas.hold(repo, who, options.n)
            job_id = await repo.insert_job(
                [i.id for i in inputs],
                chat_id=who.chat_id,
                thread_id=who.thread_id,
                user_id=who.user_id,
                request_message_id=job.reply_to,
                kind=kind,
                prompt=job.prompt,
                dialect=self._dialect,
                model=options.model,
                aspect_ratio=options.aspect_ratio,
                image_size=options.image_size,
                n=options.n,
                search=options.search,
                status=JobStatus.RUNNING,
                started_at=utcnow(),
                attempts=1,
                owner=self.owner,
            )
            if self.wallet is not None:  # refused: the whole write, job row too, rolls back
                await self.wallet.reserve(repo, job_id, who, options)
            return job_id

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
        """Validate and keep every returned image file (rows come with the job's finish). The
        result lets go of the images' bytes once they are files: in a burst, jobs waiting for
        their finish to commit would otherwise hold every image at once."""
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
        result.images.clear()
        if result.model_turn is not None:
            result.model_turn = _without_bytes(result.model_turn)
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
            if price is not None:
                METRICS.upstream_cost(result.model or options.model, price * len(stored))
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
        METRICS.job_finished(str(done["status"]), self._dialect)

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
            if self.wallet is not None:
                await self.wallet.settle(repo, job_id, delivered=False)
        METRICS.job_finished(JobStatus.FAILED.value, self._dialect)


def _without_bytes(turn: Turn) -> Turn:
    """The turn with its pictures' bytes let go (the job row keeps them by blob)."""
    parts = [replace(p, data=None) if isinstance(p, ImagePart) else p for p in turn.parts]
    return Turn(turn.role, parts)


async def _unheard(event: ProgressEvent) -> None:
    """Progress nobody shows (tests, a caller without a status message)."""


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
