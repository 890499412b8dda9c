"""Domain errors the services raise for the Telegram layer to put into words.

The upstream's errors pass through the services as they are: the Telegram layer knows them
from here, never from bot.providers.
"""

from __future__ import annotations

from bot.imaging import ImageInputError
from bot.providers.errors import EMPTY_RESPONSE, ProviderError, ProviderErrorKind

__all__ = [
    "EMPTY_RESPONSE",
    "ImageInputError",
    "NotEnoughStarsError",
    "ProviderError",
    "ProviderErrorKind",
    "UserInputError",
]


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
