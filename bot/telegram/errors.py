"""The one place that turns any error into words for the user (and a note for the admins)."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterable

from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import imaging, redaction
from bot.i18n import t
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.pool import EndpointFaultHook
from bot.services.errors import UserInputError
from bot.telegram.context import lang, thread_of

log = logging.getLogger(__name__)
_STALE_QUERY = "query is too old"


def message_for(exc: BaseException, lang_code: str) -> str:
    if isinstance(exc, UserInputError):
        return t(lang_code, f"err_{exc.code}", **exc.params)
    if isinstance(exc, imaging.ImageInputError):
        return t(lang_code, f"err_image_{exc.code}")
    if isinstance(exc, ProviderError):
        if exc.kind is ProviderErrorKind.BLOCKED and "RECITATION" in (exc.reason or ""):
            return t(lang_code, "err_recitation")
        return t(lang_code, f"err_{exc.kind.value}")
    return t(lang_code, "err_internal")


async def reply_error(
    update: Update, context: ContextTypes.DEFAULT_TYPE, exc: BaseException
) -> None:
    """Tell the user what went wrong, in their language (admins hear from the pool)."""
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
                message_for(exc, lang(update, context)),
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_of(message) or None,
                reply_to_message_id=message.message_id if message else None,
                allow_sending_without_reply=True,
            )
        except TelegramError:
            log.warning("could not send the error message to chat %s", chat.id)


async def notify_admins(bot: Bot, admin_ids: Iterable[int], text: str) -> None:
    """Tell the bot's admins something they must act on (detail allowed, secrets never)."""
    for admin_id in admin_ids:
        try:
            await bot.send_message(admin_id, html.escape(redaction.redact(text))[:4000])
        except TelegramError:
            log.info("could not notify admin %s", admin_id)


def endpoint_fault_notifier(bot: Bot, admin_ids: Iterable[int]) -> EndpointFaultHook:
    """The provider pool calls this when an endpoint's key, model or quota fails."""
    ids = tuple(admin_ids)

    async def notify(err: ProviderError) -> None:
        await notify_admins(
            bot, ids, f"⚠️ endpoint {err.endpoint or '-'}: {err.kind.value} — {err.detail}"
        )

    return notify


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler: last resort for anything a handler did not catch."""
    if isinstance(context.error, BadRequest) and _STALE_QUERY in context.error.message.lower():
        # A press Telegram no longer takes an answer for (the bot was down when it was made):
        # nobody waits for that answer any more.
        log.info("a button press was too old to answer")
        return
    log.error("unhandled error", exc_info=context.error)
    if not isinstance(update, Update) or context.error is None:
        return
    if update.callback_query is not None:
        # A handler that failed before answering would leave the button spinning; an answer
        # that comes twice is refused by Telegram, which is harmless here.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    await reply_error(update, context, context.error)
