"""Before any handler: who may use the bot, and who may press a button in a group."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.i18n import t
from bot.telegram.context import lang, services
from bot.telegram.inputs import mentions

GROUP_ADMIN = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


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


async def access_gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Refuse strangers politely, once per request, at no upstream cost."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    if await services(context).access.allowed(user.id, chat.id):
        if update.callback_query is not None and not await may_press(update, context):
            await update.callback_query.answer(
                t(lang(update, context), "not_your_button"), show_alert=True
            )
            raise ApplicationHandlerStop
        return
    text = t(lang(update, context), "access_denied", user_id=user.id)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None and (
        chat.type == ChatType.PRIVATE
        or addressed_to_bot(update.effective_message, context.bot.id, context.bot.username)
    ):
        await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML)
    raise ApplicationHandlerStop


async def may_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In groups a result's buttons belong to whoever asked for it, and to the group's admins."""
    query, chat = update.callback_query, update.effective_chat
    assert query is not None and chat is not None
    if chat.type == ChatType.PRIVATE:
        return True
    presser = query.from_user.id
    svc = services(context)
    if svc.access.is_admin(presser):
        return True
    message = query.message if isinstance(query.message, Message) else None
    owner = None
    if message is not None and message.reply_to_message is not None:
        asker = message.reply_to_message.from_user
        owner = asker.id if asker else None
    data = query.data or ""
    if owner is None and data.startswith(("regen:", "var:")):
        owner = await svc.generation.job_owner(int(data.partition(":")[2] or 0))
    if owner == presser and not data.startswith(("set:", "ratio:")):
        return True  # chat-wide settings are for the group's admins
    try:
        member = await context.bot.get_chat_member(chat.id, presser)
    except TelegramError:
        return False
    return member.status in GROUP_ADMIN
