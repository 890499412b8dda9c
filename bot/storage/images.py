"""Queries of image rows and of the messages that showed them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select

from bot.storage.models import Image, ImageMessage, Job, utcnow
from bot.storage.queries import Queries, by_id, returning_id, table_of
from bot.storage.rows import HistoryRow, StoredImage, from_row

_IMAGES = table_of(Image)
_MESSAGES = table_of(ImageMessage)
_JOBS = table_of(Job)
#: The columns of an image that `StoredImage` carries (rows are built from them by name).
IMAGE_COLUMNS = tuple(_IMAGES.c[name] for name in StoredImage.__dataclass_fields__)

_INSERT_IMAGE = returning_id(Image)
_IMAGE = select(*IMAGE_COLUMNS).where(_IMAGES.c.id == bindparam("_id"))
_IMAGES_BY_ID = select(*IMAGE_COLUMNS).where(_IMAGES.c.id.in_(bindparam("ids", expanding=True)))
_IMAGE_BY_MESSAGE = (
    select(*IMAGE_COLUMNS)
    .join(_MESSAGES, _MESSAGES.c.image_id == _IMAGES.c.id)
    .where(_MESSAGES.c.chat_id == bindparam("_chat"), _MESSAGES.c.message_id == bindparam("_msg"))
)
_OUTPUTS_OF_JOB = (
    select(*IMAGE_COLUMNS).where(_IMAGES.c.job_id == bindparam("_job")).order_by(_IMAGES.c.id)
)
_FILE_ID = _IMAGES.c.tg_file_id
_SET_FILE_ID = (
    by_id(Image)
    .where(or_(_FILE_ID.is_(None), _FILE_ID == ""))
    .values(tg_file_id=bindparam("_file_id"))
)
_HISTORY = (
    select(*IMAGE_COLUMNS, _IMAGES.c.created_at, _JOBS.c.prompt)
    .outerjoin(_JOBS, _JOBS.c.id == _IMAGES.c.job_id)
    .where(_IMAGES.c.chat_id == bindparam("_chat"))
    .order_by(_IMAGES.c.id.desc())
    .limit(bindparam("_limit"))
    .offset(bindparam("_offset"))
)
_COUNT_OF_CHAT = (
    select(func.count()).select_from(_IMAGES).where(_IMAGES.c.chat_id == bindparam("_chat"))
)
_OWNER_IN_CHAT = (
    select(_IMAGES.c.user_id, _JOBS.c.user_id.label("asker"))
    .outerjoin(_JOBS, _JOBS.c.id == _IMAGES.c.job_id)
    .where(_IMAGES.c.id == bindparam("_id"), _IMAGES.c.chat_id == bindparam("_chat"))
)
_STORED_BYTES = select(func.coalesce(func.sum(_IMAGES.c.size_bytes), 0)).where(
    _IMAGES.c.user_id == bindparam("_user"), _IMAGES.c.created_at >= bindparam("_since")
)


class ImageQueries(Queries):
    async def insert_image(self, **values: Any) -> int:
        """One INSERT of an image row (column defaults apply); its id."""
        return int((await self.core(_INSERT_IMAGE, values)).scalar_one())

    async def image(self, image_id: int) -> StoredImage | None:
        row = (await self.core(_IMAGE, {"_id": image_id})).first()
        return from_row(StoredImage, row) if row is not None else None

    async def images(self, image_ids: Sequence[int]) -> list[StoredImage]:
        """The images with these ids, in this order (ids without a row left out)."""
        if not image_ids:
            return []
        rows = await self.core(_IMAGES_BY_ID, {"ids": list(image_ids)})
        by_id = {row.id: from_row(StoredImage, row) for row in rows}
        return [by_id[i] for i in image_ids if i in by_id]

    async def image_in_chat(self, image_id: int, chat_id: int) -> StoredImage | None:
        """An image by id, only if it belongs to this chat."""
        stmt = _IMAGE.where(_IMAGES.c.chat_id == chat_id)
        row = (await self.core(stmt, {"_id": image_id})).first()
        return from_row(StoredImage, row) if row is not None else None

    async def image_by_message(self, chat_id: int, message_id: int) -> StoredImage | None:
        row = (await self.core(_IMAGE_BY_MESSAGE, {"_chat": chat_id, "_msg": message_id})).first()
        return from_row(StoredImage, row) if row is not None else None

    async def outputs_of_job(self, job_id: int) -> list[StoredImage]:
        return [
            from_row(StoredImage, r) for r in await self.core(_OUTPUTS_OF_JOB, {"_job": job_id})
        ]

    async def add_image_message(self, chat_id: int, message_id: int, image_id: int) -> None:
        """Where an image was shown; the first record of a message stays."""
        await self._insert_ignore(
            _MESSAGES,
            chat_id=chat_id,
            message_id=message_id,
            image_id=image_id,
            created_at=utcnow(),
        )

    async def set_file_id(self, image_id: int, file_id: str) -> None:
        """Telegram's file id of an image, unless it has one already."""
        await self.core(_SET_FILE_ID, {"_id": image_id, "_file_id": file_id})

    async def history_of_chat(self, chat_id: int, limit: int, offset: int = 0) -> list[HistoryRow]:
        """The chat's images, newest first, each with the prompt of the job that made it."""
        rows = await self.core(_HISTORY, {"_chat": chat_id, "_limit": limit, "_offset": offset})
        return [HistoryRow(from_row(StoredImage, r), r.prompt, r.created_at) for r in rows]

    async def own_results(
        self, user_id: int, words: Sequence[str], limit: int, offset: int = 0
    ) -> list[HistoryRow]:
        """The results of this user's jobs (any chat) that Telegram holds a file_id for and
        whose prompt has every word (case-insensitive, as plain text), newest first."""
        stmt = (
            select(*IMAGE_COLUMNS, _IMAGES.c.created_at, _JOBS.c.prompt)
            .join(_JOBS, _JOBS.c.id == _IMAGES.c.job_id)
            .where(_JOBS.c.user_id == user_id, _FILE_ID.is_not(None), _FILE_ID != "")
        )
        for word in words:
            stmt = stmt.where(func.lower(_JOBS.c.prompt).contains(word.lower(), autoescape=True))
        stmt = stmt.order_by(_IMAGES.c.id.desc()).limit(limit).offset(offset)
        rows = await self.core(stmt)
        return [HistoryRow(from_row(StoredImage, r), r.prompt, r.created_at) for r in rows]

    async def count_images_of_chat(self, chat_id: int) -> int:
        return int((await self.core(_COUNT_OF_CHAT, {"_chat": chat_id})).scalar_one())

    async def image_owner_in_chat(self, image_id: int, chat_id: int) -> tuple[bool, int | None]:
        """(whether the image is this chat's, who stored it: its user, else its job's asker)."""
        row = (await self.core(_OWNER_IN_CHAT, {"_id": image_id, "_chat": chat_id})).first()
        if row is None:
            return False, None
        return True, row.user_id if row.user_id is not None else row.asker

    async def stored_bytes_since(self, user_id: int, since: datetime) -> int:
        """Bytes of the images stored for this user (theirs and results they asked for)."""
        return int(
            (await self.core(_STORED_BYTES, {"_user": user_id, "_since": since})).scalar_one()
        )
