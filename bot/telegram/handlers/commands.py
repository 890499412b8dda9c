"""Commands: /start /help /new /ratio /history /undo /settings /styles /style, and unknown ones."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.telegram.context import lang, services, who_of
from bot.telegram.flow import chat_turn
from bot.telegram.inputs import strip_command
from bot.telegram.keyboards import (
    history_keyboard,
    ratio_keyboard,
    settings_keyboard,
    settings_text,
)
from bot.telegram.replies import ResultSender, send_styles


async def _reply(update: Update, text: str, **kwargs: object) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, **kwargs)  # type: ignore[arg-type]


async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet and explain in the user's language."""
    name = update.effective_user.first_name if update.effective_user else ""
    await _reply(update, t(lang(update, context), "start", name=name))


async def cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """How to use the bot, with examples."""
    model = services(context).generation.default_model
    await _reply(update, t(lang(update, context), "help", model=model))


async def cmd_new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget the current image: the next text draws a new picture."""
    who = who_of(update)
    async with chat_turn(update, context):  # after the chat's running job, not under it
        await services(context).images.start_over(who.chat_id, who.thread_id)
        await _reply(update, t(lang(update, context), "new_session"))


async def cmd_ratio(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Choose the aspect ratio kept for this chat."""
    svc, lng = services(context), lang(update, context)
    prefs = await svc.prefs.get(who_of(update).chat_id)
    keyboard = ratio_keyboard(lng, prefs.aspect_ratio, svc.generation.capabilities(prefs.model))
    await _reply(update, t(lng, "ratio_pick"), reply_markup=keyboard)


async def cmd_history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The chat's images, newest first, paged."""
    lng = lang(update, context)
    page = await services(context).images.history(who_of(update).chat_id, 0)
    if not page.total:
        await _reply(update, t(lng, "history_empty"))
        return
    await _reply(
        update,
        t(lng, "history", total=page.total, page=1, pages=page.pages),
        reply_markup=history_keyboard(lng, page),
    )


async def cmd_undo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Step back one result: the picture before it becomes the current one again."""
    async with chat_turn(update, context):  # step back from the running job's result
        await _undo(update, context)


async def _undo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc, who, lng = services(context), who_of(update), lang(update, context)
    stepped, image = await svc.images.undo(who.chat_id, who.thread_id)
    if not stepped:
        await _reply(update, t(lng, "undo_nothing"))
    elif image is None:
        await _reply(update, t(lng, "undo_to_start"))
    else:
        message = update.effective_message
        await ResultSender(context.bot, svc.images).send_image(
            who, lng, image, t(lng, "undo_done"), message.message_id if message else None, None
        )


async def cmd_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Model, ratio, size, reply format, language and refine mode for this chat."""
    svc, lng = services(context), lang(update, context)
    prefs = await svc.prefs.get(who_of(update).chat_id)
    can = svc.generation.capabilities(prefs.model)
    await _reply(
        update,
        settings_text(lng, prefs, svc.generation.default_model, can),
        reply_markup=settings_keyboard(lng, can),
    )


async def cmd_styles(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The style gallery: a tap applies a style to the current image, else to the next text."""
    svc, who, lng = services(context), who_of(update), lang(update, context)
    current = await svc.styles.target(who)
    message = update.effective_message
    reply_to = message.message_id if message else None
    await send_styles(context.bot, svc.styles, who, lng, image=current, reply_to=reply_to)


async def cmd_style(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/style add <name> <template>` and `/style remove <name>`: the chat's own styles."""
    svc, who, lng = services(context), who_of(update), lang(update, context)
    assert update.effective_message is not None
    action, rest = [*strip_command(update.effective_message.text or "").split(None, 1), "", ""][:2]
    if action.lower() == "add":
        name = await svc.styles.add(who, rest)
        await _reply(update, t(lng, "style_added", name=name))
    elif action.lower() in ("remove", "delete", "rm"):
        name = await svc.styles.remove(who.chat_id, rest)
        await _reply(update, t(lng, "style_removed", name=name))
    else:
        raise UserInputError("style_usage")


async def cmd_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any command we do not have."""
    raise UserInputError("unknown_command")
