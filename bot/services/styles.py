"""Styles: curated prompt templates and each chat's own, with a `{prompt}` slot.

A style is applied to words (the next text, or a button's text) by filling its slot, or to a
picture by filling the slot with IMAGE_SUBJECT and drawing from that picture. The curated
templates' wording follows the seed documents (the figurine example, the sticker and logo
templates); names and one-line descriptions live in the message catalogs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.services.errors import UserInputError
from bot.services.types import StoredImage, Who
from bot.storage.database import Database
from bot.storage.rows import StyleRow

SLOT = "{prompt}"
#: What a style's slot says when it is applied to a picture rather than to words.
IMAGE_SUBJECT = "the main subject of the provided picture"


@dataclass(frozen=True)
class Style:
    key: str
    template: str


CURATED: tuple[Style, ...] = (
    Style(
        "figurine",
        "Create a 1/7-scale commercial figure of {prompt}, presented in a realistic style "
        "and environment. Place the figure on a computer desk, using a circular transparent "
        "acrylic base with no text. On the computer screen, display the figure's modeling "
        "process in ZBrush. Beside the computer screen, place a BANDAI-style toy packaging "
        "box printed with the original illustration.",
    ),
    Style(
        "sticker",
        "A kawaii-style sticker of {prompt}, featuring its key characteristics and a vibrant "
        "color palette. The design should have bold, clean outlines and simple cel-shading. "
        "The background must be white.",
    ),
    Style(
        "logo",
        "Create a modern, minimalist logo for {prompt}. Any text should be in a clean, bold, "
        "sans-serif font. The design should feature a simple, stylized icon seamlessly "
        "integrated with the text. The color scheme is black and white.",
    ),
    Style(
        "product",
        "A high-resolution, studio-lit product photograph of {prompt} on a polished concrete "
        "surface. The lighting is a three-point softbox setup to create soft, diffused "
        "highlights and eliminate harsh shadows. Ultra-realistic, with sharp focus.",
    ),
    Style(
        "lineart",
        "A clean black-and-white line art drawing of {prompt}: fine, even ink lines, no "
        "shading, no color, on a plain white background.",
    ),
    Style(
        "watercolor",
        "A soft watercolor painting of {prompt}, with loose brush strokes, gentle color "
        "bleeds and visible paper texture.",
    ),
    Style(
        "pixel",
        "{prompt} as 16-bit pixel art: a limited palette, crisp square pixels, no "
        "anti-aliasing, a simple background.",
    ),
    Style(
        "clay",
        "{prompt} as a 3D clay render: a claymation look with rounded shapes, a matte "
        "plasticine texture with fingerprints, and soft studio lighting.",
    ),
)
KEYS = tuple(style.key for style in CURATED)
_BY_KEY = {style.key: style for style in CURATED}


def curated(key: str) -> Style | None:
    return _BY_KEY.get(key)


def fill(template: str, words: str | None) -> str:
    """The template with its slot filled by the words, or by IMAGE_SUBJECT for a picture."""
    return template.replace(SLOT, words.strip() if words else IMAGE_SUBJECT)


#: A chat's own styles at most: the gallery keyboard stays within Telegram's 100 buttons.
MAX_OWN = 30
MAX_TEMPLATE = 1000
_NAME = re.compile(r"^[\w-]{1,32}$")


class StyleService:
    """Each chat's own styles, and the style waiting for a chat's next text."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def own(self, chat_id: int) -> list[StyleRow]:
        async with self._db.read() as repo:
            return await repo.chat_styles(chat_id)

    async def target(self, who: Who) -> StoredImage | None:
        """The image a gallery tap applies its style to: the chat's current one (None: the
        next text takes the style)."""
        async with self._db.read() as repo:
            return await repo.current_image(who.chat_id, who.thread_id)

    async def add(self, who: Who, text: str) -> str:
        """`<name> <template>` from /style add: the name kept (lower case), or UserInputError."""
        name, template = [*text.split(None, 1), "", ""][:2]
        name, template = name.lower(), template.strip()
        if not name or not template:
            raise UserInputError("style_usage")
        if not _NAME.match(name):
            raise UserInputError("style_bad_name")
        if SLOT not in template:
            raise UserInputError("style_no_slot")
        if len(template) > MAX_TEMPLATE:
            raise UserInputError("style_too_long", limit=MAX_TEMPLATE)
        if name in KEYS:
            raise UserInputError("style_taken", name=name)
        async with self._db.write(who) as repo:
            if await repo.count_chat_styles(who.chat_id) >= MAX_OWN:
                raise UserInputError("style_too_many", limit=MAX_OWN)
            if not await repo.add_chat_style(who.chat_id, name, template, who.user_id):
                raise UserInputError("style_taken", name=name)
        return name

    async def remove(self, chat_id: int, name: str) -> str:
        name = name.strip().lower()
        if not name:
            raise UserInputError("style_usage")
        async with self._db.write() as repo:
            if not await repo.remove_chat_style(chat_id, name):
                raise UserInputError("style_unknown", name=name)
        return name

    async def own_style(self, chat_id: int, style_id: int) -> StyleRow | None:
        """This chat's own style of that id; None if it was removed (or is another chat's)."""
        async with self._db.read() as repo:
            return await repo.chat_style(style_id, chat_id)

    async def wait_for_text(self, who: Who, template: str) -> None:
        """The chat's (topic's) next text is drawn in this style."""
        async with self._db.write(who) as repo:
            await repo.set_pending_style(who.chat_id, who.thread_id, template)
