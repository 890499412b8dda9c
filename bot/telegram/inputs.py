"""Getting a user's image out of a message: pick the file, respect the 20 MB limit, download."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from telegram import Bot, Message
from telegram.error import BadRequest

from bot.services.errors import UserInputError
from bot.services.requests import RepliedImage, TelegramImage
from bot.telegram.transport import DOWNLOAD_LIMIT, DownloadTooLargeError

_COMMAND = re.compile(r"^/(\w+)(@\w+)?", re.ASCII)
GROUP_REQUEST_COMMANDS = ("imagine", "edit")


def strip_command(text: str) -> str:
    """The text after a leading /command or /command@bot."""
    return _COMMAND.sub("", text.strip(), count=1).strip()


def leading_command(text: str) -> str | None:
    match = _COMMAND.match(text.strip())
    return match.group(1).lower() if match else None


def mentions(text: str, username: str) -> bool:
    """Whether the text @mentions this username (as a word, any case)."""
    return re.search(rf"(?<![\w@])@{re.escape(username)}\b", text, re.IGNORECASE) is not None


TELEGRAM_DOWNLOAD_LIMIT = DOWNLOAD_LIMIT
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class FileRef:
    file_id: str
    file_unique_id: str
    file_size: int | None


def image_file_of(message: Message) -> FileRef | None:
    """The image file a message carries (largest photo size, or an image document)."""
    if message.photo:
        best = max(message.photo, key=lambda p: p.width * p.height)
        return FileRef(best.file_id, best.file_unique_id, best.file_size)
    doc = message.document
    if doc is not None and message.animation is None:
        name = (doc.file_name or "").lower()
        if (doc.mime_type or "").startswith("image/") or name.endswith(IMAGE_EXTENSIONS):
            return FileRef(doc.file_id, doc.file_unique_id, doc.file_size)
        raise UserInputError("not_image_document")
    return None


def telegram_image(bot: Bot, message: Message) -> TelegramImage | None:
    """The image a message carries, for the service to fetch (None if it carries none)."""
    ref = image_file_of(message)
    if ref is None:
        return None
    return TelegramImage(
        message.message_id, ref.file_id, ref.file_unique_id, partial(download, bot, ref)
    )


def replied_image(bot: Bot, message: Message) -> RepliedImage | None:
    """The message this one replies to, as an image reference (None: not a reply)."""
    replied = message.reply_to_message
    if replied is None:
        return None
    return RepliedImage(replied.message_id, telegram_image(bot, replied))


async def download(bot: Bot, ref: FileRef) -> bytes:
    """The file's bytes, at most 20 MB whatever the message or getFile said its size was."""
    if ref.file_size is not None and ref.file_size > TELEGRAM_DOWNLOAD_LIMIT:
        raise UserInputError("file_too_big")
    try:
        tg_file = await bot.get_file(ref.file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise UserInputError("file_too_big") from exc
        raise
    if tg_file.file_size is not None and tg_file.file_size > TELEGRAM_DOWNLOAD_LIMIT:
        raise UserInputError("file_too_big")
    try:
        data = await tg_file.download_as_bytearray()
    except DownloadTooLargeError as exc:  # the transport stopped reading at the limit
        raise UserInputError("file_too_big") from exc
    if len(data) > TELEGRAM_DOWNLOAD_LIMIT:  # another transport, without the streaming cap
        raise UserInputError("file_too_big")
    return bytes(data)
