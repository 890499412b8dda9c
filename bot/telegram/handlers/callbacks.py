"""Buttons. Callback data names database rows, so buttons work after a restart."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import CallbackQuery, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.prefs import MATCH_INPUT, RATIOS
from bot.telegram.context import lang, services, who_of
from bot.telegram.flow import chat_turn, run_job
from bot.telegram.gate import MAX_ROW_ID
from bot.telegram.keyboards import (
    choices_keyboard,
    history_keyboard,
    ratio_keyboard,
    settings_keyboard,
    settings_text,
)
from bot.telegram.replies import ResultSender

log = logging.getLogger(__name__)
VARIATIONS = 4


def _query(update: Update) -> tuple[CallbackQuery, str]:
    query = update.callback_query
    assert query is not None and query.data is not None
    return query, query.data.partition(":")[2]


def _int(text: str) -> int:
    """A row id or page from callback data; -1 when it is not one (or too big for SQLite)."""
    if text.isascii() and text.isdigit() and int(text) <= MAX_ROW_ID:
        return int(text)
    return -1


async def on_original(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`orig:<image>`: send that image as a file, without Telegram's recompression."""
    query, arg = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    image = await svc.images.get(_int(arg), who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    reply_to = query.message.message_id if query.message else None
    await ResultSender(context.bot, svc.images).send_original(who, lng, image, reply_to=reply_to)


async def on_regenerate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`regen:<job>` and `var:<job>`: the same prompt and inputs again (or several variations)."""
    query, arg = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    spec = await svc.generation.job_spec(_int(arg), who.chat_id)
    if spec is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    prompt, inputs, options = spec
    if (query.data or "").startswith("var:"):
        options = replace(options, n=VARIATIONS)
    async with chat_turn(update, context):
        await run_job(update, context, prompt, inputs, options=options)


async def on_new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`new`: start fresh; the next text draws a new picture."""
    query, _ = _query(update)
    who = who_of(update)
    await query.answer(t(lang(update, context), "new_session"))
    async with chat_turn(update, context):  # after the chat's running job, not under it
        await services(context).images.start_over(who.chat_id, who.thread_id)


async def on_ratio(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`ratio:<r|match|auto>` from /ratio or the settings menu."""
    query, arg = _query(update)
    svc, who = services(context), who_of(update)
    if arg not in (*RATIOS, MATCH_INPUT, "auto"):
        await query.answer(t(lang(update, context), "button_unknown"))
        return
    value = None if arg == "auto" else (MATCH_INPUT if arg == "match" else arg)
    prefs = await svc.prefs.update(who.chat_id, who.chat_type, who.chat_title, aspect_ratio=value)
    lng = lang(update, context)
    await query.answer(t(lng, "saved"))
    markup = query.message.reply_markup if isinstance(query.message, Message) else None
    back = "set:menu" in str(markup)
    await _edit(query, None, ratio_keyboard(lng, prefs.aspect_ratio, back=back))


async def on_history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`histp:<page>` pages; `hist:<image>` resends that image and makes it current."""
    query, arg = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    if (query.data or "").startswith("histp:"):
        page = await svc.images.history(who.chat_id, _int(arg))
        await query.answer()
        await _edit(
            query,
            t(lng, "history", total=page.total, page=page.page + 1, pages=page.pages),
            history_keyboard(lng, page),
        )
        return
    image = await svc.images.get(_int(arg), who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    async with chat_turn(update, context):  # the running job's result must not overwrite it
        await svc.images.set_current(who, image.id)
        await ResultSender(context.bot, svc.images).send_image(
            who, lng, image, t(lng, "history_current", id=image.id), None, None
        )


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`set:menu`, `set:open:<field>`, `set:<field>:<value>`: the /settings menu."""
    query, arg = _query(update)
    svc, who = services(context), who_of(update)
    field, _, value = arg.partition(":")
    changes: dict[str, object] = {}
    prefs = await svc.prefs.get(who.chat_id)
    if field == "model" and 0 <= _int(value) < len(svc.models):
        changes["model"] = svc.models[_int(value)]
    elif field == "size":
        changes["image_size"] = None if value == "auto" else value
    elif field == "reply":
        changes["reply_mode"] = value
    elif field == "language":
        changes["language"] = None if value == "auto" else value
    elif field == "refine":
        changes["refine"] = not prefs.refine
    if changes:
        try:
            prefs = await svc.prefs.update(who.chat_id, who.chat_type, who.chat_title, **changes)
        except ValueError:
            await query.answer()
            return
    lng = lang(update, context)
    await query.answer(t(lng, "saved") if changes else None)
    default = svc.generation.default_model
    if field == "open":
        keyboard = choices_keyboard(lng, value, prefs, svc.models, default)
    else:
        keyboard = settings_keyboard(lng)
    await _edit(query, settings_text(lng, prefs, default), keyboard)


async def on_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other button (old, forged or malformed data): one short answer."""
    assert update.callback_query is not None
    await update.callback_query.answer(t(lang(update, context), "button_unknown"))


async def _edit(query: CallbackQuery, text: str | None, keyboard: object) -> None:
    """Edit the menu in place; an unchanged menu is not an error."""
    try:
        if text is not None:
            await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=keyboard)  # type: ignore[arg-type]
        else:
            await query.edit_message_reply_markup(keyboard)  # type: ignore[arg-type]
    except BadRequest as exc:
        # Unchanged, deleted, too old, or not a menu (forged data): the press is answered already.
        if "not modified" not in exc.message.lower():
            log.info("could not edit a menu: %s", exc.message)
