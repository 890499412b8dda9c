"""Reading updates from Telegram one at a time, so one the library cannot read is skipped.

PTB parses a whole getUpdates answer at once; a single update it cannot read (a ChatMember
recorded by an older Bot API lacks fields today's schema requires) makes the whole batch fail,
and the Updater asks for the same offset again at once, forever: ~150 polls a second and a
traceback (with the raw payload) each time. Here each update is parsed on its own; one that
fails is logged once, by id, and replaced by a bare `Update(update_id=...)` so the Updater's
offset moves past it and the updates after it are still handled.
"""

from __future__ import annotations

import datetime as dtm
import logging
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from telegram import Bot, Update
from telegram.error import NetworkError
from telegram.ext import BaseRateLimiter, Defaults, ExtBot
from telegram.request import BaseRequest
from telegram.warnings import PTBUserWarning

log = logging.getLogger(__name__)
JSONDict = dict[str, Any]
TimePeriod = int | float | dtm.timedelta
#: PTB's public marker for "not given" (BaseRequest documents it for exactly this check).
NOT_GIVEN = BaseRequest.DEFAULT_NONE

# The error text of an unreadable update is logged at most this long (it names the fields).
ERROR_TEXT_MAX = 300

# We call getUpdates through the public do_api_request on purpose (to get the raw JSON), so
# PTB's hint to use Bot.get_updates instead is noise.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


def parse_update(data: Any, bot: Bot | None) -> Update | None:
    """One update as Telegram sent it (polling or webhook). An update PTB cannot read becomes a
    bare `Update` with its id (handlers ignore it, the offset moves past it); None when it has
    no usable update_id at all."""
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        log.warning("skipped an update without an update_id (%s)", type(data).__name__)
        return None
    try:
        return Update.de_json(data, bot)
    except Exception as exc:
        kinds = ",".join(sorted(k for k in data if k != "update_id")) or "-"
        log.warning(
            "skipped update %d (%s) that could not be read: %s: %s (at %s)",
            update_id,
            kinds[:100],
            type(exc).__name__,
            str(exc)[:ERROR_TEXT_MAX],
            _where(exc),
        )
        return Update(update_id=update_id)


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame: enough to find the cause, no payload."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "-"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 2)[-1]}:{last.lineno}"


class TolerantBot(ExtBot[Any]):
    """An ExtBot whose get_updates parses each update on its own (see the module docstring)."""

    __slots__ = ("_updates_read_timeout",)

    def __init__(
        self,
        token: str,
        *,
        base_url: str,
        base_file_url: str,
        request: BaseRequest,
        get_updates_request: BaseRequest,
        rate_limiter: BaseRateLimiter[Any] | None = None,
        defaults: Defaults | None = None,
    ) -> None:
        super().__init__(
            token,
            base_url=base_url,
            base_file_url=base_file_url,
            request=request,
            get_updates_request=get_updates_request,
            rate_limiter=rate_limiter,
            defaults=defaults,
        )
        self._updates_read_timeout = get_updates_request.read_timeout

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,  # noqa: ASYNC109 - Bot.get_updates names it so
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: Any = NOT_GIVEN,
        write_timeout: Any = NOT_GIVEN,
        connect_timeout: Any = NOT_GIVEN,
        pool_timeout: Any = NOT_GIVEN,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, dtm.timedelta) else timeout
        params: JSONDict = {
            k: v
            for k, v in {
                "offset": offset,
                "limit": limit,
                "timeout": seconds,
                "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
            }.items()
            if v is not None
        }
        params.update(api_kwargs or {})
        # As Bot.get_updates does: a long poll may take `timeout` longer than a normal call.
        if read_timeout is NOT_GIVEN:
            base = self._updates_read_timeout or 0.0
        else:
            base = read_timeout or 0.0
        read_timeout = base + (seconds or 0)
        raw = await self.do_api_request(
            "getUpdates",
            api_kwargs=params,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if not isinstance(raw, list):
            # A TelegramError, so the Updater backs off instead of asking again at once.
            raise NetworkError(f"getUpdates answered with {type(raw).__name__}, not a list")
        updates = [u for u in (parse_update(item, self) for item in raw) if u is not None]
        if raw and not updates:
            # Nothing to move the offset past: back off rather than ask again at once.
            raise NetworkError("getUpdates answered with no readable update")
        for update in updates:
            self.insert_callback_data(update)  # as ExtBot.get_updates does
        return tuple(updates)
