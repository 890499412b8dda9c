"""The chat's images: taking in user images, the current image, undo, history, deliveries."""

from __future__ import annotations

from dataclasses import replace

from bot import imaging
from bot.services.errors import UserInputError
from bot.services.payments import Wallet
from bot.services.storage_limit import StorageLimit
from bot.services.types import HistoryPage, HistoryRow, StoredImage, Who
from bot.storage.blobs import BlobStore
from bot.storage.database import Database
from bot.storage.models import ImageSource

#: Words of an inline query matched against prompts (the rest are ignored).
MAX_WORDS = 8


class ImageLibrary:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        storage: StorageLimit | None = None,
        wallet: Wallet | None = None,
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._storage = storage
        self._wallet = wallet  # paid mode: a delivery charges its job's reservation

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
        async with self._db.write(who) as repo:
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
        async with self._db.write(who) as repo:
            await repo.set_current_image(who.chat_id, who.thread_id, image_id, drop_album=True)

    async def keep_album(self, who: Who, images: list[StoredImage]) -> None:
        """An album without a caption: its images wait for the next text, which composes them."""
        async with self._db.write(who) as repo:
            await repo.keep_album(who.chat_id, who.thread_id, [i.id for i in images])

    async def for_text(
        self, chat_id: int, thread_id: int = 0, *, refine: bool = True
    ) -> list[StoredImage]:
        """What a text works on, short of a replied-to image, in one read: the images of a
        waiting album (taken: it is forgotten), else the current image if `refine`, else []."""
        async with self._db.write() as repo:
            found = await repo.chat_inputs(chat_id, thread_id)
            if found is None:
                return []
            if not found.pending_album:
                return [found.current] if refine and found.current is not None else []
            await repo.drop_album(chat_id, thread_id)
            return await repo.images(found.pending_album)

    async def start_over(self, chat_id: int, thread_id: int = 0) -> None:
        """Forget the current image: the next text draws anew."""
        async with self._db.write() as repo:
            await repo.forget_current(chat_id, thread_id)

    async def undo(self, chat_id: int, thread_id: int = 0) -> tuple[bool, StoredImage | None]:
        """Step back one result: the current image becomes the one it was made from.

        Returns (stepped, new current). Nothing to undo when the current image is not a result.
        """
        async with self._db.write() as repo:
            current = await repo.current_image(chat_id, thread_id)
            if current is None or current.job_id is None:
                return False, None
            parents = await repo.job_input_ids(current.job_id)
            parent = await repo.image(parents[0]) if parents else None
            await repo.set_current_image(chat_id, thread_id, parent.id if parent else None)
            return True, parent

    async def for_message(self, chat_id: int, message_id: int) -> StoredImage | None:
        async with self._db.read() as repo:
            return await repo.image_by_message(chat_id, message_id)

    async def get(self, image_id: int, chat_id: int) -> StoredImage | None:
        """An image by id, only if it belongs to this chat."""
        async with self._db.read() as repo:
            return await repo.image_in_chat(image_id, chat_id)

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
        async with self._db.write() as repo:
            await repo.add_image_message(chat_id, message_id, image_id)
            if file_id:
                await repo.set_file_id(image_id, file_id)
            if job_id is not None:
                await repo.mark_delivered(job_id)
                if self._wallet is not None:
                    await self._wallet.settle(repo, job_id, delivered=True)

    async def own_results(
        self, user_id: int, text: str, offset: int, limit: int
    ) -> list[HistoryRow]:
        """A person's own pictures whose prompts hold every word of `text`, newest first, for
        inline mode (only those Telegram can show again by file_id)."""
        words = text.split()[:MAX_WORDS]
        async with self._db.read() as repo:
            return await repo.own_results(user_id, words, limit, offset)

    async def history(self, chat_id: int, page: int, per_page: int = 6) -> HistoryPage:
        """The chat's images, newest first, one page of them."""
        async with self._db.read() as repo:
            total = await repo.count_images_of_chat(chat_id)
            pages = max(1, -(-total // per_page))
            page = min(max(page, 0), pages - 1)
            rows = await repo.history_of_chat(chat_id, per_page, page * per_page)
        return HistoryPage(rows, page, pages, total)
