"""Inline keyboards for /ratio, /history and /settings. Callback data stays under 64 bytes."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import t
from bot.services.prefs import LANGUAGES, MATCH_INPUT, RATIOS, REPLY_MODES, SIZES, Prefs
from bot.services.types import HistoryPage

B = InlineKeyboardButton


def _mark(label: str, chosen: bool) -> str:
    return f"✅ {label}" if chosen else label


def ratio_keyboard(lang: str, current: str | None, *, back: bool = False) -> InlineKeyboardMarkup:
    buttons = [B(_mark(r, r == current), callback_data=f"ratio:{r}") for r in RATIOS]
    rows = [buttons[i : i + 5] for i in range(0, len(buttons), 5)]
    rows.append(
        [
            B(_mark(t(lang, "ratio_match"), current == MATCH_INPUT), callback_data="ratio:match"),
            B(_mark(t(lang, "ratio_auto"), current is None), callback_data="ratio:auto"),
        ]
    )
    if back:
        rows.append([B(t(lang, "btn_back"), callback_data="set:menu")])
    return InlineKeyboardMarkup(rows)


def history_keyboard(lang: str, page: HistoryPage) -> InlineKeyboardMarkup:
    rows = []
    for entry in page.entries:
        label = entry.prompt or t(lang, "history_your_image")
        text = f"#{entry.image.id} · {entry.created_at} · {label}"
        rows.append([B(text[:60], callback_data=f"hist:{entry.image.id}")])
    nav = []
    if page.page > 0:
        nav.append(B("◀️", callback_data=f"histp:{page.page - 1}"))
    if page.page + 1 < page.pages:
        nav.append(B("▶️", callback_data=f"histp:{page.page + 1}"))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def settings_text(lang: str, prefs: Prefs, default_model: str) -> str:
    return t(
        lang,
        "settings",
        model=prefs.model or default_model,
        ratio=_ratio_label(lang, prefs.aspect_ratio),
        size=prefs.image_size or t(lang, "auto"),
        reply=t(lang, f"reply_{prefs.reply_mode}"),
        language=t(lang, f"language_{prefs.language}") if prefs.language else t(lang, "auto"),
        refine=t(lang, "refine_on" if prefs.refine else "refine_off"),
    )


def _ratio_label(lang: str, ratio: str | None) -> str:
    if ratio is None:
        return t(lang, "auto")
    return t(lang, "ratio_match") if ratio == MATCH_INPUT else ratio


def settings_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                B(t(lang, "set_model"), callback_data="set:open:model"),
                B(t(lang, "set_ratio"), callback_data="set:open:ratio"),
            ],
            [
                B(t(lang, "set_size"), callback_data="set:open:size"),
                B(t(lang, "set_reply"), callback_data="set:open:reply"),
            ],
            [
                B(t(lang, "set_language"), callback_data="set:open:language"),
                B(t(lang, "set_refine"), callback_data="set:refine:toggle"),
            ],
        ]
    )


def choices_keyboard(
    lang: str, field: str, prefs: Prefs, models: tuple[str, ...], default_model: str
) -> InlineKeyboardMarkup:
    """The options of one setting; models by index so long ids fit the 64-byte limit."""
    if field == "ratio":
        return ratio_keyboard(lang, prefs.aspect_ratio, back=True)
    if field == "model":
        current = prefs.model or default_model
        rows = [
            [B(_mark(m, m == current), callback_data=f"set:model:{i}")]
            for i, m in enumerate(models)
        ]
    elif field == "size":
        rows = [
            [B(_mark(s, s == prefs.image_size), callback_data=f"set:size:{s}") for s in SIZES]
            + [B(_mark(t(lang, "auto"), prefs.image_size is None), callback_data="set:size:auto")]
        ]
    elif field == "reply":
        rows = [
            [
                B(
                    _mark(t(lang, f"reply_{m}"), m == prefs.reply_mode),
                    callback_data=f"set:reply:{m}",
                )
                for m in REPLY_MODES
            ]
        ]
    else:
        rows = [
            [
                B(
                    _mark(t(lang, f"language_{code}"), code == prefs.language),
                    callback_data=f"set:language:{code}",
                )
                for code in LANGUAGES
            ]
            + [B(_mark(t(lang, "auto"), prefs.language is None), callback_data="set:language:auto")]
        ]
    rows.append([B(t(lang, "btn_back"), callback_data="set:menu")])
    return InlineKeyboardMarkup(rows)
