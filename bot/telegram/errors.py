"""The one place that turns any error into words for the user (and a note for the admins)."""

from __future__ import annotations

import contextlib
import html
import logging
import math
from collections.abc import Awaitable, Callable, Iterable

from telegram import Bot, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot import redaction
from bot.i18n import t
from bot.services.errors import (
    EMPTY_RESPONSE,
    ImageInputError,
    JobTakenOver,
    NotEnoughStarsError,
    ProviderError,
    ProviderErrorKind,
    UserInputError,
    failed_job,
)
from bot.services.types import Who
from bot.telegram.context import lang, who_of
from bot.telegram.keyboards import buy_keyboard, retry_keyboard

log = logging.getLogger(__name__)
_STALE_QUERY = "query is too old"


def message_for(exc: BaseException, lang_code: str) -> str:
    if isinstance(exc, Forbidden):  # inline mode: the person never opened a chat with the bot
        return t(lang_code, "inline_start_first")
    if isinstance(exc, UserInputError):
        return t(lang_code, f"err_{exc.code}", **exc.params)
    if isinstance(exc, ImageInputError):
        return t(lang_code, f"err_image_{exc.code}")
    if isinstance(exc, ProviderError):
        return _provider_message(exc, lang_code)
    return t(lang_code, "err_internal")


def _provider_message(exc: ProviderError, lang_code: str) -> str:
    kind, reason = exc.kind, exc.reason or ""
    if kind is ProviderErrorKind.BLOCKED and "RECITATION" in reason:
        return t(lang_code, "err_recitation")
    if kind is ProviderErrorKind.BLOCKED and reason == "content_filter":
        # new-api says so of any non-STOP finish: maybe a block, so the hint comes along
        return f"{t(lang_code, 'err_content_filter')}\n\n{t(lang_code, 'blocked_rephrase')}"
    if kind is ProviderErrorKind.SERVER and reason == EMPTY_RESPONSE:
        return t(lang_code, "err_empty_response")
    if kind is ProviderErrorKind.RETRY_LATER:
        return t(lang_code, "err_retry_later", seconds=math.ceil(exc.retry_after or 0))
    if kind is ProviderErrorKind.MODEL_RETIRED and exc.model:
        return t(lang_code, "err_model_retired_named", model=exc.model)
    if kind is ProviderErrorKind.BLOCKED:  # a hint on how to ask so it passes
        return f"{t(lang_code, 'err_blocked')}\n\n{t(lang_code, 'blocked_rephrase')}"
    return t(lang_code, f"err_{kind.value}")


DOMAIN_ERRORS = (UserInputError, ImageInputError, ProviderError, JobTakenOver)


async def tell_user(
    bot: Bot, who: Who, lang_code: str, reply_to: int | None, exc: BaseException
) -> None:
    """Say what went wrong in the user's language; a chat that cannot hear it is only logged."""
    if isinstance(exc, JobTakenOver):
        return  # the replica that took the job over answers its user
    try:
        await bot.send_message(
            who.chat_id,
            message_for(exc, lang_code),
            message_thread_id=who.thread_id or None,
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            reply_markup=_keyboard_for(exc, lang_code),
        )
    except TelegramError:
        log.warning("could not send the error message to chat %s", who.chat_id)


def _keyboard_for(exc: BaseException, lang_code: str) -> InlineKeyboardMarkup | None:
    """Too few credits: the way to buy more; any failed job: Retry (a safety block too, since
    the model's filters are not the same twice); a refusal before any job: none."""
    if isinstance(exc, NotEnoughStarsError):
        return buy_keyboard(lang_code)
    job_id = failed_job(exc)
    return retry_keyboard(job_id, lang_code) if job_id is not None else None


async def tell_inline(bot: Bot, inline_message_id: str, lang_code: str, exc: BaseException) -> None:
    """Say what went wrong in the inline message the person posted (its only place)."""
    try:
        await bot.edit_message_text(
            message_for(exc, lang_code), inline_message_id=inline_message_id
        )
    except TelegramError:
        log.warning("could not put the error into an inline message")


async def notify_admins(bot: Bot, admin_ids: Iterable[int], text: str) -> None:
    """Tell the bot's admins something they must act on (detail allowed, secrets never)."""
    for admin_id in admin_ids:
        try:
            await bot.send_message(admin_id, html.escape(redaction.redact(text))[:4000])
        except TelegramError:
            log.info("could not notify admin %s", admin_id)


def endpoint_fault_notifier(
    bot: Bot, admin_ids: Iterable[int]
) -> Callable[[ProviderError], Awaitable[None]]:
    """The provider pool calls this when an endpoint's key, model or quota fails. A retired
    model is reported once per endpoint and model (every job would otherwise repeat it)."""
    ids = tuple(admin_ids)
    retired: set[tuple[str, str]] = set()

    async def notify(err: ProviderError) -> None:
        where = err.endpoint or "-"
        if err.kind is ProviderErrorKind.MODEL_RETIRED and err.model:
            if (where, err.model) in retired:
                return
            retired.add((where, err.model))
            instead = (
                f"use {err.successor} instead (IMAGE_MODEL, or a chat's /settings)"
                if err.successor
                else "no known replacement: choose another model"
            )
            text = f"⚠️ endpoint {where}: model {err.model} is retired or unknown there; {instead}"
            await notify_admins(bot, ids, f"{text} — {err.detail}")
            return
        await notify_admins(bot, ids, f"⚠️ endpoint {where}: {err.kind.value} — {err.detail}")

    return notify


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler, the one place an update's error becomes words: what a handler
    raised (a domain error, or anything unexpected, logged once with its traceback)."""
    error = context.error
    if isinstance(error, BadRequest) and _STALE_QUERY in error.message.lower():
        # A press Telegram no longer takes an answer for (the bot was down when it was made):
        # nobody waits for that answer any more.
        log.info("a button press was too old to answer")
        return
    if isinstance(error, ProviderError):
        log.warning("upstream failed: %s (endpoint %s)", error.kind.value, error.endpoint or "-")
    elif not isinstance(error, DOMAIN_ERRORS):
        log.error("unhandled error", exc_info=error)
    if not isinstance(update, Update) or error is None:
        return
    if update.callback_query is not None:
        # A handler that failed before answering would leave the button spinning; an answer
        # that comes twice is refused by Telegram, which is harmless here.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    chosen = update.chosen_inline_result
    if chosen is not None and chosen.inline_message_id:
        await tell_inline(context.bot, chosen.inline_message_id, lang(update, context), error)
        return
    if update.effective_chat is None or update.effective_user is None:
        return
    message = update.effective_message
    reply_to = message.message_id if message else None
    await tell_user(context.bot, who_of(update), lang(update, context), reply_to, error)
