"""Small helpers for end-to-end tests."""

from __future__ import annotations

import io
import sqlite3
import struct
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import text

from bot.config import Settings
from bot.storage import db
from tests import postgres


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def mean(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as im:
        small = im.convert("RGB").resize((1, 1), Image.Resampling.BOX)
        r, g, b = small.getpixel((0, 0))  # type: ignore[misc]
        return int(r), int(g), int(b)


def close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 6) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def db_rows(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one query (`?` placeholders) on the bot's database, SQLite or PostgreSQL."""
    if settings.database_url.startswith("postgresql"):
        return postgres.fetch(settings.database_url, sql, *args)
    path = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(Path(path)) as conn:
        return conn.execute(sql, args).fetchall()


def button(call: Any, prefix: str) -> str:
    """The callback data of the button under a sent message whose data starts with prefix."""
    for row in call.params["reply_markup"]["inline_keyboard"]:
        for b in row:
            if b.get("callback_data", "").startswith(prefix):
                return str(b["callback_data"])
    raise AssertionError(f"no {prefix} button in {call.params.get('reply_markup')}")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


@cache
def png_bomb(side: int = 8000) -> bytes:
    """A valid side x side RGB PNG of zeros (~180 KB for 8000), compressed row by row."""
    comp = zlib.compressobj(9)
    row = bytes(1 + 3 * side)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


@cache
def pillow_bomb(fmt: str, size: tuple[int, int] = (6000, 5000), **params: object) -> bytes:
    """30 MP of one colour: under the old 64 MP guard, over the 25 MP one, no cheap reduction."""
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt, **params)
    return buf.getvalue()


async def rename_table(database_url: str, old: str, new: str) -> None:
    """Rename a table behind the bot's back, on SQLite or PostgreSQL alike."""
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await engine.dispose()
