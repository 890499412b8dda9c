"""Plain data passed between the Telegram layer and the services."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.providers.base import (
    Done,
    ProgressCallback,
    ProgressEvent,
    Queued,
    Retrying,
    Source,
    Started,
    TaskPolling,
    Thinking,
)
from bot.providers.profiles import Capabilities
from bot.storage.models import SubjectKind
from bot.storage.rows import HistoryRow, StoredImage

# What the Telegram layer sees of the layers below comes through here (see docs/ARCHITECTURE.md).
__all__ = [
    "Capabilities",
    "Done",
    "HistoryPage",
    "HistoryRow",
    "JobOptions",
    "JobOutcome",
    "ProgressCallback",
    "ProgressEvent",
    "Queued",
    "Retrying",
    "Source",
    "Started",
    "StoredImage",
    "SubjectKind",
    "TaskPolling",
    "Thinking",
    "Who",
]


@dataclass(frozen=True)
class Who:
    """Who asks, and where: enough to record the request and answer in the right place."""

    user_id: int
    first_name: str
    username: str | None
    language_code: str | None
    chat_id: int
    chat_type: str
    chat_title: str | None = None
    thread_id: int = 0


@dataclass(frozen=True)
class JobOptions:
    """How to run a job: model and output shape. None means the model's own default."""

    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    n: int = 1
    search: bool = False  # grounded with Google Search


@dataclass
class JobOutcome:
    job_id: int
    model: str
    prompt: str
    seconds: float
    images: list[StoredImage] = field(default_factory=list)
    text: str | None = None
    image_size: str | None = None  # what Regenerate would ask for again (and what it costs)
    n: int = 1
    sources: list[Source] = field(default_factory=list)  # pages a grounded answer drew on


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryRow]
    page: int
    pages: int
    total: int
