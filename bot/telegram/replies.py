"""Sending results: photo with caption and buttons, documents for originals and oversize images."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message
from telegram.constants import ParseMode

from bot import imaging
from bot.i18n import t
from bot.services.generation import GenerationService, JobOutcome, StoredImage, Who

CAPTION_LIMIT = 1024
PROMPT_IN_CAPTION = 300


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def caption_for(outcome: JobOutcome, lang: str) -> str:
    footer = t(lang, "caption_model", model=outcome.model, seconds=round(outcome.seconds))
    prompt = shorten(outcome.prompt, min(PROMPT_IN_CAPTION, CAPTION_LIMIT - len(footer) - 2))
    return f"{prompt}\n\n{footer}"


def result_keyboard(image: StoredImage, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t(lang, "btn_original"), callback_data=f"orig:{image.id}")]]
    )


def file_name(image: StoredImage) -> str:
    return f"image-{image.id}.{imaging.EXT_BY_MIME.get(image.mime, 'png')}"


class ResultSender:
    """Puts a job's outcome into the chat and records where each image was shown."""

    def __init__(self, bot: Bot, generation: GenerationService) -> None:
        self._bot = bot
        self._gen = generation

    async def send(self, who: Who, lang: str, outcome: JobOutcome, reply_to: int | None) -> None:
        if not outcome.images:
            await self._send_text_only(who, lang, outcome, reply_to)
        elif len(outcome.images) == 1:
            await self.send_image(
                who, lang, outcome.images[0], caption_for(outcome, lang), reply_to
            )
        else:
            await self._send_album(who, lang, outcome, reply_to)

    async def send_image(
        self, who: Who, lang: str, image: StoredImage, caption: str, reply_to: int | None
    ) -> Message:
        data = await self._gen.image_bytes(image)
        info = imaging.ImageInfo(
            mime=image.mime,
            width=image.width,
            height=image.height,
            format=image.mime.split("/")[-1].upper(),
        )
        preview = await imaging.atelegram_photo(data, info)
        thread = who.thread_id or None
        if preview is None:
            msg = await self._bot.send_photo(
                who.chat_id,
                data,
                caption=caption,
                reply_markup=result_keyboard(image, lang),
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
                message_thread_id=thread,
            )
            await self._gen.record_delivery(
                who.chat_id, msg.message_id, image.id, msg.photo[-1].file_id if msg.photo else None
            )
            return msg
        msg = await self._bot.send_photo(
            who.chat_id,
            preview,
            caption=shorten(caption, CAPTION_LIMIT),
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=thread,
        )
        await self._gen.record_delivery(who.chat_id, msg.message_id, image.id, None)
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
    ) -> Message:
        data = data if data is not None else await self._gen.image_bytes(image)
        msg = await self._bot.send_document(
            who.chat_id,
            data,
            filename=file_name(image),
            caption=caption or t(lang, "original_sent"),
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
            disable_content_type_detection=True,
        )
        await self._gen.record_delivery(who.chat_id, msg.message_id, image.id, None)
        return msg

    async def _send_album(
        self, who: Who, lang: str, outcome: JobOutcome, reply_to: int | None
    ) -> None:
        """Several images in one answer: one album, then a row of original-file buttons."""
        media = []
        for i, image in enumerate(outcome.images[:10]):
            data = await self._gen.image_bytes(image)
            info = imaging.ImageInfo(image.mime, image.width, image.height, image.mime)
            preview = await imaging.atelegram_photo(data, info)
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
        for msg, image in zip(messages, outcome.images, strict=False):
            await self._gen.record_delivery(who.chat_id, msg.message_id, image.id, None)
        buttons = [
            InlineKeyboardButton(f"📎 {i + 1}", callback_data=f"orig:{image.id}")
            for i, image in enumerate(outcome.images[:10])
        ]
        await self._bot.send_message(
            who.chat_id,
            t(lang, "btn_original"),
            message_thread_id=who.thread_id or None,
            reply_markup=InlineKeyboardMarkup(
                [buttons[:5], buttons[5:]] if len(buttons) > 5 else [buttons]
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
            parse_mode=ParseMode.HTML,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
        )
