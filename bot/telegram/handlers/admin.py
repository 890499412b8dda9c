"""Admin commands (ADMIN_USER_IDS): /allow /deny /quota /stats; and /usage for everyone."""

from __future__ import annotations

import html

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.quotas import subjects
from bot.services.stats import StatRow, Words
from bot.services.types import SubjectKind
from bot.telegram.context import lang, services, who_of


async def _say(update: Update, text: str) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(text)


def _subject(update: Update, args: list[str]) -> tuple[SubjectKind, int] | None:
    """`123`/`user 123`: a user; `chat -100…`/`chat` (here): a chat; a reply: its author."""
    message, chat = update.effective_message, update.effective_chat
    if args and args[0].lower() == "chat":
        if len(args) > 1 and args[1].lstrip("-").isdigit():
            return SubjectKind.CHAT, int(args[1])
        return (SubjectKind.CHAT, chat.id) if chat and chat.type != ChatType.PRIVATE else None
    if args and args[0].lower() == "user":
        args = args[1:]
    if args and args[0].lstrip("-").isdigit():
        return SubjectKind.USER, int(args[0])
    replied = message.reply_to_message if message else None
    if replied is not None and replied.from_user is not None:
        return SubjectKind.USER, replied.from_user.id
    return None


async def _is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    if user is not None and services(context).access.is_admin(user.id):
        return True
    await _say(update, t(lang(update, context), "admin_only"))
    return False


async def cmd_allow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/allow 123`, `/allow chat [-100…]`, or as a reply: let a user or chat use the bot."""
    await _set_access(update, context, allowed=True)


async def cmd_deny(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/deny 123`, `/deny chat [-100…]`, or as a reply: refuse a user or chat."""
    await _set_access(update, context, allowed=False)


async def _set_access(update: Update, context: ContextTypes.DEFAULT_TYPE, *, allowed: bool) -> None:
    if not await _is_admin(update, context):
        return
    lng = lang(update, context)
    subject = _subject(update, list(context.args or []))
    if subject is None:
        await _say(update, t(lng, "access_usage"))
        return
    kind, subject_id = subject
    by = who_of(update).user_id
    await services(context).access.set_allowed(kind, subject_id, allowed, by)
    key = "access_allowed" if allowed else "access_denied_set"
    await _say(update, t(lng, key, kind=t(lng, f"kind_{kind.value}"), id=subject_id))


async def cmd_quota(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/quota user 123 50`, `/quota chat -100… 200`, `… default`: daily image limits."""
    if not await _is_admin(update, context):
        return
    lng, args = lang(update, context), list(context.args or [])
    value = args.pop() if args else ""
    subject = _subject(update, args)
    if subject is None or not (value.isdigit() or value == "default"):
        await _say(update, t(lng, "quota_usage"))
        return
    kind, subject_id = subject
    limit = None if value == "default" else int(value)
    await services(context).quotas.set_limit(kind, subject_id, limit, who_of(update).user_id)
    await _say(
        update,
        t(
            lng,
            "quota_set",
            kind=t(lng, f"kind_{kind.value}"),
            id=subject_id,
            limit=value if limit is None else (limit or t(lng, "unlimited")),
        ),
    )


async def cmd_usage(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """How many images you (and this chat) made today, and what is left."""
    svc, who, lng = services(context), who_of(update), lang(update, context)
    lines = []
    for kind, subject_id in subjects(who):
        usage = await svc.quotas.usage(kind, subject_id)
        left = t(lng, "unlimited") if usage.left is None else usage.left
        lines.append(
            t(lng, f"usage_{kind.value}", used=usage.used, left=left, limit=usage.limit or "∞")
        )
    mine = await svc.quotas.usage(SubjectKind.USER, who.user_id)
    lines.append(t(lng, "usage_reset", reset=mine.resets_at.strftime("%Y-%m-%d %H:%M UTC")))
    chart = await svc.stats.usage_chart(
        who.user_id,
        mine,
        _words(lng, "chart_usage_title", days=7),
        _words(lng, "chart_left", left=mine.left)
        if mine.left is not None
        else _words(lng, "chart_unlimited"),
    )
    assert update.effective_message is not None
    # The numbers are the chart's caption: one message, readable without opening the image.
    await update.effective_message.reply_photo(chart, caption="\n".join(lines))


async def cmd_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/stats [days]`: images and cost by day, user, chat and model."""
    if not await _is_admin(update, context):
        return
    lng, args = lang(update, context), list(context.args or [])
    days = min(int(args[0]), 90) if args and args[0].isdigit() and int(args[0]) > 0 else 7
    svc = services(context)
    stats = await svc.stats.collect(days)
    parts = [
        t(
            lng,
            "stats_title",
            days=days,
            images=stats.total.images,
            jobs=stats.total.jobs,
            cost=f"{stats.total.cost:.3f}",
        )
    ]
    if svc.wallet is not None:  # paid mode: Stars in and out, beside what the upstream cost
        flow = await svc.wallet.flow(days)
        parts.append(
            t(
                lng,
                "stats_stars",
                bought=flow.purchased,
                refunded=flow.refunded,
                charged=flow.charged,
                cost=f"{stats.total.cost:.3f}",
            )
        )
    for title, rows in (
        ("stats_by_day", stats.by_day),
        ("stats_by_user", stats.by_user),
        ("stats_by_chat", stats.by_chat),
        ("stats_by_model", stats.by_model),
    ):
        if rows:
            parts.append(f"\n<b>{t(lng, title)}</b>\n<pre>{_table(rows)}</pre>")
    await _say(update, "\n".join(parts))  # the tables can pass a caption's 1024 characters
    chart = await svc.stats.stats_chart(
        days, _words(lng, "chart_stats_title", days=days), _words(lng, "chart_cost_title")
    )
    assert update.effective_message is not None
    await update.effective_message.reply_photo(
        chart, caption=t(lng, "chart_stats_title", days=days)
    )


def _table(rows: list[StatRow]) -> str:
    width = max(len(r.key) for r in rows)
    return "\n".join(
        f"{html.escape(r.key).ljust(width)}  {r.images:>5} img  {r.cost:>9.3f}" for r in rows
    )


def _words(lng: str, key: str, **params: object) -> Words:
    """A chart's words in the reader's language, with the English ones for a missing glyph."""
    return Words(html.unescape(t(lng, key, **params)), html.unescape(t("en", key, **params)))
