"""Real multi-turn history for dialects that take it (gemini).

A job keeps the model's turn as a neutral turn whose pictures name their blobs, so the database
holds no image bytes; building the next request walks back from the current image through the
jobs that made it, within a window of earlier exchanges, and loads the pictures back in.
"""

from __future__ import annotations

from dataclasses import replace

from bot.providers.base import ImagePart, Part, TextPart, Turn
from bot.providers.turns import dumps_turn, loads_turn
from bot.services.types import StoredImage
from bot.storage.blobs import BlobStore
from bot.storage.repositories import Repo


def pack_model_turn(turn: Turn, stored: list[StoredImage]) -> str:
    """The model turn as a job row keeps it: each picture by the blob its result was kept in."""
    results = iter(stored)
    parts: list[Part] = []
    for part in turn.parts:
        if isinstance(part, ImagePart):
            image = next(results, None)
            if image is None:
                continue  # an image we did not keep (unusable): leave it out of the history
            part = replace(part, mime=image.mime, sha256=image.sha256, data=None)
        parts.append(part)
    return dumps_turn(Turn(turn.role, parts))


async def _loaded(part: Part, blobs: BlobStore) -> Part:
    if isinstance(part, ImagePart) and part.data is None and part.sha256 is not None:
        return replace(part, data=await blobs.get(part.sha256))
    return part


async def _model_turn(stored: str, blobs: BlobStore) -> Turn:
    turn = loads_turn(stored)
    return Turn(turn.role, [await _loaded(part, blobs) for part in turn.parts])


async def _image_part(image: StoredImage, blobs: BlobStore) -> ImagePart:
    return ImagePart(mime=image.mime, sha256=image.sha256, data=await blobs.get(image.sha256))


async def history_for(
    repo: Repo, blobs: BlobStore, current_image_id: int, window: int
) -> list[Turn] | None:
    """Turns leading to the current image, oldest first; None when it has no model history."""
    image = await repo.image(current_image_id)
    turns: list[Turn] = []
    while image is not None and image.job_id is not None and len(turns) < 2 * window:
        job = await repo.job_turn(image.job_id)
        if job is None or not job.model_parts:
            break
        model_turn = await _model_turn(job.model_parts, blobs)
        parent_ids = await repo.job_input_ids(image.job_id)
        parent = await repo.image(parent_ids[0]) if len(parent_ids) == 1 else None
        continues = (
            parent is not None
            and parent.job_id is not None
            and len(turns) + 2 < 2 * window
            and await _has_model_turn(repo, parent.job_id)
        )
        user_parts: list[Part] = [TextPart(job.prompt)]
        if not continues:
            for image_id in parent_ids:
                row = await repo.image(image_id)
                if row is not None:
                    user_parts.append(await _image_part(row, blobs))
        turns[:0] = [Turn("user", user_parts), model_turn]
        image = parent if continues else None
    return turns or None


async def _has_model_turn(repo: Repo, job_id: int) -> bool:
    job = await repo.job_turn(job_id)
    return job is not None and bool(job.model_parts)
