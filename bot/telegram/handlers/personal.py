"""A person's data on request: /export (a zip of their images and prompts), /forget."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.telegram import callback_data as cd
from bot.telegram.context import lang, services, who_of
from bot.telegram.flow import chat_turn
from bot.telegram.keyboards import forget_keyboard

Context = ContextTypes.DEFAULT_TYPE


def _private_only(update: Update) -> None:
    """A person's data goes to their private chat only, never into a group."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        raise UserInputError("private_only")


async def cmd_export(update: Update, context: Context) -> None:
    """Send the person a zip (or several, under Telegram's 50 MB) of their images and a JSON."""
    _private_only(update)
    async with chat_turn(update, context):  # one export at a time, after the running job
        await _export(update, context)


async def _export(update: Update, context: Context) -> None:
    svc, who, lng = services(context), who_of(update), lang(update, context)
    assert svc.personal is not None and update.effective_message is not None
    reply_to = update.effective_message.message_id
    async with svc.personal.exported(who.user_id) as export:
        if not export.jobs and not export.images:
            await update.effective_message.reply_text(t(lng, "export_empty"))
            return
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        count = len(export.parts)
        for number, path in enumerate(export.parts, 1):
            caption = t(
                lng,
                "export_caption",
                images=export.images,
                jobs=export.jobs,
                part=number,
                parts=count,
            )
            with path.open("rb") as fh:  # PTB reads the file as it uploads it
                await context.bot.send_document(
                    who.chat_id,
                    fh,
                    filename=f"nanobanana-export-{stamp}-{number}of{count}.zip",
                    caption=caption,
                    reply_to_message_id=reply_to if number == 1 else None,
                )


async def cmd_forget(update: Update, context: Context) -> None:
    """Ask once before deleting the person's jobs, images and settings."""
    _private_only(update)
    who, lng = who_of(update), lang(update, context)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        t(lng, "forget_ask"), reply_markup=forget_keyboard(lng, who.user_id)
    )


async def on_forget(update: Update, context: Context, press: cd.ConfirmForget) -> None:
    """The confirmation: only the person it asked may press it, in their private chat."""
    query = update.callback_query
    assert query is not None
    who, lng = who_of(update), lang(update, context)
    if press.user_id != who.user_id or who.chat_type != ChatType.PRIVATE:
        await query.answer(t(lng, "forget_not_yours"), show_alert=True)
        return
    svc = services(context)
    assert svc.personal is not None
    await query.answer()
    async with chat_turn(update, context):  # after the chat's running job, not under it
        done = await svc.personal.forget(who.user_id, who.chat_id)
        text = t(
            lang(update, context),
            "forget_done",
            jobs=done.jobs,
            images=done.images,
            kept=done.files_kept,
        )
        await query.edit_message_text(text)


async def on_keep(update: Update, context: Context, press: cd.KeepData) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(t(lang(update, context), "forget_kept"))
