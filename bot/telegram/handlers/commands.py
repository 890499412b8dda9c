"""Commands: /start, /help, /new, and the answer to commands we do not know."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.telegram.context import lang, services, who_of
from bot.telegram.errors import reply_error


async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet and explain in the user's language."""
    user = update.effective_user
    name = user.first_name if user else ""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        t(lang(update), "start", name=name), parse_mode=ParseMode.HTML
    )


async def cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """How to use the bot, with examples."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        t(lang(update), "help", model=services(context).settings.image_model),
        parse_mode=ParseMode.HTML,
    )


async def cmd_new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget the current image: the next text draws a new picture."""
    who = who_of(update)
    await services(context).generation.start_over(who.chat_id, who.thread_id)
    assert update.effective_message is not None
    await update.effective_message.reply_text(t(lang(update), "new_session"))


async def cmd_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any command we do not have."""
    await reply_error(update, context, UserInputError("unknown_command"))
