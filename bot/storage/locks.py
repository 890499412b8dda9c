"""Locks that hold across processes sharing one database, for a check and the write it allows.

On PostgreSQL several replicas write at once: two of them could both count a user's images
(or a balance) under its limit and both write. A transaction-scoped advisory lock per subject
makes the second wait until the first commits, then count again. SQLite needs none: one
process writes it, and its write transactions already take turns (bot/storage/db.py)."""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, func, select

from bot.storage.queries import Queries

_LOCK = select(func.pg_advisory_xact_lock(bindparam("_key")))


def lock_key(namespace: str, subject_id: int) -> int:
    """The 64-bit advisory lock key of one subject (`namespace`: user, chat, account)."""
    digest = hashlib.blake2b(f"{namespace}:{subject_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LockQueries(Queries):
    async def lock_subjects(self, *subjects: tuple[str, int]) -> bool:
        """Hold a lock per (namespace, id) until this transaction ends; False (nothing taken)
        where the database is written by one process alone (SQLite).

        Taken in one order (by key), so two transactions locking the same subjects never wait
        for each other; a transaction takes its account locks only after its user and chat
        ones, never the other way round."""
        if self._dialect() != "postgresql":
            return False
        for key in sorted({lock_key(namespace, i) for namespace, i in subjects}):
            await self.core(_LOCK, {"_key": key})
        return True
