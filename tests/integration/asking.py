"""Asking the generation service the way the bot does: a request, prepared, then run."""

from __future__ import annotations

from collections.abc import Sequence

from bot.providers.base import ProgressCallback
from bot.services.generation import GenerationService
from bot.services.requests import GenerationRequest, ImageInput
from bot.services.types import JobOptions, JobOutcome, Who


async def ask(
    generation: GenerationService,
    who: Who,
    text: str,
    images: Sequence[ImageInput] = (),
    *,
    message_id: int | None,
    options: JobOptions | None = None,
    progress: ProgressCallback | None = None,
) -> JobOutcome:
    request = GenerationRequest(
        who, text, reply_to=message_id, images=tuple(images), options=options
    )
    return await generation.run(await generation.prepare(request), progress)
