"""Buttons. Callback data names database rows, so buttons work after a restart.

Each handler receives its press already decoded (bot.telegram.callback_data); data that does
not decode reaches only on_unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import UnionType
from typing import Any, get_args, get_type_hints

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.i18n import t
from bot.services import styles
from bot.services.types import JobOptions, StoredImage
from bot.telegram import callback_data as cd
from bot.telegram.context import lang, request_of, services, who_of
from bot.telegram.flow import chat_turn, generate
from bot.telegram.keyboards import (
    choices_keyboard,
    history_keyboard,
    ratio_keyboard,
    settings_keyboard,
    settings_text,
)
from bot.telegram.replies import VARIATIONS, ResultSender, reframe_keyboard, send_styles

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE


def button_handler(
    callback: Callable[[Update, Context, Any], Awaitable[None]],
) -> CallbackQueryHandler[Context, None]:
    """Presses whose data decodes to a kind the callback's `press` annotation names; the
    callback gets the decoded data (so what a handler takes is written in one place)."""
    kinds = _kinds(get_type_hints(callback)["press"])

    async def handle(update: Update, context: Context) -> None:
        assert update.callback_query is not None
        press = cd.decode(update.callback_query.data)
        assert isinstance(press, kinds)  # the pattern let only these through
        await callback(update, context, press)

    return CallbackQueryHandler(handle, pattern=cd.of_kind(*kinds))


def _kinds(annotation: object) -> tuple[type[cd.CallbackData], ...]:
    kinds = get_args(annotation) if isinstance(annotation, UnionType) else (annotation,)
    assert kinds and all(isinstance(k, type) and issubclass(k, cd.CallbackData) for k in kinds)
    return kinds


def _query(update: Update) -> CallbackQuery:
    assert update.callback_query is not None
    return update.callback_query


async def _pressed_job(
    update: Update, context: Context, job_id: int
) -> tuple[str, list[StoredImage], JobOptions] | None:
    """Prompt, inputs and options of the job a button names, in this chat; None (the presser
    told with an alert) when that job is not there."""
    spec = await services(context).generation.job_spec(job_id, who_of(update).chat_id)
    if spec is None:
        await _query(update).answer(t(lang(update, context), "err_image_missing"), show_alert=True)
    return spec


async def on_original(update: Update, context: Context, press: cd.SendOriginal) -> None:
    """Send that image as a file, without Telegram's recompression."""
    query = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    image = await svc.images.get(press.image_id, who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    reply_to = query.message.message_id if query.message else None
    await ResultSender(context.bot, svc.images).send_original(who, lng, image, reply_to=reply_to)


async def on_regenerate(update: Update, context: Context, press: cd.Regenerate | cd.Vary) -> None:
    """The same prompt and inputs again (or several variations)."""
    spec = await _pressed_job(update, context, press.job_id)
    if spec is None:
        return
    await _query(update).answer()
    prompt, inputs, options = spec
    if isinstance(press, cd.Vary):
        options = replace(options, n=VARIATIONS)
    await generate(update, context, request_of(update, prompt, tuple(inputs), options=options))


async def on_follow_up(update: Update, context: Context, press: cd.Rerender | cd.Reframe) -> None:
    """That job again, one picture, at a bigger size or in another ratio, where its model
    takes it."""
    spec = await _pressed_job(update, context, press.job_id)
    if spec is None:
        return
    query, lng = _query(update), lang(update, context)
    prompt, inputs, options = spec
    can = services(context).generation.capabilities(options.model)
    if isinstance(press, cd.Rerender):
        taken = press.size in can.image_sizes
        options = replace(options, image_size=press.size, n=1)
    else:
        taken = press.ratio in can.aspect_ratios
        options = replace(options, aspect_ratio=press.ratio, n=1)
    if not taken:  # old or forged data: the model of that job does not take it
        await query.answer(t(lng, "followup_not_taken", model=options.model), show_alert=True)
        return
    await query.answer()
    await generate(update, context, request_of(update, prompt, tuple(inputs), options=options))


async def on_pick_ratio(update: Update, context: Context, press: cd.PickRatio) -> None:
    """📐 Ratio: the job's model's ratios, under the picture the press was made on."""
    spec = await _pressed_job(update, context, press.job_id)
    if spec is None:
        return
    query, svc, who, lng = _query(update), services(context), who_of(update), lang(update, context)
    await query.answer()
    can = svc.generation.capabilities(spec[2].model)
    await context.bot.send_message(
        who.chat_id,
        t(lng, "reframe_pick"),
        reply_to_message_id=query.message.message_id if query.message else None,
        allow_sending_without_reply=True,
        message_thread_id=who.thread_id or None,
        reply_markup=reframe_keyboard(press.job_id, lng, can),
    )


async def on_open_styles(update: Update, context: Context, press: cd.OpenStyles) -> None:
    """🎨 Style under a result: the gallery, its taps applied to that picture."""
    query = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    image = await svc.images.get(press.image_id, who.chat_id) if press.image_id else None
    if press.image_id and image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    reply_to = query.message.message_id if query.message else None
    await send_styles(context.bot, svc.styles, who, lng, image=image, reply_to=reply_to)


async def on_style(
    update: Update, context: Context, press: cd.ApplyStyle | cd.ApplyOwnStyle
) -> None:
    """A style of the gallery: drawn on its picture now, or kept for the chat's next text."""
    query = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    if isinstance(press, cd.ApplyStyle):
        name, found = t(lng, f"style_{press.key}"), styles.curated(press.key)
        template = found.template if found else None
    else:
        own = await svc.styles.own_style(who.chat_id, press.style_id)
        name, template = (own.name, own.template) if own else ("", None)
    if template is None:  # removed since the gallery was sent
        await query.answer(t(lng, "style_gone"), show_alert=True)
        return
    if not press.image_id:
        await svc.styles.wait_for_text(who, template)
        await query.answer(t(lng, "style_saved"))
        await context.bot.send_message(
            who.chat_id,
            t(lng, "style_waiting", name=name),
            message_thread_id=who.thread_id or None,
        )
        return
    image = await svc.images.get(press.image_id, who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    prompt = styles.fill(template, None)
    await generate(update, context, request_of(update, prompt, (image,)))


async def on_new(update: Update, context: Context, press: cd.StartOver) -> None:
    """Start fresh; the next text draws a new picture."""
    query, who = _query(update), who_of(update)
    await query.answer(t(lang(update, context), "new_session"))
    async with chat_turn(update, context):  # after the chat's running job, not under it
        await services(context).images.start_over(who.chat_id, who.thread_id)


async def on_ratio(update: Update, context: Context, press: cd.SetRatio) -> None:
    """A ratio from /ratio or the settings menu."""
    query = _query(update)
    svc, who = services(context), who_of(update)
    prefs = await svc.prefs.update(
        who.chat_id, who.chat_type, who.chat_title, aspect_ratio=press.ratio
    )
    lng = lang(update, context)
    await query.answer(t(lng, "saved"))
    markup = query.message.reply_markup if isinstance(query.message, Message) else None
    can = svc.generation.capabilities(prefs.model)
    await _edit(query, None, ratio_keyboard(lng, prefs.aspect_ratio, can, back=_has_back(markup)))


def _has_back(markup: InlineKeyboardMarkup | None) -> bool:
    """Whether the keyboard pressed is the settings menu's (it has a Back button)."""
    rows = markup.inline_keyboard if markup is not None else ()
    return any(isinstance(cd.decode(b.callback_data), cd.OpenSettings) for row in rows for b in row)


async def on_history_page(update: Update, context: Context, press: cd.TurnHistoryPage) -> None:
    """Another page of /history, in place."""
    query = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    page = await svc.images.history(who.chat_id, press.page)
    await query.answer()
    await _edit(
        query,
        t(lng, "history", total=page.total, page=page.page + 1, pages=page.pages),
        history_keyboard(lng, page),
    )


async def on_history_pick(update: Update, context: Context, press: cd.PickFromHistory) -> None:
    """Resend that image and make it current."""
    query = _query(update)
    svc, who, lng = services(context), who_of(update), lang(update, context)
    image = await svc.images.get(press.image_id, who.chat_id)
    if image is None:
        await query.answer(t(lng, "err_image_missing"), show_alert=True)
        return
    await query.answer()
    async with chat_turn(update, context):  # the running job's result must not overwrite it
        await svc.images.set_current(who, image.id)
        await ResultSender(context.bot, svc.images).send_image(
            who, lng, image, t(lng, "history_current", id=image.id), None, None
        )


Setting = (
    cd.OpenSettings
    | cd.OpenSetting
    | cd.SetModel
    | cd.SetSize
    | cd.SetReply
    | cd.SetLanguage
    | cd.ToggleRefine
    | cd.ToggleSearch
)


async def on_settings(update: Update, context: Context, press: Setting) -> None:
    """The /settings menu: open it or one setting, or change a setting."""
    query = _query(update)
    svc, who = services(context), who_of(update)
    changes: dict[str, object] = {}
    prefs = await svc.prefs.get(who.chat_id)
    if isinstance(press, cd.SetModel) and press.index < len(svc.models):
        changes["model"] = svc.models[press.index]
    elif isinstance(press, cd.SetSize):
        changes["image_size"] = press.size
    elif isinstance(press, cd.SetReply):
        changes["reply_mode"] = press.mode
    elif isinstance(press, cd.SetLanguage):
        changes["language"] = press.language
    elif isinstance(press, cd.ToggleRefine):
        changes["refine"] = not prefs.refine
    elif isinstance(press, cd.ToggleSearch) and svc.generation.capabilities(prefs.model).grounding:
        changes["search"] = not prefs.search
    if changes:
        prefs = await svc.prefs.update(who.chat_id, who.chat_type, who.chat_title, **changes)
    lng = lang(update, context)
    await query.answer(t(lng, "saved") if changes else None)
    default, can = svc.generation.default_model, svc.generation.capabilities(prefs.model)
    if isinstance(press, cd.OpenSetting):
        keyboard = choices_keyboard(lng, press.setting, prefs, svc.models, default, can)
    else:
        keyboard = settings_keyboard(lng, can)
    await _edit(query, settings_text(lng, prefs, default, can), keyboard)


async def on_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other button (old, forged or malformed data): one short answer."""
    assert update.callback_query is not None
    await update.callback_query.answer(t(lang(update, context), "button_unknown"))


async def _edit(query: CallbackQuery, text: str | None, keyboard: object) -> None:
    """Edit the menu in place; an unchanged menu is not an error."""
    try:
        if text is not None:
            await query.edit_message_text(text, reply_markup=keyboard)  # type: ignore[arg-type]
        else:
            await query.edit_message_reply_markup(keyboard)  # type: ignore[arg-type]
    except BadRequest as exc:
        # Unchanged, deleted, too old, or not a menu (forged data): the press is answered already.
        if "not modified" not in exc.message.lower():
            log.info("could not edit a menu: %s", exc.message)
