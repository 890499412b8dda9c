"""The shared path of every request: its turn in the chat's queue, progress, result or error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.prompts import PromptFlags, parse_flags
from bot.services.types import JobOptions, StoredImage
from bot.telegram.context import lang, services, who_of
from bot.telegram.errors import reply_error
from bot.telegram.progress import Progress, note_text
from bot.telegram.replies import ResultSender


@asynccontextmanager
async def chat_turn(update: Update, context: ContextTypes.DEFAULT_TYPE) -> AsyncIterator[None]:
    """Wait for this chat's earlier requests; say so when there are any."""
    svc, who = services(context), who_of(update)
    key = (who.chat_id, who.thread_id)
    ahead = svc.queue.ahead(key)
    note_id = None
    if ahead:
        with suppress(TelegramError):
            note = await context.bot.send_message(
                who.chat_id,
                t(lang(update, context), "queued", ahead=ahead),
                message_thread_id=who.thread_id or None,
            )
            note_id = note.message_id
    async with svc.queue.turn(key):
        if note_id is not None:
            with suppress(TelegramError):
                await context.bot.delete_message(who.chat_id, note_id)
        yield


async def run_job(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    text: str,
    inputs: list[StoredImage],
    *,
    options: JobOptions | None = None,
) -> None:
    """Generate (no inputs) or edit/compose (inputs), and answer in the chat. Never raises.

    `text` may carry flags (`--ar 16:9`); `options` (Regenerate) replaces flags and prefs.
    """
    svc = services(context)
    who, lng, message = who_of(update), lang(update, context), update.effective_message
    message_id = message.message_id if message else None
    try:
        flags = parse_flags(text) if options is None else PromptFlags(text)
        prompt = svc.generation.check_prompt(flags.prompt)
        svc.generation.check_inputs(inputs)
        prefs = await svc.prefs.get(who.chat_id)
        if options is None:
            options = svc.generation.options_for(prefs, flags, inputs)
        key = "status_working_edit" if inputs else "status_working"
        async with Progress(
            context.bot,
            who.chat_id,
            who.thread_id,
            lang=lng,
            key=key,
            timings=svc.progress,
            reply_to=message_id,
            budget=svc.progress_budget,
        ) as progress:

            async def on_progress(note: str) -> None:
                progress.note = note_text(lng, note)

            outcome = await svc.generation.run(
                who,
                prompt,
                inputs,
                message_id=message_id,
                options=options,
                progress=on_progress,
            )
            await progress.stop()
            # The result goes out first; the status message is removed after it (on exit).
            sender = ResultSender(context.bot, svc.images, svc.generation.supports_n)
            await sender.send(who, lng, outcome, message_id, reply_mode=prefs.reply_mode)
    except Exception as exc:  # the one place: every failure becomes a message
        await reply_error(update, context, exc)
