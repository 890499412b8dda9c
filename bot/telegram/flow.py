"""The shared path of every request: its turn in the chat's queue, progress, result or error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.prefs import Prefs
from bot.services.prompts import PromptFlags, parse_flags
from bot.services.types import JobOptions, JobOutcome, StoredImage, Who
from bot.telegram.context import Services, lang, services, who_of
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
        prefs = await svc.prefs.get(who.chat_id)
        svc.generation.check_inputs(inputs, options.model if options else prefs.model)
        if options is None:
            options = svc.generation.options_for(prefs, flags, inputs)
        outcome_of = partial(
            svc.generation.run, who, prompt, inputs, message_id=message_id, options=options
        )
        await answer_job(
            context.bot, svc, who, lng, message_id, prefs, edit=bool(inputs), run=outcome_of
        )
    except Exception as exc:  # the one place: every failure becomes a message
        await reply_error(update, context, exc)


RunJob = Callable[..., Awaitable[JobOutcome]]  # called with progress=<callback>


async def answer_job(
    bot: Bot,
    svc: Services,
    who: Who,
    lng: str,
    reply_to: int | None,
    prefs: Prefs,
    *,
    edit: bool,
    run: RunJob,
) -> None:
    """Run a job with its progress shown, send its result, and record that it was delivered.
    Raises what the job raises (the caller tells the user)."""
    async with Progress(
        bot,
        who.chat_id,
        who.thread_id,
        lang=lng,
        key="status_working_edit" if edit else "status_working",
        timings=svc.progress,
        reply_to=reply_to,
        budget=svc.progress_budget,
    ) as progress:

        async def on_progress(note: str) -> None:
            progress.note = note_text(lng, note)

        outcome = await run(progress=on_progress)
        await progress.stop()
        # The result goes out first; the status message is removed after it (on exit).
        variations = svc.generation.capabilities(outcome.model).supports_n
        sender = ResultSender(bot, svc.images, variations)
        await sender.send(who, lng, outcome, reply_to, reply_mode=prefs.reply_mode)
        if not outcome.images:  # a shown image records its job's delivery with it
            await svc.generation.mark_delivered(outcome.job_id)
