"""What the Telegram layer asks of the generation service: one typed request per update."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.services.types import JobOptions, StoredImage, Who


@dataclass(frozen=True)
class TelegramImage:
    """An image still in Telegram: the service downloads it (`fetch`), checks it and keeps it."""

    message_id: int
    file_id: str
    file_unique_id: str
    fetch: Callable[[], Awaitable[bytes]] = field(repr=False, compare=False)


@dataclass(frozen=True)
class RepliedImage:
    """The image of a message replied to: the one the bot showed there if it knows it, else
    the user's image that message carries (`telegram`), else none."""

    message_id: int
    telegram: TelegramImage | None = None


ImageInput = StoredImage | TelegramImage | RepliedImage


@dataclass(frozen=True)
class GenerationRequest:
    """One request to draw, edit or compose.

    `text` is the user's words with any flags (`--ar 16:9`). `images` are what it works on;
    with `chat_images` and none of them found, the chat's waiting album or (refine on) its
    current image is used instead. `needs_image` refuses a request that found no image
    (/edit). `options` are a button's replay of a stored job: they replace flags and prefs.
    `take_style`: the words are a chat's next text, so a style waiting for it (/styles)
    wraps them, once.
    """

    who: Who
    text: str
    reply_to: int | None = None
    images: tuple[ImageInput, ...] = ()
    chat_images: bool = False
    needs_image: bool = False
    options: JobOptions | None = None
    take_style: bool = False


@dataclass(frozen=True)
class PreparedJob:
    """A request the service has checked and resolved: ready to be admitted and run."""

    who: Who
    prompt: str
    inputs: list[StoredImage]
    options: JobOptions
    reply_to: int | None = None

    @property
    def editing(self) -> bool:
        return bool(self.inputs)
