"""Logging set-up whose formatter masks secrets wherever they would appear, tracebacks too."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from bot import redaction


class RedactingFormatter(logging.Formatter):
    """Every formatted line (message, arguments, traceback) goes through `bot.redaction`."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        redaction.register(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redaction.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, exception), each text masked
    by `bot.redaction` before it is encoded."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        redaction.register(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redaction.redact(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = redaction.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redaction.redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redaction.redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


def formatter(fmt: str, secrets: Iterable[str]) -> logging.Formatter:
    """LOG_FORMAT's formatter: "json" lines, or "text" lines."""
    if fmt == "json":
        return JsonFormatter(secrets)
    return RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)


def setup_logging(level: str, *, secrets: Iterable[str], fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt, secrets))
    # JSON lines only: Python's warnings, printed raw otherwise, become log records too.
    logging.captureWarnings(fmt == "json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
