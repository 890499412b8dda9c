"""Per-chat preferences (/settings, /ratio): read through an in-memory cache, kept in the DB."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cachetools import LRUCache

from bot.providers.profiles import RATIOS, SIZES
from bot.storage.database import Database
from bot.storage.rows import PrefsRow

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
    search: bool = False  # Google Search grounding, where the chat's model takes it


_FIELDS = ("refine", "aspect_ratio", "image_size", "reply_mode", "model", "language", "search")
#: Chats whose preferences are kept in memory; the least recently used are read again.
MAX_CACHED = 50_000


def validate(field: str, value: object) -> None:
    allowed: dict[str, tuple[object, ...]] = {
        "refine": (True, False),
        "search": (True, False),
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
    def __init__(self, database: Database) -> None:
        self._db = database
        self._cache: LRUCache[int, Prefs] = LRUCache(MAX_CACHED)

    def cached(self, chat_id: int) -> Prefs | None:
        return self._cache.get(chat_id)

    def forget(self, chat_id: int) -> None:
        """The chat's row was deleted: read it (the defaults) afresh."""
        self._cache.pop(chat_id, None)

    async def get(self, chat_id: int) -> Prefs:
        prefs = self._cache.get(chat_id)
        if prefs is None:
            async with self._db.read() as repo:
                row = await repo.prefs_of_chat(chat_id)
            prefs = _from_row(row) if row is not None else Prefs()
            self._cache[chat_id] = prefs
        return prefs

    async def update(
        self, chat_id: int, chat_type: str, title: str | None, **changes: object
    ) -> Prefs:
        for field, value in changes.items():
            validate(field, value)
        async with self._db.write() as repo:
            await repo.upsert_chat(chat_id, chat_type, title)
            prefs = _from_row(await repo.update_prefs(chat_id, changes))
        self._cache[chat_id] = prefs  # only once committed
        return prefs


def _from_row(row: PrefsRow) -> Prefs:
    return Prefs(**asdict(row))
