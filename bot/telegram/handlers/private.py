"""Private chat: text draws or refines, photos are edited or kept, albums are composed."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.telegram.context import lang, request_of, services, thread_of, who_of
from bot.telegram.flow import chat_turn, generate
from bot.telegram.inputs import (
    GROUP_REQUEST_COMMANDS,
    leading_command,
    replied_image,
    strip_command,
    telegram_image,
)

ALBUMS_KEY = "albums"


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text: edit the image it replies to, else a waiting album or the current image."""
    message = update.effective_message
    assert message is not None and message.text is not None
    replied = replied_image(context.bot, message)
    request = request_of(update, message.text, (replied,), chat_images=True, take_style=True)
    await generate(update, context, request)


async def on_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or image file: with a caption it is edited; without, it waits for the next text."""
    message = update.effective_message
    assert message is not None
    if message.media_group_id:
        key = (message.chat.id, thread_of(message), message.media_group_id)
        context.application.bot_data[ALBUMS_KEY].add(key, update, context)
        return
    image = telegram_image(context.bot, message)
    if image is None:
        raise UserInputError("not_image_document")
    caption = (message.caption or "").strip()
    if caption:
        await generate(update, context, request_of(update, caption, (image,)))
        return
    async with chat_turn(update, context):
        await services(context).generation.keep_images(who_of(update), [image])
        await message.reply_text(t(lang(update, context), "photo_kept"))


async def on_album(updates: list[Update], context: ContextTypes.DEFAULT_TYPE) -> None:
    """All photos of one album: with a caption (on any item) they are composed at once."""
    first, messages = updates[0], [u.effective_message for u in updates if u.effective_message]
    caption = next((m.caption for m in messages if m.caption), "") or ""
    if first.effective_chat is not None and first.effective_chat.type != "private":
        if leading_command(caption) not in GROUP_REQUEST_COMMANDS:
            return  # a group album not addressed to the bot
        caption = strip_command(caption)
    images = [image for m in messages if (image := telegram_image(context.bot, m))]
    if not images:
        raise UserInputError("not_image_document")
    if caption.strip():
        await generate(first, context, request_of(first, caption, tuple(images)))
        return
    async with chat_turn(first, context):
        kept = await services(context).generation.keep_images(who_of(first), images, album=True)
        await messages[0].reply_text(t(lang(first, context), "album_kept", count=len(kept)))


async def on_animation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """GIFs arrive as animations: say clearly that still images are needed."""
    raise UserInputError("image_animated")


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, video, locations…: explain what the bot understands."""
    raise UserInputError("unsupported_message")
