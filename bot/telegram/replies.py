"""Sending results: photo with caption and buttons, documents for originals and oversize images."""

from __future__ import annotations

import html
import re

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, Message

from bot import imaging
from bot.i18n import t
from bot.services.images import ImageLibrary
from bot.services.styles import StyleService
from bot.services.types import Capabilities, JobOutcome, Source, StoredImage, Who
from bot.telegram import callback_data as cd
from bot.telegram.keyboards import button, styles_keyboard, styles_text

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
PROMPT_IN_CAPTION = 300
SOURCE_TITLE = 60  # characters of a source's title shown


_TAG = re.compile(r"<[^>]*>")


def shorten(text: str, limit: int) -> str:
    """Plain text on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def shown_length(markup: str) -> int:
    """How long an HTML text is once Telegram has parsed it (its limits count that)."""
    return len(html.unescape(_TAG.sub("", markup)))


def caption_for(outcome: JobOutcome, lang: str) -> str:
    """The prompt, shortened before it is escaped so no entity is cut, then the footer and as
    many of a grounded answer's sources as fit (`sources_overflow` has the rest)."""
    return _caption_and_rest(outcome, lang)[0]


def sources_overflow(outcome: JobOutcome, lang: str) -> str | None:
    """The sources that did not fit under the picture, as a follow-up message (None: none)."""
    return _caption_and_rest(outcome, lang)[1]


def source_link(number: int, source: Source) -> str:
    """`[1] Title` linking to the page; the title (or the host) shortened, then escaped."""
    label = source.title or source.uri.split("//", 1)[-1].split("/", 1)[0]
    title = html.escape(shorten(label, SOURCE_TITLE), quote=False)
    return f'[{number}] <a href="{html.escape(source.uri, quote=True)}">{title}</a>'


def _caption_and_rest(outcome: JobOutcome, lang: str) -> tuple[str, str | None]:
    footer = t(lang, "caption_model", model=outcome.model, seconds=round(outcome.seconds))
    room = min(PROMPT_IN_CAPTION, CAPTION_LIMIT - shown_length(footer) - 2)
    caption = f"{html.escape(shorten(outcome.prompt, room), quote=False)}\n\n{footer}"
    if not outcome.sources:
        return caption, None
    links = [source_link(i + 1, s) for i, s in enumerate(outcome.sources)]
    head = t(lang, "sources")
    shown: list[str] = []
    for link in links:
        candidate = f"{caption}\n{head} {' · '.join([*shown, link])}"
        if shown_length(one_line(candidate)) > CAPTION_LIMIT:
            break
        shown.append(link)
    if shown:
        caption = f"{caption}\n{head} {' · '.join(shown)}"
    rest = links[len(shown) :]
    if not rest:
        return caption, None
    more = t(lang, "sources_more" if shown else "sources")
    return caption, _within(f"{more} ", rest, MESSAGE_LIMIT)


def _within(head: str, links: list[str], limit: int) -> str:
    """`head` and as many links as fit `limit` shown characters."""
    text = head.rstrip()
    for i in range(len(links)):
        longer = f"{head}{' · '.join(links[: i + 1])}"
        if shown_length(longer) > limit:
            break
        text = longer
    return text


def one_line(markup: str) -> str:
    """A caption's whitespace collapsed, as captions have always been shown."""
    return " ".join(markup.split())


#: Pictures one press on 🎲 Variations asks for.
VARIATIONS = 4
NO_PRICES: tuple[int | None, int | None] = (None, None)
#: Sizes a result offers to be drawn again at (where its model takes them).
UPSCALES = ("2K", "4K")


def _priced(lang: str, label: str, stars: int | None) -> str:
    return label if stars is None else t(lang, "btn_priced", label=label, stars=stars)


def result_keyboard(
    job_id: int,
    image: StoredImage | None,
    lang: str,
    *,
    variations: bool,
    prices: tuple[int | None, int | None] = NO_PRICES,
    can: Capabilities | None = None,
    size: str | None = None,
) -> InlineKeyboardMarkup:
    """Regenerate · Original / 2K · 4K / Ratio · Style / New · Variations. Callback data names
    rows, not state. The follow-ups are offered as far as the result's model (`can`) takes
    them: the sizes above the one it was drawn at, its ratios, a style for a picture. In paid
    mode `prices` (Regenerate's, Variations') put the Stars a press costs on the button."""
    first = [button(_priced(lang, t(lang, "btn_regenerate"), prices[0]), cd.Regenerate(job_id))]
    if image is not None:
        first.append(button(t(lang, "btn_original"), cd.SendOriginal(image.id)))
    rows = [first]
    if can is not None:
        drawn = can.image_sizes.index(size) if size in can.image_sizes else -1  # -1: default
        bigger = [s for s in UPSCALES if s in can.image_sizes[drawn + 1 :]]
        if bigger:
            rows.append(
                [button(t(lang, "btn_rerender", size=s), cd.Rerender(job_id, s)) for s in bigger]
            )
        more = []
        if len(can.aspect_ratios) > 1:
            more.append(button(t(lang, "btn_reframe"), cd.PickRatio(job_id)))
        if image is not None:
            more.append(button(t(lang, "btn_style"), cd.OpenStyles(image.id)))
        if more:
            rows.append(more)
    second = [button(t(lang, "btn_new"), cd.StartOver())]
    if variations:
        second.append(button(_priced(lang, t(lang, "btn_variations"), prices[1]), cd.Vary(job_id)))
    rows.append(second)
    return InlineKeyboardMarkup(rows)


def reframe_keyboard(job_id: int, lang: str, can: Capabilities) -> InlineKeyboardMarkup:
    """PickRatio's answer: one button per ratio the job's model takes, five to a row."""
    buttons = [button(r, cd.Reframe(job_id, r)) for r in can.aspect_ratios]
    return InlineKeyboardMarkup([buttons[i : i + 5] for i in range(0, len(buttons), 5)])


def album_keyboard(
    job_id: int,
    shown: list[StoredImage],
    lang: str,
    *,
    variations: bool,
    prices: tuple[int | None, int | None] = NO_PRICES,
    can: Capabilities | None = None,
    size: str | None = None,
) -> InlineKeyboardMarkup:
    """One 📎 Original per image of an album (rows of five), then the result's buttons."""
    originals = [button(f"📎 {i + 1}", cd.SendOriginal(image.id)) for i, image in enumerate(shown)]
    rows = [originals[:5], originals[5:]] if len(originals) > 5 else [originals]
    keyboard = result_keyboard(
        job_id, None, lang, variations=variations, prices=prices, can=can, size=size
    )
    return InlineKeyboardMarkup([*rows, *keyboard.inline_keyboard])


def file_name(image: StoredImage) -> str:
    return f"image-{image.id}.{imaging.EXT_BY_MIME.get(image.mime, 'png')}"


def _info(image: StoredImage) -> imaging.ImageInfo:
    return imaging.ImageInfo(image.mime, image.width, image.height, image.mime.split("/")[-1])


class ResultSender:
    """Puts a job's outcome into the chat and records where each image was shown."""

    def __init__(
        self,
        bot: Bot,
        images: ImageLibrary,
        variations: bool = False,
        prices: tuple[int | None, int | None] = NO_PRICES,
        can: Capabilities | None = None,
    ) -> None:
        self._can = can  # the result's model: which follow-ups its buttons offer
        self._bot = bot
        self._images = images
        self._variations = variations
        self._prices = prices

    async def send(
        self,
        who: Who,
        lang: str,
        outcome: JobOutcome,
        reply_to: int | None,
        *,
        reply_mode: str = "photo",
    ) -> None:
        if not outcome.images:
            await self._send_text_only(who, lang, outcome, reply_to)
        elif len(outcome.images) == 1:
            image = outcome.images[0]
            keyboard = result_keyboard(
                outcome.job_id,
                image,
                lang,
                variations=self._variations,
                prices=self._prices,
                can=self._can,
                size=outcome.image_size,
            )
            caption = caption_for(outcome, lang)
            done = outcome.job_id  # the first message that shows the result delivers it
            if reply_mode == "document":
                sent = await self.send_original(
                    who,
                    lang,
                    image,
                    reply_to=reply_to,
                    caption=caption,
                    keyboard=keyboard,
                    job_id=done,
                )
                await self._more_sources(who, lang, outcome, sent.message_id)
                return
            msg = await self.send_image(who, lang, image, caption, reply_to, keyboard, job_id=done)
            if reply_mode == "both":
                await self.send_original(who, lang, image, reply_to=msg.message_id)
            await self._more_sources(who, lang, outcome, msg.message_id)
        else:
            await self._send_album(who, lang, outcome, reply_to)

    async def _more_sources(
        self, who: Who, lang: str, outcome: JobOutcome, reply_to: int | None
    ) -> None:
        """The sources a caption had no room for, under the picture they belong to."""
        rest = sources_overflow(outcome, lang)
        if rest is None:
            return
        await self._bot.send_message(
            who.chat_id,
            rest,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
            disable_web_page_preview=True,
        )

    async def send_image(
        self,
        who: Who,
        lang: str,
        image: StoredImage,
        caption: str,
        reply_to: int | None,
        keyboard: InlineKeyboardMarkup | None,
        *,
        job_id: int | None = None,
    ) -> Message:
        """As a photo; over Telegram's photo limits, a preview photo plus the file.
        `job_id`: the job whose result this shows is recorded as delivered."""
        data = await self._images.data(image)
        preview = await imaging.atelegram_photo(data, _info(image))
        msg = await self._bot.send_photo(
            who.chat_id,
            preview or data,
            caption=one_line(caption),
            reply_markup=keyboard,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
        )
        file_id = msg.photo[-1].file_id if msg.photo and preview is None else None
        await self._images.record_delivery(
            who.chat_id, msg.message_id, image.id, file_id, job_id=job_id
        )
        if preview is not None:
            await self.send_original(
                who,
                lang,
                image,
                data=data,
                reply_to=msg.message_id,
                caption=t(lang, "large_result_note"),
            )
        return msg

    async def send_original(
        self,
        who: Who,
        lang: str,
        image: StoredImage,
        *,
        data: bytes | None = None,
        reply_to: int | None = None,
        caption: str | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
        job_id: int | None = None,
    ) -> Message:
        data = data if data is not None else await self._images.data(image)
        msg = await self._bot.send_document(
            who.chat_id,
            data,
            filename=file_name(image),
            caption=one_line(caption or t(lang, "original_sent")),
            reply_markup=keyboard,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
            disable_content_type_detection=True,
        )
        await self._images.record_delivery(
            who.chat_id, msg.message_id, image.id, None, job_id=job_id
        )
        return msg

    async def _send_album(
        self, who: Who, lang: str, outcome: JobOutcome, reply_to: int | None
    ) -> None:
        """Several images in one answer: one album, then the buttons with one 📎 per image."""
        shown = outcome.images[:10]
        media = []
        for i, image in enumerate(shown):
            data = await self._images.data(image)
            preview = await imaging.atelegram_photo(data, _info(image))
            media.append(
                InputMediaPhoto(
                    preview or data, caption=caption_for(outcome, lang) if i == 0 else None
                )
            )
        messages = await self._bot.send_media_group(
            who.chat_id,
            media,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
        )
        for i, (msg, image) in enumerate(zip(messages, shown, strict=False)):
            done = outcome.job_id if i == 0 else None
            await self._images.record_delivery(
                who.chat_id, msg.message_id, image.id, None, job_id=done
            )
        await self._more_sources(who, lang, outcome, messages[0].message_id if messages else None)
        await self._bot.send_message(
            who.chat_id,
            t(lang, "album_buttons"),
            message_thread_id=who.thread_id or None,
            reply_markup=album_keyboard(
                outcome.job_id,
                shown,
                lang,
                variations=self._variations,
                prices=self._prices,
                can=self._can,
                size=outcome.image_size,
            ),
        )

    async def _send_text_only(
        self, who: Who, lang: str, outcome: JobOutcome, reply_to: int | None
    ) -> None:
        text = (outcome.text or "").strip()
        body = (
            t(lang, "text_only", text=shorten(text, 3000)) if text else t(lang, "text_only_empty")
        )
        await self._bot.send_message(
            who.chat_id,
            body,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
            reply_markup=result_keyboard(
                outcome.job_id, None, lang, variations=False, prices=self._prices
            ),
        )


async def send_styles(
    bot: Bot,
    styles: StyleService,
    who: Who,
    lang: str,
    *,
    image: StoredImage | None,
    reply_to: int | None = None,
) -> None:
    """The style gallery; its buttons name `image` (None: the next text takes the style)."""
    own = await styles.own(who.chat_id)
    await bot.send_message(
        who.chat_id,
        styles_text(lang, [(s.name, s.template) for s in own], image is not None),
        reply_to_message_id=reply_to,
        allow_sending_without_reply=True,
        message_thread_id=who.thread_id or None,
        reply_markup=styles_keyboard(lang, [(s.id, s.name) for s in own], image.id if image else 0),
    )
