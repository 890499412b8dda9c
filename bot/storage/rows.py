"""The typed rows repositories return: plain frozen values, built from result rows by name."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Row

from bot.storage.models import Image

T = TypeVar("T")


_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def from_row(cls: type[T], row: Row[Any]) -> T:
    """A dataclass from the result columns named like its fields (extra columns ignored)."""
    mapping = row._mapping
    return cls(**{name: mapping[name] for name in _field_names(cls)})


@dataclass(frozen=True)
class StoredImage:
    id: int
    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    tg_file_id: str | None = None
    job_id: int | None = None

    @property
    def probed(self) -> bool:
        """A user's image: its pixel data decoded in full when it was taken in (imaging.probe).

        Results (job_id set) were checked on arrival too, PNG answers only by their CRCs."""
        return self.job_id is None

    @classmethod
    def of(cls, row: Image) -> StoredImage:
        """The value of an ORM image row."""
        return cls(**{name: getattr(row, name) for name in _field_names(cls)})


@dataclass(frozen=True)
class JobRow:
    """What the services read back of a job (its options, its state, what it answered)."""

    id: int
    chat_id: int
    thread_id: int
    user_id: int
    request_message_id: int | None
    status: str
    prompt: str
    model: str
    aspect_ratio: str | None
    image_size: str | None
    n: int
    search: bool
    attempts: int
    upstream_at: datetime | None
    upstream_ms: int | None
    model_text: str | None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class JobTurn:
    """A job's prompt and its packed model turn (None: no history to continue from)."""

    prompt: str
    model_parts: str | None


@dataclass(frozen=True)
class UserRow:
    id: int
    first_name: str
    username: str | None
    language_code: str | None


@dataclass(frozen=True)
class ChatRow:
    id: int
    type: str
    title: str | None


@dataclass(frozen=True)
class ChatInputs:
    """A chat's (or topic's) waiting album and current image, read together."""

    pending_album: list[int] | None
    current: StoredImage | None


@dataclass(frozen=True)
class HistoryRow:
    """One image of a chat's history with the prompt of the job that made it, if any."""

    image: StoredImage
    prompt: str | None
    created_at: datetime


@dataclass(frozen=True)
class PrefsRow:
    """A chat's stored /settings choices (NULL columns: the bot's defaults)."""

    refine: bool
    aspect_ratio: str | None
    image_size: str | None
    reply_mode: str
    model: str | None
    language: str | None
    search: bool


@dataclass(frozen=True)
class StatRow:
    """Successful jobs, their images and their cost, for one key of a grouping."""

    key: str
    jobs: int
    images: int
    cost: float


@dataclass(frozen=True)
class LedgerRow:
    """One ledger movement, as /balance lists them."""

    id: int
    account_id: int
    kind: str
    amount: int
    job_id: int | None
    chat_id: int | None
    charge_id: str | None
    images: int
    free_images: int
    unit_price: int
    created_at: datetime


@dataclass(frozen=True)
class SponsorRow:
    chat_id: int
    sponsor_id: int
    daily_limit: int


@dataclass(frozen=True)
class StarsFlow:
    """Stars that came in (purchases) and went out (refunds), and what was spent on images."""

    purchased: int
    refunded: int
    charged: int


@dataclass(frozen=True)
class ExportJob:
    """One of a person's jobs as /export writes it: what was asked, of which model, when."""

    id: int
    chat_id: int
    kind: str
    prompt: str
    model: str
    status: str
    aspect_ratio: str | None
    image_size: str | None
    created_at: datetime


@dataclass(frozen=True)
class ExportImage:
    """One of a person's images (sent by them or made for them) as /export packs it."""

    id: int
    chat_id: int
    source: str
    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    job_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Forgotten:
    """What /forget removed: counts of rows, and the blobs whose image rows went with them."""

    jobs: int
    images: int
    blobs: frozenset[str]


@dataclass(frozen=True)
class DailyRow:
    """Images of successful jobs and their cost on one UTC day, for one model."""

    day: date
    model: str
    images: int
    cost: float


@dataclass(frozen=True)
class StyleRow:
    """A chat's own style."""

    id: int
    name: str
    template: str


@dataclass(frozen=True)
class InboxUpdate:
    """An update recorded from the webhook: its id, the JSON Telegram sent, and its chat."""

    update_id: int
    payload: str
    chat_id: int | None = None
