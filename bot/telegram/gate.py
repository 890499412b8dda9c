"""Before any handler: who may use the bot, and who may press a button.

The gate fails closed: once it decides to refuse, the update goes no further, whatever happens
while it says so (a blocked bot, no right to write, a failed answerCallbackQuery, a DB error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cachetools import TTLCache
from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.i18n import lang_of, t
from bot.telegram import callback_data as cd
from bot.telegram.context import lang, services
from bot.telegram.inputs import mentions

log = logging.getLogger(__name__)
#: How long Telegram may keep an inline answer for the same person and words.
INLINE_CACHE_SECONDS = 5

GROUP_ADMIN = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
REFUSAL_EVERY = 3600.0  # seconds: a refused person hears why at most once an hour
REFUSALS_REMEMBERED = 10_000  # people; the oldest are forgotten first, so memory stays bounded


class RefusalMemory:
    """Who was refused recently: at most `size` people (least recently refused forgotten
    first), each kept `every` seconds."""

    def __init__(
        self,
        every: float = REFUSAL_EVERY,
        size: int = REFUSALS_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._told: TTLCache[int, bool] = TTLCache(maxsize=size, ttl=every, timer=clock)

    def __len__(self) -> int:
        return len(self._told)

    def should_tell(self, user_id: int) -> bool:
        """True the first time in `every` seconds (and then remembers it)."""
        if user_id in self._told:
            return False
        self._told[user_id] = True
        return True

    def forget(self, user_id: int) -> None:
        """Someone let in: if they are refused again later, they hear why."""
        self._told.pop(user_id, None)


REFUSALS_KEY = "_refusals"


def _refusals(context: ContextTypes.DEFAULT_TYPE) -> RefusalMemory:
    memory = context.application.bot_data.get(REFUSALS_KEY)
    if not isinstance(memory, RefusalMemory):
        memory = context.application.bot_data[REFUSALS_KEY] = RefusalMemory()
    return memory


def addressed_to_bot(message: Message, bot_id: int, username: str) -> bool:
    """In a group: a command for us, a reply to us, or a mention of us."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    text = message.text or message.caption or ""
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        return "@" not in command or command.lower().endswith(f"@{username.lower()}")
    return mentions(message.text or "", username)


def row_of(press: cd.CallbackData | None) -> tuple[str, int] | None:
    """(`job`|`image`, id) for a button naming a row; None for any other (or no) button."""
    if isinstance(press, cd.Regenerate | cd.Vary | cd.Rerender | cd.PickRatio | cd.Reframe):
        return "job", press.job_id
    if isinstance(press, cd.SendOriginal | cd.PickFromHistory):
        return "image", press.image_id
    if isinstance(press, cd.OpenStyles | cd.ApplyStyle | cd.ApplyOwnStyle) and press.image_id:
        return "image", press.image_id  # 0 names no image: the next text, the asker's
    return None


async def access_gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Let an update through only to someone allowed; refuse politely at no upstream cost."""
    if update.edited_message is not None or update.edited_channel_post is not None:
        # An edit must not silently re-run (and bill) a request; the person can send it again.
        raise ApplicationHandlerStop
    try:
        through = await _let_through(update, context)
    except Exception:  # fail closed: an error while deciding refuses
        log.exception("access gate failed; the update is refused")
        await _answer_quietly(update)
        through = False
    if not through:
        raise ApplicationHandlerStop


async def _let_through(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user, chat = update.effective_user, update.effective_chat
    if update.pre_checkout_query is not None:
        return True  # its handler decides (and must answer every one within 10 s)
    if update.message is not None and update.message.successful_payment is not None:
        return True  # the Stars are taken: credited whoever it is, or they would be lost
    query = update.callback_query
    if user is not None and (update.inline_query or update.chosen_inline_result):
        return await _inline_through(update, context, user.id)
    if user is None or chat is None:
        # Nothing the bot serves comes without a person and a chat (e.g. an inline message's
        # button, a channel post): a button gets its one answer, the rest is dropped.
        await _answer_quietly(update, "button_unknown")
        return False
    svc = services(context)
    if not await svc.access.allowed(user.id, chat.id):
        await _refuse(update, context)
        return False
    _refusals(context).forget(user.id)
    await svc.prefs.get(chat.id)  # only now: strangers leave no cache entry behind
    if query is not None and not query.data and not query.game_short_name:
        # PTB would hand a query without data to every button handler: answer it here.
        await _answer_quietly(update, "button_unknown", context=context)
        return False
    if query is not None and not await may_press(update, context):
        await _answer_quietly(update, "not_your_button", alert=True, context=context)
        return False
    return True


async def _inline_through(update: Update, context: ContextTypes.DEFAULT_TYPE, user_id: int) -> bool:
    """Inline mode has no chat: the person is judged as in their private chat with the bot.
    Someone refused gets no results (nothing of theirs shown, nothing to draw)."""
    if await services(context).access.allowed(user_id, user_id):
        return True
    if update.inline_query is not None:
        try:
            await update.inline_query.answer([], cache_time=INLINE_CACHE_SECONDS, is_personal=True)
        except TelegramError as exc:
            log.info("could not answer a refused inline query: %s", exc.message)
    return False


async def _refuse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """At most one refusal an hour per person; a button is always answered (silently later)."""
    user, chat, message = update.effective_user, update.effective_chat, update.effective_message
    assert user is not None and chat is not None
    query = update.callback_query
    if query is None and not (
        message is not None
        and (
            chat.type == ChatType.PRIVATE
            or addressed_to_bot(message, context.bot.id, context.bot.username)
        )
    ):
        return  # group chatter that is not for us: no refusal, no memory
    tell = _refusals(context).should_tell(user.id)
    text = t(lang(update, context), "access_denied", user_id=user.id)
    try:
        if query is not None:
            await query.answer(text if tell else None, show_alert=tell)
        elif tell and message is not None:
            await message.reply_text(text)
    except TelegramError as exc:
        log.info("could not send a refusal to chat %s: %s", chat.id, exc.message)


async def _answer_quietly(
    update: Update,
    key: str | None = None,
    *,
    alert: bool = False,
    context: ContextTypes.DEFAULT_TYPE | None = None,
) -> None:
    """Answer a button press once (with a short text), never raising."""
    query = update.callback_query
    if query is None:
        return
    lng = lang(update, context) if context is not None else _user_lang(update)
    try:
        await query.answer(t(lng, key) if key else None, show_alert=alert)
    except TelegramError as exc:
        log.info("could not answer a button press: %s", exc.message)


def _user_lang(update: Update) -> str:
    user = update.effective_user
    return lang_of(user.language_code if user else None)


async def may_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A button acts only for whoever may act on what it names: its row's owner, a group
    admin, a bot admin. Chat-wide settings in groups are for the group's admins."""
    query, chat = update.callback_query, update.effective_chat
    assert query is not None and chat is not None
    presser = query.from_user.id
    svc = services(context)
    if svc.access.is_admin(presser):
        return True
    press = cd.decode(query.data)
    if press is None:
        return True  # data the bot never sent reaches only on_unknown's short answer
    row = row_of(press)
    if row is not None:
        found, owner = await svc.access.owner_of(row[0], row[1], chat.id)
        if not found:
            return True  # the handler says it cannot find that picture
        if owner is None and chat.type == ChatType.PRIVATE:
            return True  # a private chat's rows are its person's
        if owner is None:
            owner = _message_owner(query.message)  # rows from before owners were recorded
    elif chat.type == ChatType.PRIVATE:
        return True
    elif isinstance(press, cd.SETTINGS):
        owner = None  # chat-wide settings are for the group's admins
    else:
        owner = _message_owner(query.message)
    if owner == presser:
        return True
    if chat.type == ChatType.PRIVATE:
        return False
    return await _is_group_admin(context, chat.id, presser)


def _message_owner(message: object) -> int | None:
    """Who asked for the message a button sits under (the message it replies to)."""
    if isinstance(message, Message) and message.reply_to_message is not None:
        asker = message.reply_to_message.from_user
        return asker.id if asker else None
    return None


async def _is_group_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        return False
    return member.status in GROUP_ADMIN
