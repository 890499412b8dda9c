"""Queries of styles: each chat's own (/style add) and the one waiting for its next text."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, select

from bot.storage.models import ChatStyle, PendingStyle, utcnow
from bot.storage.queries import Queries, table_of
from bot.storage.rows import StyleRow, from_row

_STYLES = table_of(ChatStyle)
_PENDING = table_of(PendingStyle)
_COLUMNS = (_STYLES.c.id, _STYLES.c.name, _STYLES.c.template)
_OF_CHAT = select(*_COLUMNS).where(_STYLES.c.chat_id == bindparam("_chat")).order_by(_STYLES.c.id)
_ONE = select(*_COLUMNS).where(
    (_STYLES.c.id == bindparam("_id")) & (_STYLES.c.chat_id == bindparam("_chat"))
)
_COUNT = select(func.count()).where(_STYLES.c.chat_id == bindparam("_chat"))
_REMOVE = delete(_STYLES).where(
    (_STYLES.c.chat_id == bindparam("_chat")) & (_STYLES.c.name == bindparam("_name"))
)
_THIS_PENDING = (_PENDING.c.chat_id == bindparam("_chat")) & (
    _PENDING.c.thread_id == bindparam("_thread")
)
_PENDING_OF = select(_PENDING.c.template).where(_THIS_PENDING)
_DROP_PENDING = delete(_PENDING).where(_THIS_PENDING)


class StyleQueries(Queries):
    async def chat_styles(self, chat_id: int) -> list[StyleRow]:
        """The chat's own styles, oldest first."""
        rows = await self.core(_OF_CHAT, {"_chat": chat_id})
        return [from_row(StyleRow, row) for row in rows]

    async def chat_style(self, style_id: int, chat_id: int) -> StyleRow | None:
        """That style, if it is this chat's."""
        row = (await self.core(_ONE, {"_id": style_id, "_chat": chat_id})).first()
        return from_row(StyleRow, row) if row is not None else None

    async def count_chat_styles(self, chat_id: int) -> int:
        return int((await self.core(_COUNT, {"_chat": chat_id})).scalar_one())

    async def add_chat_style(self, chat_id: int, name: str, template: str, user_id: int) -> bool:
        """Add a style; False (nothing written) if the chat has one of that name already."""
        values = {
            "chat_id": chat_id,
            "name": name,
            "template": template,
            "user_id": user_id,
            "created_at": utcnow(),
        }
        return bool((await self._insert_ignore(_STYLES, **values)).rowcount)

    async def remove_chat_style(self, chat_id: int, name: str) -> bool:
        result = await self.core(_REMOVE, {"_chat": chat_id, "_name": name})
        return bool(result.rowcount)

    async def pending_style(self, chat_id: int, thread_id: int) -> str | None:
        """The template waiting for this chat's (topic's) next text, if any."""
        params = {"_chat": chat_id, "_thread": thread_id}
        template: str | None = (await self.core(_PENDING_OF, params)).scalar_one_or_none()
        return template

    async def set_pending_style(self, chat_id: int, thread_id: int, template: str) -> None:
        row = {"chat_id": chat_id, "thread_id": thread_id, "template": template}
        row["updated_at"] = utcnow()
        await self.core(self._upsert(_PENDING, ["chat_id", "thread_id"], row), row)

    async def drop_pending_style(self, chat_id: int, thread_id: int) -> None:
        await self.core(_DROP_PENDING, {"_chat": chat_id, "_thread": thread_id})
