"""Inline keyboards for /ratio, /history and /settings; every button's data comes from the codec."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import t
from bot.services import styles
from bot.services.prefs import LANGUAGES, MATCH_INPUT, REPLY_MODES, Prefs
from bot.services.types import Capabilities, HistoryPage
from bot.telegram import callback_data as cd


def button(label: str, data: cd.CallbackData) -> InlineKeyboardButton:
    """A button whose callback data is `data`, encoded (so it decodes back to it)."""
    return InlineKeyboardButton(label, callback_data=cd.encode(data))


B = button


def retry_keyboard(job_id: int, lang: str) -> InlineKeyboardMarkup:
    """🔁 Retry: the job again, on the user's word (a Regenerate press)."""
    return InlineKeyboardMarkup([[button(t(lang, "btn_retry"), cd.Regenerate(job_id))]])


def _mark(label: str, chosen: bool) -> str:
    return f"✅ {label}" if chosen else label


def ratio_keyboard(
    lang: str, current: str | None, can: Capabilities, *, back: bool = False
) -> InlineKeyboardMarkup:
    """The ratios the chat's model takes, "match input" and the model's default."""
    buttons = [B(_mark(r, r == current), cd.SetRatio(r)) for r in can.aspect_ratios]
    rows = [buttons[i : i + 5] for i in range(0, len(buttons), 5)]
    rows.append(
        [
            B(_mark(t(lang, "ratio_match"), current == MATCH_INPUT), cd.SetRatio(MATCH_INPUT)),
            B(_mark(t(lang, "ratio_auto"), current is None), cd.SetRatio(None)),
        ]
    )
    if back:
        rows.append([B(t(lang, "btn_back"), cd.OpenSettings())])
    return InlineKeyboardMarkup(rows)


def history_keyboard(lang: str, page: HistoryPage) -> InlineKeyboardMarkup:
    rows = []
    for entry in page.entries:
        label = entry.prompt or t(lang, "history_your_image")
        text = f"#{entry.image.id} · {entry.created_at:%m-%d %H:%M} · {label}"
        rows.append([B(text[:60], cd.PickFromHistory(entry.image.id))])
    nav = []
    if page.page > 0:
        nav.append(B("◀️", cd.TurnHistoryPage(page.page - 1)))
    if page.page + 1 < page.pages:
        nav.append(B("▶️", cd.TurnHistoryPage(page.page + 1)))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def settings_text(lang: str, prefs: Prefs, default_model: str, can: Capabilities) -> str:
    """The chat's settings as they apply to its model (a size it does not take shows as auto)."""
    ratio = prefs.aspect_ratio if prefs.aspect_ratio in (*can.aspect_ratios, MATCH_INPUT) else None
    size = prefs.image_size if prefs.image_size in can.image_sizes else None
    text = t(
        lang,
        "settings",
        model=prefs.model or default_model,
        ratio=_ratio_label(lang, ratio),
        size=size or t(lang, "auto"),
        reply=t(lang, f"reply_{prefs.reply_mode}"),
        language=t(lang, f"language_{prefs.language}") if prefs.language else t(lang, "auto"),
        refine=t(lang, "refine_on" if prefs.refine else "refine_off"),
    )
    if not can.grounding:
        return text
    search = t(lang, "search_on" if prefs.search else "search_off")
    return f"{text}\n{t(lang, 'settings_search', search=search)}"


def _ratio_label(lang: str, ratio: str | None) -> str:
    if ratio is None:
        return t(lang, "auto")
    return t(lang, "ratio_match") if ratio == MATCH_INPUT else ratio


def settings_keyboard(lang: str, can: Capabilities) -> InlineKeyboardMarkup:
    """The /settings menu: a size choice only for a model that has sizes, Google Search only
    for one that takes grounding."""
    buttons = [
        B(t(lang, "set_model"), cd.OpenSetting("model")),
        B(t(lang, "set_ratio"), cd.OpenSetting("ratio")),
    ]
    if can.image_sizes:
        buttons.append(B(t(lang, "set_size"), cd.OpenSetting("size")))
    buttons += [
        B(t(lang, "set_reply"), cd.OpenSetting("reply")),
        B(t(lang, "set_language"), cd.OpenSetting("language")),
        B(t(lang, "set_refine"), cd.ToggleRefine()),
    ]
    if can.grounding:
        buttons.append(B(t(lang, "set_search"), cd.ToggleSearch()))
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def choices_keyboard(
    lang: str,
    field: str,
    prefs: Prefs,
    models: tuple[str, ...],
    default_model: str,
    can: Capabilities,
) -> InlineKeyboardMarkup:
    """The options of one setting, as far as the chat's model (`can`) takes them; models by
    index so long ids fit the 64-byte limit."""
    if field == "ratio":
        return ratio_keyboard(lang, prefs.aspect_ratio, can, back=True)
    if field == "model":
        current = prefs.model or default_model
        rows = [[B(_mark(m, m == current), cd.SetModel(i))] for i, m in enumerate(models)]
    elif field == "size":
        rows = [
            [B(_mark(s, s == prefs.image_size), cd.SetSize(s)) for s in can.image_sizes]
            + [B(_mark(t(lang, "auto"), prefs.image_size is None), cd.SetSize(None))]
        ]
    elif field == "reply":
        rows = [
            [
                B(
                    _mark(t(lang, f"reply_{m}"), m == prefs.reply_mode),
                    cd.SetReply(m),
                )
                for m in REPLY_MODES
            ]
        ]
    else:
        rows = [
            [
                B(
                    _mark(t(lang, f"language_{code}"), code == prefs.language),
                    cd.SetLanguage(code),
                )
                for code in LANGUAGES
            ]
            + [B(_mark(t(lang, "auto"), prefs.language is None), cd.SetLanguage(None))]
        ]
    rows.append([B(t(lang, "btn_back"), cd.OpenSettings())])
    return InlineKeyboardMarkup(rows)


def packs_keyboard(lang: str, packs: tuple[int, ...]) -> InlineKeyboardMarkup:
    """/buy: one button per credit pack (STAR_PACKS), three to a row."""
    buttons = [B(t(lang, "btn_pack", stars=pack), cd.BuyPack(pack)) for pack in packs]
    return InlineKeyboardMarkup([buttons[i : i + 3] for i in range(0, len(buttons), 3)])


def buy_keyboard(lang: str) -> InlineKeyboardMarkup:
    """Under a refusal for too few credits: one button to the packs."""
    return InlineKeyboardMarkup([[B(t(lang, "btn_buy"), cd.OpenBuy())]])


def forget_keyboard(lang: str, user_id: int) -> InlineKeyboardMarkup:
    """/forget asks once: delete everything, or keep it."""
    return InlineKeyboardMarkup(
        [
            [button(t(lang, "btn_forget_yes"), cd.ConfirmForget(user_id))],
            [button(t(lang, "btn_forget_no"), cd.KeepData())],
        ]
    )


#: Characters of an own style's template in the gallery: 30 of them and the curated ones stay
#: within Telegram's 4096 characters.
OWN_SHOWN = 40


def styles_text(lang: str, own: list[tuple[str, str]], on_image: bool) -> str:
    """The gallery: each curated style with its one-line description, then the chat's own
    (name, template) with the template shortened, and how to add one."""
    lines = [t(lang, "styles_on_image" if on_image else "styles_on_text"), ""]
    lines += [
        f"• <b>{t(lang, f'style_{key}')}</b> — {t(lang, f'style_{key}_desc')}"
        for key in styles.KEYS
    ]
    if own:
        lines += ["", t(lang, "styles_own")]
        for name, template in own:
            plain = " ".join(template.split())
            cut = plain if len(plain) <= OWN_SHOWN else plain[: OWN_SHOWN - 1] + "…"
            short = html.escape(cut, quote=False)  # cut first, so no entity is split
            lines.append(f"• <b>{html.escape(name, quote=False)}</b> — <i>{short}</i>")
    lines += ["", t(lang, "styles_add_hint")]
    return "\n".join(lines)


def styles_keyboard(lang: str, own: list[tuple[int, str]], image_id: int) -> InlineKeyboardMarkup:
    """One button per style, curated then the chat's own (by row id), two to a row; each
    names the image it applies to (0: the next text)."""
    buttons = [B(t(lang, f"style_{key}"), cd.ApplyStyle(key, image_id)) for key in styles.KEYS]
    buttons += [B(f"✏️ {name}", cd.ApplyOwnStyle(style_id, image_id)) for style_id, name in own]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])
