"""A person's data on request: /export packs it, /forget deletes it."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.services.errors import UserInputError
from bot.services.prefs import PrefsService
from bot.storage.blobs import BlobStore, PackEntry
from bot.storage.database import Database
from bot.storage.rows import ExportImage

log = logging.getLogger(__name__)

#: Bytes of one zip: under Telegram's 50 MB for a bot's sendDocument, with room for the form.
PART_LIMIT = 45_000_000
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True)
class Export:
    """The zips of one export (delete them with `PersonalData.exported`'s end)."""

    parts: list[Path]
    jobs: int
    images: int


@dataclass(frozen=True)
class ForgetResult:
    jobs: int
    images: int
    files_deleted: int
    files_kept: int  # still another person's


def file_name(image: ExportImage) -> str:
    """Where an image goes in the zip: by date and id, so the listing reads in order."""
    ext = _EXTENSIONS.get(image.mime, "bin")
    return f"images/{image.created_at:%Y-%m-%d}_{image.id}_{image.source}.{ext}"


class PersonalData:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        prefs: PrefsService,
        *,
        part_limit: int = PART_LIMIT,
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._prefs = prefs
        self.part_limit = part_limit

    @asynccontextmanager
    async def exported(self, user_id: int) -> AsyncIterator[Export]:
        """The person's images (originals) and a JSON of their jobs, zipped in temp files that
        are removed when the block ends."""
        async with self._db.read() as repo:
            jobs = await repo.jobs_for_export(user_id)
            images = await repo.images_for_export(user_id)
        present = [i for i in images if await self._blobs.exists(i.sha256)]
        by_job: dict[int, list[str]] = {}
        for image in present:
            if image.job_id is not None:
                by_job.setdefault(image.job_id, []).append(file_name(image))
        document: dict[str, Any] = {
            "user_id": user_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "jobs": [{**_jsonable(asdict(job)), "images": by_job.get(job.id, [])} for job in jobs],
            "images": [{**_jsonable(asdict(i)), "file": file_name(i)} for i in present],
        }
        extra = {"data.json": json.dumps(document, ensure_ascii=False, indent=2).encode()}
        entries = [PackEntry(file_name(i), i.sha256) for i in present]
        parts = await self._blobs.pack(entries, extra, self.part_limit)
        try:
            yield Export(parts, len(jobs), len(present))
        finally:
            await BlobStore.discard(parts)

    async def forget(self, user_id: int, private_chat_id: int) -> ForgetResult:
        """Delete the person's jobs, images and private chat's settings; an image file another
        person's row still names stays. Refused while one of their jobs runs."""
        async with self._db.write() as repo:
            if await repo.running_jobs_of_user(user_id):
                raise UserInputError("forget_busy")
            gone = await repo.forget_user(user_id, private_chat_id)
            kept = await repo.blobs_in_use(gone.blobs)
        self._db.forget_user(user_id)
        self._prefs.forget(private_chat_id)
        unused = sorted(gone.blobs - kept)
        deleted = await self._blobs.delete(unused)
        log.info(
            "forgot user %s: %d job(s), %d image(s), %d file(s) deleted, %d kept",
            user_id,
            gone.jobs,
            gone.images,
            deleted,
            len(kept),
        )
        return ForgetResult(gone.jobs, gone.images, deleted, len(kept))


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
