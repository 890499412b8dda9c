"""The shared path of every request: progress while the job runs, then the result or the error."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.services.generation import StoredImage
from bot.telegram.context import lang, services, who_of
from bot.telegram.errors import reply_error
from bot.telegram.progress import Progress
from bot.telegram.replies import ResultSender


async def run_job(
    update: Update, context: ContextTypes.DEFAULT_TYPE, prompt: str, inputs: list[StoredImage]
) -> None:
    """Generate (no inputs) or edit/compose (inputs), and answer in the chat. Never raises."""
    svc = services(context)
    who, lng, message = who_of(update), lang(update), update.effective_message
    message_id = message.message_id if message else None
    try:
        prompt = svc.generation.check_prompt(prompt)
        key = "status_working_edit" if inputs else "status_working"
        async with Progress(
            context.bot,
            who.chat_id,
            who.thread_id,
            lang=lng,
            key=key,
            timings=svc.progress,
            reply_to=message_id,
        ):
            outcome = await svc.generation.run(who, prompt, inputs, message_id=message_id)
        await ResultSender(context.bot, svc.generation).send(who, lng, outcome, message_id)
    except Exception as exc:  # the one place: every failure becomes a message
        await reply_error(update, context, exc)
