"""Private chat: text draws or refines, photos are edited or kept, everything else is explained."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.services.generation import StoredImage
from bot.telegram.context import lang, services, who_of
from bot.telegram.errors import reply_error
from bot.telegram.flow import run_job
from bot.telegram.inputs import download, image_file_of


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text: edit the image it replies to, else refine the current image, else draw anew."""
    message = update.effective_message
    assert message is not None and message.text is not None
    gen, who = services(context).generation, who_of(update)
    async with gen.chat_lock(who.chat_id, who.thread_id):
        try:
            target = await replied_image(update, context, message)
            if target is None:
                target = await gen.current_image(who.chat_id, who.thread_id)
        except Exception as exc:
            await reply_error(update, context, exc)
            return
        await run_job(update, context, message.text, [target] if target else [])


async def on_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or image file: with a caption it is edited; without, it is kept for the next text."""
    message = update.effective_message
    assert message is not None
    gen, who = services(context).generation, who_of(update)
    caption = (message.caption or "").strip()
    async with gen.chat_lock(who.chat_id, who.thread_id):
        try:
            image = await take_image(update, context, message, make_current=not caption)
            if image is None:
                raise UserInputError("not_image_document")
        except Exception as exc:
            await reply_error(update, context, exc)
            return
        if caption:
            await run_job(update, context, caption, [image])
        else:
            await message.reply_text(t(lang(update), "photo_kept"), parse_mode=ParseMode.HTML)


async def on_animation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """GIFs arrive as animations: say clearly that still images are needed."""
    await reply_error(update, context, UserInputError("image_animated"))


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, video, locations…: explain what the bot understands."""
    await reply_error(update, context, UserInputError("unsupported_message"))


async def take_image(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message, *, make_current: bool
) -> StoredImage | None:
    """Download and keep the image a message carries (None if it carries none)."""
    ref = image_file_of(message)
    if ref is None:
        return None
    data = await download(context.bot, ref)
    return await services(context).generation.take_user_image(
        who_of(update),
        data,
        file_id=ref.file_id,
        file_unique_id=ref.file_unique_id,
        message_id=message.message_id,
        make_current=make_current,
    )


async def replied_image(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message
) -> StoredImage | None:
    """The image of the message this one replies to: ours from the database, or the user's."""
    replied = message.reply_to_message
    if replied is None:
        return None
    gen = services(context).generation
    known = await gen.image_for_message(replied.chat.id, replied.message_id)
    if known is not None:
        return known
    return await take_image(update, context, replied, make_current=False)
