"""Per-chat preferences (/settings, /ratio): read through an in-memory cache, kept in the DB."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.providers.profiles import RATIOS, SIZES
from bot.services.subjects import subjects_of
from bot.storage.models import ChatPrefs
from bot.storage.repositories import Repo, table_of

MATCH_INPUT = "match"
REPLY_MODES = ("photo", "document", "both")
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Prefs:
    refine: bool = True
    aspect_ratio: str | None = None  # one of RATIOS, MATCH_INPUT, or None for the model's default
    image_size: str | None = None
    reply_mode: str = "photo"
    model: str | None = None
    language: str | None = None


_FIELDS = ("refine", "aspect_ratio", "image_size", "reply_mode", "model", "language")
_PREFS = table_of(ChatPrefs)
#: A chat's stored choices, in the order of Prefs' fields.
_PREFS_OF_CHAT = select(*(_PREFS.c[f] for f in _FIELDS)).where(
    _PREFS.c.chat_id == bindparam("_chat")
)


def validate(field: str, value: object) -> None:
    allowed: dict[str, tuple[object, ...]] = {
        "refine": (True, False),
        "aspect_ratio": (*RATIOS, MATCH_INPUT, None),
        "image_size": (*SIZES, None),
        "reply_mode": REPLY_MODES,
        "language": (*LANGUAGES, None),
    }
    if field not in _FIELDS:
        raise ValueError(f"unknown preference {field}")
    if field in allowed and value not in allowed[field]:
        raise ValueError(f"{field} cannot be {value!r}")


class PrefsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[int, Prefs] = {}

    def cached(self, chat_id: int) -> Prefs | None:
        return self._cache.get(chat_id)

    async def get(self, chat_id: int) -> Prefs:
        prefs = self._cache.get(chat_id)
        if prefs is None:
            async with self._sessions() as s:
                row = (await Repo(s).core(_PREFS_OF_CHAT, {"_chat": chat_id})).first()
            prefs = Prefs(**dict(zip(_FIELDS, row, strict=True))) if row else Prefs()
            self._cache[chat_id] = prefs
        return prefs

    async def update(
        self, chat_id: int, chat_type: str, title: str | None, **changes: object
    ) -> Prefs:
        for field, value in changes.items():
            validate(field, value)
        async with self._sessions.begin() as s:
            await Repo(s).upsert_chat(chat_id, chat_type, title)
            await s.flush()
            row = await Repo(s).chat_prefs(chat_id)
            for field, value in changes.items():
                setattr(row, field, value)
            await s.flush()
            prefs = _from_row(row)
        subjects_of(self._sessions).chat_written(chat_id, chat_type, title)
        self._cache[chat_id] = prefs
        return prefs


def _from_row(row: ChatPrefs) -> Prefs:
    return replace(Prefs(), **{f: getattr(row, f) for f in _FIELDS})
