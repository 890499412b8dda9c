"""What handlers receive: the app's long-lived services, and who/where an update is from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.i18n import lang_of
from bot.services.access import AccessService
from bot.services.generation import GenerationService
from bot.services.images import ImageLibrary
from bot.services.ordering import ChatQueue
from bot.services.prefs import PrefsService
from bot.services.quotas import QuotaService
from bot.services.stats import StatsService
from bot.services.types import Who

if TYPE_CHECKING:  # progress.py imports this module
    from bot.telegram.progress import ProgressBudget


@dataclass(frozen=True)
class ProgressTimings:
    """Seconds. The chat action ("sending a photo…") is the first feedback; the status
    message follows only when a job takes longer than Telegram shows one action (~5 s) or has
    something to say (place in line, a retry). Quick results then cost three Bot API calls
    (two chat actions and the photo) instead of five (plus the status message and its removal).
    """

    status_delay: float = 6.0
    action_interval: float = 4.0
    edit_interval: float = 5.0
    album_quiet: float = 1.5


@dataclass
class Services:
    settings: Settings
    generation: GenerationService
    images: ImageLibrary
    prefs: PrefsService
    queue: ChatQueue
    progress: ProgressTimings
    models: tuple[str, ...]
    access: AccessService
    quotas: QuotaService
    stats: StatsService
    progress_budget: ProgressBudget


SERVICES_KEY = "services"


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    svc: Services = context.application.bot_data[SERVICES_KEY]
    return svc


def thread_of(message: Message | None) -> int:
    if message is not None and message.is_topic_message and message.message_thread_id:
        return message.message_thread_id
    return 0


def who_of(update: Update) -> Who:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    return Who(
        user_id=user.id,
        first_name=user.first_name,
        username=user.username,
        language_code=user.language_code,
        chat_id=chat.id,
        chat_type=chat.type,
        chat_title=chat.title,
        thread_id=thread_of(update.effective_message),
    )


def lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The chat's chosen language (/settings), else the user's Telegram language."""
    chat, user = update.effective_chat, update.effective_user
    prefs = services(context).prefs.cached(chat.id) if chat else None
    if prefs is not None and prefs.language:
        return prefs.language
    return lang_of(user.language_code if user else None)
