"""Buttons under results. Callback data names database rows, so buttons outlive restarts."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.telegram.context import lang, services, who_of
from bot.telegram.replies import ResultSender


async def on_original(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`orig:<image_id>`: send that image as a file, without Telegram's recompression."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc, who, lng = services(context), who_of(update), lang(update)
    image_id = int(query.data.partition(":")[2] or 0)
    image = await svc.generation.image(image_id, who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    reply_to = query.message.message_id if query.message else None
    await ResultSender(context.bot, svc.generation).send_original(
        who, lng, image, reply_to=reply_to
    )
