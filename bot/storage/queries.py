"""What every group of queries shares: the unit of work's connection and the upsert builders.

Statements run as Core on tables, past the ORM's unit of work: every query returns plain
values (bot/storage/rows.py), so no identity map or flush is needed, and each call is the one
statement it says."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Executable, Insert, Table, Update, bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def table_of(model: type[Any]) -> Table:
    """A model's Table, typed as one."""
    table: Table = model.__table__
    return table


def by_id(model: type[Any]) -> Update:
    """Core UPDATE of the row whose id is the parameter `_id`; SET from the other parameters."""
    table = table_of(model)
    return update(table).where(table.c.id == bindparam("_id"))


def returning_id(model: type[Any]) -> Insert:
    """Core INSERT of one row, giving back its id."""
    table = table_of(model)
    return insert(table).returning(table.c.id)


# The ON CONFLICT statements are built once per table and shape (values go as parameters):
# building and keying a new one for every execution cost more than running it.
@functools.cache
def _insert_ignore_statement(dialect: str, table: Table) -> Executable:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
    )


class Queries:
    """The connection of one unit of work and how its statements run: an async session's, or
    a synchronous connection run inline (SQLite, see bot/storage/db.py). Never commits: the
    `Database.write()` block around it does."""

    def __init__(self, session: AsyncSession | Connection) -> None:
        self.s = session
        self._conn: AsyncConnection | None = None

    async def core(self, stmt: Executable, params: Any = None) -> Any:
        """Run a Core statement on the unit of work's connection (the same transaction)."""
        if isinstance(self.s, Connection):
            return self.s.execute(stmt, params)
        if self._conn is None:
            self._conn = await self.s.connection()
        return await self._conn.execute(stmt, params)

    def _dialect(self) -> str:
        if isinstance(self.s, Connection):
            return self.s.dialect.name
        return self.s.get_bind().dialect.name

    async def _insert_ignore(self, table: Table, **values: Any) -> Any:
        """INSERT … ON CONFLICT DO NOTHING: concurrent first writes of a row don't collide.
        Its result's rowcount says whether the row was written."""
        return await self.core(_insert_ignore_statement(self._dialect(), table), values)

    def _upsert(
        self, table: Table, keys: Sequence[str], values: dict[str, Any], keep: Sequence[str] = ()
    ) -> Insert:
        """INSERT, or on a conflict of `keys` UPDATE every other given column but `keep`."""
        changed = tuple(k for k in values if k not in keys and k not in keep)
        return _upsert_statement(self._dialect(), table, tuple(keys), changed)
