"""Copying every row of one database into another (`python -m bot migrate-db --to URL`): a
SQLite file moved to PostgreSQL when one process no longer suffices.

The target is migrated to head and must hold no rows. Tables are copied parents first (the
models' foreign-key order), in batches, inside one transaction on the target: a failure
halfway leaves it empty again. PostgreSQL's id sequences are then set past the copied ids,
so the next job or image gets a new id, and each table's row count is compared with the
source's before the transaction commits. Image files are not rows: the blob store (a
directory under DATA_DIR, named by content) stays where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, String, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import db
from bot.storage.models import Base

BATCH = 1000


class TransferError(Exception):
    """The copy was refused or did not verify; the target is left as it was."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int
    clipped: int  # text values longer than their column allows (SQLite keeps them), cut to fit


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)  # a table after every table it refers to


async def _counts(conn: AsyncConnection) -> dict[str, int]:
    return {
        t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
        for t in _tables()
    }


def _fit(table: Table, row: dict[str, object]) -> int:
    """Cut text past its column's length in place (PostgreSQL refuses what SQLite kept);
    the number of values cut."""
    clipped = 0
    for column in table.columns:
        length = column.type.length if isinstance(column.type, String) else None
        value = row.get(column.name)
        if length and isinstance(value, str) and len(value) > length:
            row[column.name] = value[:length]
            clipped += 1
    return clipped


def _serial_id(table: Table) -> bool:
    """Whether the table's id comes from a sequence (on PostgreSQL) that must move past it."""
    pk = list(table.primary_key.columns)
    return (
        len(pk) == 1
        and pk[0].name == "id"
        and isinstance(pk[0].type, Integer)
        and pk[0].autoincrement in (True, "auto")
    )


async def _reset_sequences(conn: AsyncConnection) -> None:
    for table in _tables():
        if not _serial_id(table):
            continue
        top = (await conn.execute(select(func.max(table.c.id)))).scalar_one()
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :value, :called)"),
            {"table": table.name, "value": top or 1, "called": top is not None},
        )


async def copy_database(
    source_url: str, target_url: str, *, batch: int = BATCH, progress: Callable[[str], None]
) -> list[Copied]:
    """Migrate both databases to head and copy every row of the source into the empty
    target; what was copied, table by table. Every failure is a TransferError."""
    try:
        same = make_url(source_url) == make_url(target_url)
    except ArgumentError:
        raise TransferError("--to is not a database URL") from None
    if same:
        raise TransferError("the target is the configured database itself")
    try:
        return await _copy(source_url, target_url, batch, progress)
    except (SQLAlchemyError, OSError) as exc:
        raise TransferError(f"{type(exc).__name__}: {exc}") from exc


async def _copy(
    source_url: str, target_url: str, batch: int, progress: Callable[[str], None]
) -> list[Copied]:
    await db.aupgrade(source_url)
    await db.aupgrade(target_url)
    source = db.create_engine(source_url)
    target = db.create_engine(target_url)
    try:
        async with source.connect() as src, target.begin() as dst:
            held = {name: n for name, n in (await _counts(dst)).items() if n}
            if held:
                listed = ", ".join(f"{name} ({n})" for name, n in held.items())
                raise TransferError(f"the target already holds rows: {listed}")
            copied = []
            for table in _tables():
                rows = clipped = 0
                key = list(table.primary_key.columns)
                result = await src.stream(select(table).order_by(*key))
                async for chunk in result.partitions(batch):
                    values = [dict(r._mapping) for r in chunk]
                    clipped += sum(_fit(table, v) for v in values)
                    await dst.execute(insert(table), values)
                    rows += len(values)
                copied.append(Copied(table.name, rows, clipped))
                progress(f"{table.name}: {rows} rows" + (f" ({clipped} cut)" if clipped else ""))
            if dst.dialect.name == "postgresql":
                await _reset_sequences(dst)
            want, got = await _counts(src), await _counts(dst)
            if want != got:
                wrong = ", ".join(
                    f"{t}: {want[t]} in the source, {got[t]} copied"
                    for t in want
                    if want[t] != got[t]
                )
                raise TransferError(f"row counts differ, nothing kept: {wrong}")
        return copied
    finally:
        await source.dispose()
        await target.dispose()
