"""Real multi-turn history for dialects that take it (gemini).

A job keeps the model's turn with inline images swapped for blob references, so the database
holds no base64; building the next request walks back from the current image through the jobs
that made it, within a window of earlier exchanges, and puts the images back in.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.providers.base import GeneratedImage, Turn
from bot.providers.gemini import INLINE_KEYS, inline_data
from bot.services.types import StoredImage
from bot.storage.blobs import BlobStore
from bot.storage.models import Job
from bot.storage.repositories import IMAGE_COLUMNS, Repo, table_of


def pack_model_turn(turn: Turn, images: list[GeneratedImage], shas: list[str]) -> str:
    """The model turn as JSON with each inline image replaced by {"blob": sha256}."""
    by_image = iter(zip(images, shas, strict=True))
    parts = []
    for part in turn.parts:
        if inline_data(part) is None:
            parts.append(part)
            continue
        image, sha = next(by_image, (None, None))
        if image is None or sha is None:
            continue  # an image we did not keep (unusable): leave it out of the history
        rest = {k: v for k, v in part.items() if k not in INLINE_KEYS}
        parts.append({**rest, "inlineData": {"mimeType": image.mime, "blob": sha}})
    return json.dumps(parts, ensure_ascii=False)


async def unpack_model_turn(packed: str, blobs: BlobStore) -> Turn:
    parts: list[dict[str, Any]] = json.loads(packed)
    out = []
    for part in parts:
        inline = part.get("inlineData")
        if isinstance(inline, dict) and "blob" in inline:
            data = await blobs.get(inline["blob"])
            encoded = await asyncio.to_thread(base64.b64encode, data)
            part = {
                **part,
                "inlineData": {"mimeType": inline["mimeType"], "data": encoded.decode("ascii")},
            }
        out.append(part)
    return Turn("model", out)


async def _image_part(image: StoredImage, blobs: BlobStore) -> dict[str, Any]:
    data = await blobs.get(image.sha256)
    encoded = await asyncio.to_thread(base64.b64encode, data)
    return {"inlineData": {"mimeType": image.mime, "data": encoded.decode("ascii")}}


_JOBS = table_of(Job)
_IMAGE = select(*IMAGE_COLUMNS).where(IMAGE_COLUMNS[0] == bindparam("_id"))
_JOB_TURN = select(_JOBS.c.prompt, _JOBS.c.model_parts).where(_JOBS.c.id == bindparam("_id"))


async def _image(repo: Repo, image_id: int) -> StoredImage | None:
    row = (await repo.core(_IMAGE, {"_id": image_id})).first()
    return StoredImage(*row) if row is not None else None


async def _job_turn(repo: Repo, job_id: int) -> tuple[str, str | None] | None:
    """A job's prompt and packed model turn."""
    row = (await repo.core(_JOB_TURN, {"_id": job_id})).first()
    return (row[0], row[1]) if row is not None else None


async def history_for(
    s: AsyncSession, blobs: BlobStore, current_image_id: int, window: int
) -> list[Turn] | None:
    """Turns leading to the current image, oldest first; None when it has no model history."""
    repo = Repo(s)
    image = await _image(repo, current_image_id)
    turns: list[Turn] = []
    while image is not None and image.job_id is not None and len(turns) < 2 * window:
        job = await _job_turn(repo, image.job_id)
        if job is None:
            break
        prompt, model_parts = job
        if not model_parts:
            break
        model_turn = await unpack_model_turn(model_parts, blobs)
        parent_ids = await repo.job_input_ids(image.job_id)
        parent = await _image(repo, parent_ids[0]) if len(parent_ids) == 1 else None
        continues = (
            parent is not None
            and parent.job_id is not None
            and len(turns) + 2 < 2 * window
            and await _has_model_parts(repo, parent.job_id)
        )
        user_parts: list[dict[str, Any]] = [{"text": prompt}]
        if not continues:
            for image_id in parent_ids:
                row = await _image(repo, image_id)
                if row is not None:
                    user_parts.append(await _image_part(row, blobs))
        turns[:0] = [Turn("user", user_parts), model_turn]
        image = parent if continues else None
    return turns or None


async def _has_model_parts(repo: Repo, job_id: int) -> bool:
    job = await _job_turn(repo, job_id)
    return job is not None and bool(job[1])
