"""Queries of the webhook inbox: updates Telegram POSTed, recorded before they are answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update

from bot.storage.models import WebhookUpdate, utcnow
from bot.storage.queries import Queries, table_of
from bot.storage.rows import InboxUpdate, from_row

_INBOX = table_of(WebhookUpdate)
_START = (
    update(_INBOX)
    .where((_INBOX.c.update_id == bindparam("_id")) & _INBOX.c.started_at.is_(None))
    # Once handed over the handlers hold the update: the user's words leave the table.
    .values(started_at=bindparam("_at"), payload="")
)
_FORGET = delete(_INBOX).where(
    _INBOX.c.started_at.is_not(None) & (_INBOX.c.received_at < bindparam("_before"))
)
_PENDING = (
    select(_INBOX.c.update_id, _INBOX.c.payload, _INBOX.c.chat_id)
    .where(_INBOX.c.started_at.is_(None))
    .order_by(_INBOX.c.update_id)
)


class InboxQueries(Queries):
    async def record_update(self, update_id: int, payload: str, chat_id: int | None = None) -> bool:
        """Record an update (of this chat); False (nothing written) if this update_id is
        recorded already."""
        values = {
            "update_id": update_id,
            "payload": payload,
            "received_at": utcnow(),
            "chat_id": chat_id,
        }
        return bool((await self._insert_ignore(_INBOX, **values)).rowcount)

    async def start_update(self, update_id: int) -> bool:
        """Mark the update handed over; False if it was not recorded or was started already."""
        result = await self.core(_START, {"_id": update_id, "_at": utcnow()})
        return bool(result.rowcount)

    async def pending_updates(self) -> list[InboxUpdate]:
        """Updates recorded but never started, in update_id order."""
        return [from_row(InboxUpdate, row) for row in await self.core(_PENDING)]

    async def forget_started_updates(self, before: datetime) -> int:
        """Delete the started updates received before `before`; how many."""
        return int((await self.core(_FORGET, {"_before": before})).rowcount or 0)
