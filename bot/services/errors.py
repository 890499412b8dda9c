"""Domain errors the services raise for the Telegram layer to put into words."""

from __future__ import annotations


class UserInputError(Exception):
    """Something about the user's message we cannot work with. `code` names a catalog entry."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
