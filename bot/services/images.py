"""The chat's images: taking in user images, the current image, undo, history, deliveries."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import imaging
from bot.services.errors import UserInputError
from bot.services.storage_limit import StorageLimit
from bot.services.subjects import subjects_of
from bot.services.types import HistoryEntry, HistoryPage, StoredImage, Who
from bot.storage.blobs import BlobStore
from bot.storage.models import ChatState, Image, ImageSource
from bot.storage.repositories import IMAGE_COLUMNS, Repo, mark_job_delivered, table_of

_STATES = table_of(ChatState)
_IMAGES = table_of(Image)
_THIS_STATE = (_STATES.c.chat_id == bindparam("_chat")) & (
    _STATES.c.thread_id == bindparam("_thread")
)
#: A text's inputs in one read: the waiting album, and the current image's StoredImage columns.
_TEXT_INPUTS = (
    select(_STATES.c.pending_album, *IMAGE_COLUMNS)
    .select_from(_STATES.outerjoin(_IMAGES, _IMAGES.c.id == _STATES.c.current_image_id))
    .where(_THIS_STATE)
)
_DROP_ALBUM = update(_STATES).where(_THIS_STATE).values(pending_album=None)
_IMAGES_BY_ID = select(*IMAGE_COLUMNS).where(_IMAGES.c.id.in_(bindparam("ids", expanding=True)))


class ImageLibrary:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        storage: StorageLimit | None = None,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._storage = storage
        self._subjects = subjects_of(sessions)

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
        candidate = await self.accept(data, file_id=file_id)
        await self.check_room(who, len(data))
        return await self.keep(
            who,
            candidate,
            data,
            file_unique_id=file_unique_id,
            message_id=message_id,
            make_current=make_current,
        )

    async def accept(self, data: bytes, *, file_id: str | None = None) -> StoredImage:
        """Check an image the user sent, keeping nothing: the StoredImage it would be (id 0,
        no sha256 yet: `keep` hashes it as it writes the file, off the event loop).

        Nothing is written before the image is known to be usable, so a refused one leaves
        no file behind."""
        try:
            info = await imaging.aprobe(data)
        except imaging.ImageInputError as exc:
            raise UserInputError(f"image_{exc.code}") from exc
        return StoredImage(0, "", info.mime, info.width, info.height, len(data), file_id, None)

    async def check_room(self, who: Who, adding: int) -> None:
        """Refuse (StorageLimitError) when ``adding`` more bytes pass the user's daily limit."""
        if self._storage is not None:
            await self._storage.check(who.user_id, adding)

    async def keep(
        self,
        who: Who,
        candidate: StoredImage,
        data: bytes,
        *,
        file_unique_id: str | None,
        message_id: int,
        make_current: bool,
    ) -> StoredImage:
        """Store an accepted image (file, then row); optionally make it the chat's current one."""
        sha = await self._blobs.put(data)
        async with self._subjects.begin(self._sessions, who) as s:
            repo = Repo(s)
            image_id = await repo.insert_image(
                chat_id=who.chat_id,
                source=ImageSource.USER,
                sha256=sha,
                size_bytes=len(data),
                mime=candidate.mime,
                width=candidate.width,
                height=candidate.height,
                tg_file_id=candidate.tg_file_id,
                tg_file_unique_id=file_unique_id,
                user_id=who.user_id,
            )
            await repo.add_image_message(who.chat_id, message_id, image_id)
            if make_current:
                await repo.set_current_image(who.chat_id, who.thread_id, image_id, drop_album=True)
        return replace(candidate, id=image_id, sha256=sha)

    async def set_current(self, who: Who, image_id: int | None) -> None:
        async with self._subjects.begin(self._sessions, who) as s:
            await Repo(s).set_current_image(who.chat_id, who.thread_id, image_id, drop_album=True)

    async def keep_album(self, who: Who, images: list[StoredImage]) -> None:
        """An album without a caption: its images wait for the next text, which composes them."""
        async with self._subjects.begin(self._sessions, who) as s:
            state = await Repo(s).chat_state(who.chat_id, who.thread_id)
            state.pending_album = json.dumps([i.id for i in images])

    async def for_text(
        self, chat_id: int, thread_id: int = 0, *, refine: bool = True
    ) -> list[StoredImage]:
        """What a text works on, short of a replied-to image, in one read: the images of a
        waiting album (taken: it is forgotten), else the current image if `refine`, else []."""
        async with self._sessions.begin() as s:
            repo = Repo(s)
            found = (
                await repo.core(_TEXT_INPUTS, {"_chat": chat_id, "_thread": thread_id})
            ).first()
            if found is None:
                return []
            album, *current = found
            if not album:
                return [StoredImage(*current)] if refine and current[0] is not None else []
            await repo.core(_DROP_ALBUM, {"_chat": chat_id, "_thread": thread_id})
            ids = json.loads(album)
            rows = await repo.core(_IMAGES_BY_ID, {"ids": ids})
            by_id = {row[0]: StoredImage(*row) for row in rows}
            return [by_id[i] for i in ids if i in by_id]

    async def start_over(self, chat_id: int, thread_id: int = 0) -> None:
        """Forget the current image: the next text draws anew."""
        async with self._sessions.begin() as s:
            state = await s.get(ChatState, (chat_id, thread_id))
            if state is not None:
                state.current_image_id = state.pending_album = None

    async def undo(self, chat_id: int, thread_id: int = 0) -> tuple[bool, StoredImage | None]:
        """Step back one result: the current image becomes the one it was made from.

        Returns (stepped, new current). Nothing to undo when the current image is not a result.
        """
        async with self._sessions.begin() as s:
            state = await s.get(ChatState, (chat_id, thread_id))
            if state is None or state.current_image_id is None:
                return False, None
            repo = Repo(s)
            current = await repo.image(state.current_image_id)
            if current is None or current.job_id is None:
                return False, None
            parents = await repo.job_input_ids(current.job_id)
            parent = await repo.image(parents[0]) if parents else None
            state.current_image_id = parent.id if parent else None
            return True, StoredImage.of(parent) if parent else None

    async def for_message(self, chat_id: int, message_id: int) -> StoredImage | None:
        async with self._sessions() as s:
            row = await Repo(s).image_by_message(chat_id, message_id)
            return StoredImage.of(row) if row else None

    async def get(self, image_id: int, chat_id: int) -> StoredImage | None:
        """An image by id, only if it belongs to this chat."""
        async with self._sessions() as s:
            row = await Repo(s).image(image_id)
            return StoredImage.of(row) if row and row.chat_id == chat_id else None

    async def data(self, image: StoredImage) -> bytes:
        return await self._blobs.get(image.sha256)

    async def record_delivery(
        self,
        chat_id: int,
        message_id: int,
        image_id: int,
        file_id: str | None,
        *,
        job_id: int | None = None,
    ) -> None:
        """Remember where we showed an image (reply-to-edit) and Telegram's id for resending;
        with `job_id`, that this job's result reached the chat (in the same commit)."""
        async with self._sessions.begin() as s:
            repo = Repo(s)
            await repo.add_image_message(chat_id, message_id, image_id)
            if file_id:
                await repo.set_file_id(image_id, file_id)
            if job_id is not None:
                await mark_job_delivered(repo, job_id)

    async def history(self, chat_id: int, page: int, per_page: int = 6) -> HistoryPage:
        """The chat's images, newest first, one page of them."""
        async with self._sessions() as s:
            repo = Repo(s)
            total = await repo.count_images_of_chat(chat_id)
            pages = max(1, -(-total // per_page))
            page = min(max(page, 0), pages - 1)
            rows = await repo.images_of_chat(chat_id, per_page, page * per_page)
            prompts = await repo.prompts_of_jobs([r.job_id for r in rows if r.job_id])
        entries = [
            HistoryEntry(
                StoredImage.of(r),
                prompts.get(r.job_id) if r.job_id else None,
                r.created_at.strftime("%m-%d %H:%M"),
            )
            for r in rows
        ]
        return HistoryPage(entries, page, pages, total)
