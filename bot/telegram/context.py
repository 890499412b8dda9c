"""What handlers receive: the app's long-lived services, and who/where an update is from."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.i18n import lang_of
from bot.services.access import AccessService
from bot.services.generation import GenerationService
from bot.services.images import ImageLibrary
from bot.services.ordering import ChatQueue
from bot.services.payments import Wallet
from bot.services.personal import PersonalData
from bot.services.prefs import PrefsService
from bot.services.quotas import QuotaService
from bot.services.requests import GenerationRequest, ImageInput
from bot.services.stats import StatsService
from bot.services.styles import StyleService
from bot.services.types import JobOptions, Who
from bot.telegram.progress import ProgressBudget, ProgressTimings


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
    styles: StyleService
    wallet: Wallet | None = None  # paid mode (PAID_MODE=stars); None: off
    personal: PersonalData | None = None  # /export and /forget


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


def request_of(
    update: Update,
    text: str,
    images: tuple[ImageInput | None, ...] = (),
    *,
    chat_images: bool = False,
    needs_image: bool = False,
    options: JobOptions | None = None,
    take_style: bool = False,
) -> GenerationRequest:
    """The request an update makes, answered as a reply to its message (None images dropped)."""
    message = update.effective_message
    return GenerationRequest(
        who_of(update),
        text,
        reply_to=message.message_id if message else None,
        images=tuple(image for image in images if image is not None),
        chat_images=chat_images,
        needs_image=needs_image,
        options=options,
        take_style=take_style,
    )


def lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The chat's chosen language (/settings), else the user's Telegram language."""
    chat, user = update.effective_chat, update.effective_user
    prefs = services(context).prefs.cached(chat.id) if chat else None
    if prefs is not None and prefs.language:
        return prefs.language
    return lang_of(user.language_code if user else None)
