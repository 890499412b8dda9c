"""The one place that turns any error into words for the user (and a note for the admins)."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import imaging
from bot.i18n import t
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.services.errors import UserInputError
from bot.telegram.context import lang, services, thread_of

log = logging.getLogger(__name__)

# Failures the bot's owner must act on: the user is told, the admins get the detail.
ADMIN_KINDS = frozenset({ProviderErrorKind.AUTH, ProviderErrorKind.NOT_FOUND})


def message_for(exc: BaseException, lang_code: str) -> str:
    if isinstance(exc, UserInputError):
        return t(lang_code, f"err_{exc.code}", **exc.params)
    if isinstance(exc, imaging.ImageInputError):
        return t(lang_code, f"err_image_{exc.code}")
    if isinstance(exc, ProviderError):
        return t(lang_code, f"err_{exc.kind.value}")
    return t(lang_code, "err_internal")


async def reply_error(
    update: Update, context: ContextTypes.DEFAULT_TYPE, exc: BaseException
) -> None:
    """Tell the user what went wrong, in their language; tell admins when they must act."""
    if not isinstance(exc, (UserInputError, imaging.ImageInputError, ProviderError)):
        log.error("unexpected error handling update", exc_info=exc)
    elif isinstance(exc, ProviderError):
        log.warning("upstream failed: %s (endpoint %s)", exc.kind.value, exc.endpoint or "-")
    message = update.effective_message
    chat = update.effective_chat
    if chat is not None:
        try:
            await context.bot.send_message(
                chat.id,
                message_for(exc, lang(update)),
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_of(message) or None,
                reply_to_message_id=message.message_id if message else None,
                allow_sending_without_reply=True,
            )
        except TelegramError:
            log.warning("could not send the error message to chat %s", chat.id)
    if isinstance(exc, ProviderError) and exc.kind in ADMIN_KINDS:
        await notify_admins(
            context, f"⚠️ upstream {exc.kind.value} at {exc.endpoint or '-'}: {exc.detail}"
        )


async def notify_admins(context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    for admin_id in services(context).settings.admin_user_ids:
        try:
            await context.bot.send_message(admin_id, html.escape(text)[:4000])
        except TelegramError:
            log.info("could not notify admin %s", admin_id)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler: last resort for anything a handler did not catch."""
    log.error("unhandled error", exc_info=context.error)
    if isinstance(update, Update) and context.error is not None:
        await reply_error(update, context, context.error)
