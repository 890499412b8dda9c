"""Inline mode: `@bot words` in any chat lists the person's own pictures whose prompts match,
and a "Draw: words" result whose chosen_inline_result runs a normal job for them.

Telegram needs @BotFather's /setinline (queries) and /setinlinefeedback (chosen results).
"""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputTextMessageContent,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.requests import GenerationRequest
from bot.services.types import Who
from bot.telegram.context import lang, services
from bot.telegram.flow import draw_inline
from bot.telegram.gate import INLINE_CACHE_SECONDS
from bot.telegram.replies import shorten

#: The one result id that draws; a picture's id is `img<row id>` (both far below 64 bytes).
DRAW = "draw"
PAGE = 20  # pictures per answer: with "Draw" well within Telegram's 50 results
WORDS_SHOWN = 200  # characters of the words in the placeholder and the search button


def who_inline(user: User) -> Who:
    """The person of an inline update, answered in their private chat with the bot."""
    return Who(user.id, user.first_name, user.username, user.language_code, user.id, "private")


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Their own pictures matching the words, newest first and paged; first, "Draw: words"."""
    query = update.inline_query
    assert query is not None
    svc, lng = services(context), lang(update, context)
    words = " ".join(query.query.split())
    page = int(query.offset) if query.offset.isascii() and query.offset.isdigit() else 0
    hits = await svc.images.own_results(query.from_user.id, words, page * PAGE, PAGE + 1)
    results: list[InlineQueryResultArticle | InlineQueryResultCachedPhoto] = []
    if page == 0 and words:
        results.append(_draw_result(lng, words))
    for hit in hits[:PAGE]:
        assert hit.image.tg_file_id is not None  # the query takes only pictures that have one
        results.append(
            InlineQueryResultCachedPhoto(
                f"img{hit.image.id}",
                hit.image.tg_file_id,
                caption=shorten(hit.prompt or "", 1000),
                parse_mode=None,
            )
        )
    await query.answer(
        results,
        cache_time=INLINE_CACHE_SECONDS,
        is_personal=True,  # one person's pictures are never served to another's same words
        # None, not "": PTB's Defaults turn a top-level "" into [] (sent as "[]", a next page).
        next_offset=str(page + 1) if len(hits) > PAGE else None,
    )


def _draw_result(lng: str, words: str) -> InlineQueryResultArticle:
    """A placeholder message with a keyboard: only then does the chosen result come back with
    the inline_message_id the picture is put into."""
    shown = shorten(words, WORDS_SHOWN)
    again = InlineKeyboardButton(t(lng, "btn_inline_again"), switch_inline_query_current_chat="")
    return InlineQueryResultArticle(
        DRAW,
        f"{t(lng, 'inline_draw_title')} {shorten(words, 100)}",
        InputTextMessageContent(t(lng, "inline_drawing", words=shown), parse_mode=ParseMode.HTML),
        reply_markup=InlineKeyboardMarkup([[again]]),
        description=t(lng, "inline_draw_description"),
    )


async def on_chosen_inline_result(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "Draw" was posted: run it as the person's job and put the picture in its place."""
    chosen = update.chosen_inline_result
    assert chosen is not None
    if chosen.result_id != DRAW or not chosen.inline_message_id:
        return  # one of their pictures: Telegram posted it already
    request = GenerationRequest(who_inline(chosen.from_user), chosen.query)
    lng = lang(update, context)
    await draw_inline(context.bot, services(context), request, lng, chosen.inline_message_id)
