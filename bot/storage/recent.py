"""The blobs written last, kept in memory for the read that follows them.

A result is written to the store and read back from it a moment later to be sent; an edit's
photo is written, then read to go upstream. From the folder that read was a thread hop that
waits for a free worker under load, from S3 a download. The bytes are at hand when
they are written, so the last few megabytes written are kept, in a byte budget that bounds the
memory; a deleted blob leaves the memory with its file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from cachetools import LRUCache

from bot.storage.blobs import BlobStore, PackEntry

BUDGET_BYTES = 16 * 1024 * 1024
#: Bigger blobs (a 4K original) are not kept: one would push out all the others.
LARGEST_KEPT = 2 * 1024 * 1024


class RecentBlobs(BlobStore):
    """`store`, with the blobs put last served from memory (least recently used leave first)."""

    def __init__(
        self, store: BlobStore, budget: int = BUDGET_BYTES, largest: int = LARGEST_KEPT
    ) -> None:
        self.store = store
        self._largest = largest
        self._kept: LRUCache[str, bytes] = LRUCache(maxsize=budget, getsizeof=len)

    async def put(self, data: bytes) -> str:
        sha256 = await self.store.put(data)  # durable before it is served from here
        if len(data) <= self._largest:
            self._kept[sha256] = bytes(data)  # no view of a buffer someone may reuse
        return sha256

    async def get(self, sha256: str) -> bytes:
        kept = self._kept.get(sha256)  # a malformed key misses, and the store refuses it
        return kept if kept is not None else await self.store.get(sha256)

    async def exists(self, sha256: str) -> bool:
        return sha256 in self._kept or await self.store.exists(sha256)

    async def delete(self, sha256s: Sequence[str]) -> int:
        for sha256 in sha256s:
            self._kept.pop(sha256, None)
        return await self.store.delete(sha256s)

    async def size(self, sha256: str) -> int:
        kept = self._kept.get(sha256)
        return len(kept) if kept is not None else await self.store.size(sha256)

    def chunks(self, sha256: str) -> AsyncIterator[bytes]:
        return self.store.chunks(sha256)

    async def pack(
        self, entries: Sequence[PackEntry], extra: dict[str, bytes], part_limit: int
    ) -> list[Path]:
        return await self.store.pack(entries, extra, part_limit)

    async def close(self) -> None:
        self._kept.clear()
        await self.store.close()
