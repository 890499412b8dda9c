"""Logging set-up whose formatter masks secrets wherever they would appear, tracebacks too."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot import redaction


class RedactingFormatter(logging.Formatter):
    """Every formatted line (message, arguments, traceback) goes through `bot.redaction`."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        redaction.register(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redaction.redact(super().format(record))


def setup_logging(level: str, *, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
