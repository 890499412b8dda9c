"""The shared path of every request: its turn in the chat's queue, progress, and its result.

Errors are put into words by bot.telegram.errors.on_error, PTB's error handler, alone: those
raised in a chat's turn are handed to it before the turn ends, the others leave the handler.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

from telegram import Bot, InputMediaPhoto, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.metrics import METRICS
from bot.services.requests import GenerationRequest
from bot.services.types import JobOutcome, ProgressCallback, Who
from bot.telegram.context import Services, lang, services, who_of
from bot.telegram.progress import Progress
from bot.telegram.replies import VARIATIONS, ResultSender, caption_for, one_line


@dataclass
class _WaitNote:
    """The "queued" message of a request that waited for its chat's earlier ones."""

    message_id: int | None = None


# The note of the request whose turn this task holds: its job's progress adopts it as the
# status message, so one request never shows a "queued" note and a status message both.
_turn_note: ContextVar[_WaitNote | None] = ContextVar("turn_note", default=None)


@asynccontextmanager
async def chat_turn(update: Update, context: ContextTypes.DEFAULT_TYPE) -> AsyncIterator[None]:
    """Wait for this chat's earlier requests; say so when there are any."""
    svc, who = services(context), who_of(update)
    key = (who.chat_id, who.thread_id)
    ahead = svc.queue.ahead(key)
    note = _WaitNote()
    if ahead:
        with suppress(TelegramError):
            sent = await context.bot.send_message(
                who.chat_id,
                t(lang(update, context), "queued", ahead=ahead),
                message_thread_id=who.thread_id or None,
            )
            note.message_id = sent.message_id
    async with svc.queue.turn(key):
        token = _turn_note.set(note)
        try:
            yield
        except Exception as exc:
            # Told within the turn, so the chat hears of this failure before its next request.
            await context.application.process_error(update, exc)
        finally:
            _turn_note.reset(token)
            if note.message_id is not None:  # no job took it over
                with suppress(TelegramError):
                    await context.bot.delete_message(who.chat_id, note.message_id)


def _adopt_note() -> int | None:
    """The id of this turn's "queued" message, which the caller now owns (None: none)."""
    note = _turn_note.get()
    if note is None:
        return None
    message_id, note.message_id = note.message_id, None
    return message_id


async def generate(
    update: Update, context: ContextTypes.DEFAULT_TYPE, request: GenerationRequest
) -> None:
    """Draw, edit or compose what the request asks, in the chat's turn, and answer it."""
    async with chat_turn(update, context):
        await answer(update, context, request)


async def answer(
    update: Update, context: ContextTypes.DEFAULT_TYPE, request: GenerationRequest
) -> None:
    """As `generate`, for a caller that holds the chat's turn already."""
    svc = services(context)
    job = await svc.generation.prepare(request)
    await deliver(
        context.bot,
        svc,
        job.who,
        lang(update, context),
        job.reply_to,
        partial(svc.generation.run, job),
        editing=job.editing,
    )


RunJob = Callable[[ProgressCallback], Awaitable[JobOutcome]]


async def deliver(
    bot: Bot,
    svc: Services,
    who: Who,
    lng: str,
    reply_to: int | None,
    run: RunJob,
    *,
    editing: bool = False,
) -> JobOutcome:
    """Run a job with its progress shown, send its result, and record that it was delivered.
    Raises what the job raises."""
    async with Progress(
        bot,
        who.chat_id,
        who.thread_id,
        lang=lng,
        key="status_working_edit" if editing else "status_working",
        timings=svc.progress,
        reply_to=reply_to,
        budget=svc.progress_budget,
        status_id=_adopt_note(),
        draft_id=_draft_id(svc, who),
    ) as progress:
        outcome = await run(progress.report)
        await progress.stop()
        # The result goes out first; the status message is removed after it (on exit).
        prefs = await svc.prefs.get(who.chat_id)
        can = svc.generation.capabilities(outcome.model)
        variations = can.supports_n
        prices = svc.generation.button_prices(outcome, VARIATIONS)
        sender = ResultSender(bot, svc.images, variations, prices, can)
        try:
            await sender.send(who, lng, outcome, reply_to, reply_mode=prefs.reply_mode)
        except BaseException:
            # Paid mode: what never reached the chat is not charged (a delivery that got
            # through has settled the job already, and this changes nothing).
            await svc.generation.release(outcome.job_id)
            raise
        if not outcome.images:  # a shown image records its job's delivery with it
            await svc.generation.mark_delivered(outcome.job_id)
        METRICS.images_delivered(outcome.model, len(outcome.images))
    return outcome


def _draft_id(svc: Services, who: Who) -> int | None:
    """A new live draft for a private chat's job (LIVE_DRAFTS); None: a status message."""
    if not svc.settings.live_drafts or who.chat_type != ChatType.PRIVATE:
        return None
    return secrets.randbelow(2**31 - 1) + 1  # non-zero; a new one animates as a new draft


async def draw_inline(
    bot: Bot, svc: Services, request: GenerationRequest, lng: str, inline_message_id: str
) -> None:
    """A "Draw" chosen in inline mode: the job runs as the person's own in their private chat
    (its turn, checks, quota, price, records), its result is sent there, and the photo's
    file_id then fills the inline message (a file cannot be uploaded into one)."""
    who = request.who
    # Someone who never opened the bot's chat can't be sent the picture: Forbidden here, before
    # anything is spent upstream.
    await bot.send_chat_action(who.chat_id, ChatAction.UPLOAD_PHOTO)
    async with svc.queue.turn((who.chat_id, who.thread_id)):
        job = await svc.generation.prepare(request)
        run = partial(svc.generation.run, job)
        outcome = await deliver(bot, svc, who, lng, None, run, editing=job.editing)
    shown = await svc.images.get(outcome.images[0].id, who.chat_id) if outcome.images else None
    if shown is None or not shown.tg_file_id:  # no picture, or one too big to show as a photo
        await bot.edit_message_text(
            t(lng, "inline_in_private"), inline_message_id=inline_message_id
        )
        return
    caption = one_line(caption_for(outcome, lng))
    await bot.edit_message_media(
        InputMediaPhoto(shown.tg_file_id, caption=caption), inline_message_id=inline_message_id
    )
