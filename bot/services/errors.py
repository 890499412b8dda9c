"""Domain errors the services raise for the Telegram layer to put into words.

The upstream's errors pass through the services as they are: the Telegram layer knows them
from here, never from bot.providers.
"""

from __future__ import annotations

from contextlib import suppress

from bot.imaging import ImageInputError
from bot.providers.errors import EMPTY_RESPONSE, ProviderError, ProviderErrorKind

__all__ = [
    "EMPTY_RESPONSE",
    "ImageInputError",
    "NotEnoughStarsError",
    "ProviderError",
    "ProviderErrorKind",
    "UserInputError",
    "failed_job",
    "note_failed_job",
]

_FAILED_JOB = "failed_job_id"


def note_failed_job(exc: BaseException, job_id: int) -> None:
    """Mark a failure with the job row it ended, so its message can offer Retry."""
    with suppress(AttributeError):  # a type without a __dict__ is told without Retry
        setattr(exc, _FAILED_JOB, job_id)


def failed_job(exc: BaseException) -> int | None:
    """The job a failure ended (recorded as failed, so a Retry can replay it), if any."""
    value = getattr(exc, _FAILED_JOB, None)
    return value if type(value) is int else None


class JobTakenOver(Exception):
    """This replica's job was taken over by another (this one's heartbeat had lapsed): the
    other answers its user, so this one stops before the request goes upstream."""


class UserInputError(Exception):
    """Something about the user's message we cannot work with. `code` names a catalog entry."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class NotEnoughStarsError(UserInputError):
    """Paid mode: a job costs more than its payer has; refused before anything is spent."""

    def __init__(self, need: int, have: int) -> None:
        super().__init__("stars_short", need=need, have=have)
