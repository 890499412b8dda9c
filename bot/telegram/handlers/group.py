"""Groups and supergroups: /imagine, /edit, replies to the bot's images, @mentions.

Everything else said in a group is none of the bot's business: no upstream call, no reply.
"""

from __future__ import annotations

import re

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.services.errors import UserInputError
from bot.telegram.context import request_of, services, thread_of
from bot.telegram.flow import answer, chat_turn, generate
from bot.telegram.handlers.private import ALBUMS_KEY
from bot.telegram.inputs import mentions, replied_image, strip_command, telegram_image


def command_args(message: Message) -> str:
    """The text after a leading /command (or /command@bot), in text or caption."""
    return strip_command(message.text or message.caption or "")


def _bot_mentioned(message: Message, username: str) -> bool:
    return mentions(message.text or "", username)


async def cmd_imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/imagine prompt`: a new picture; on a photo's caption, an edit of that photo."""
    message = update.effective_message
    assert message is not None
    prompt = command_args(message)
    if not prompt:
        raise UserInputError("imagine_usage")
    own = telegram_image(context.bot, message)
    await generate(update, context, request_of(update, prompt, (own,), take_style=True))


async def cmd_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/edit prompt` as a reply to a photo (or with a photo): edit that photo."""
    message = update.effective_message
    assert message is not None
    prompt = command_args(message)
    if not prompt:
        raise UserInputError("edit_usage")
    image = telegram_image(context.bot, message) or replied_image(context.bot, message)
    await generate(update, context, request_of(update, prompt, (image,), needs_image=True))


async def on_captioned_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo whose caption is /imagine or /edit: edit it (an album: compose them)."""
    message = update.effective_message
    assert message is not None
    if message.media_group_id:
        await on_album_photo(update, context)
        return
    await (cmd_edit if (message.caption or "").startswith("/edit") else cmd_imagine)(
        update, context
    )


async def on_album_photo_if_any(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A captionless photo in a group matters only as part of an album."""
    message = update.effective_message
    if message is not None and message.media_group_id:
        await on_album_photo(update, context)


async def on_album_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Album items in a group are gathered; only an album with an /imagine caption is used."""
    message = update.effective_message
    assert message is not None and message.media_group_id is not None
    key = (message.chat.id, thread_of(message), message.media_group_id)
    context.application.bot_data[ALBUMS_KEY].add(key, update, context)


async def on_reply_or_mention(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to one of the bot's images refines it; an @mention with text is /imagine."""
    message = update.effective_message
    assert message is not None and message.text is not None
    replied = message.reply_to_message
    bot = context.bot
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        async with chat_turn(update, context):  # the job that sent that image has finished
            image = await services(context).images.for_message(replied.chat.id, replied.message_id)
            if image is not None:
                await answer(update, context, request_of(update, message.text, (image,)))
                return
    if _bot_mentioned(message, bot.username):
        prompt = re.sub(rf"@{re.escape(bot.username)}\b", "", message.text, flags=re.IGNORECASE)
        if not prompt.strip():
            raise UserInputError("imagine_usage")
        await generate(update, context, request_of(update, prompt.strip(), take_style=True))
