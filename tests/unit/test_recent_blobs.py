"""bot.storage.recent: the blobs written last are read from memory, within a byte budget, and
never once deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage.blobs import BlobMissingError, BlobStore, LocalBlobStore
from bot.storage.recent import RecentBlobs


class CountingStore(LocalBlobStore):
    """The folder store, counting the reads that reach it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: list[str] = []

    async def get(self, sha256: str) -> bytes:
        self.gets.append(sha256)
        return await super().get(sha256)


@pytest.fixture
def inner(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "blobs")


def blob(n: int, size: int) -> bytes:
    return n.to_bytes(4, "big") * (size // 4)


async def test_a_blob_just_written_is_read_from_memory(inner: CountingStore) -> None:
    store = RecentBlobs(inner, budget=1000, largest=500)
    first, second = blob(1, 300), blob(2, 300)
    sha1, sha2 = await store.put(first), await store.put(second)

    assert (await store.get(sha1), await store.get(sha2)) == (first, second)
    assert inner.gets == []
    assert inner.path_for(sha1).read_bytes() == first  # and it is on disk all the same
    assert await store.size(sha2) == 300 and await store.exists(sha2)


async def test_past_the_budget_the_least_recent_leave(inner: CountingStore) -> None:
    store = RecentBlobs(inner, budget=1000, largest=500)
    shas = [await store.put(blob(i, 400)) for i in range(3)]  # 1200 bytes > 1000

    assert [await store.get(s) for s in shas] == [blob(i, 400) for i in range(3)]
    assert inner.gets == [shas[0]]  # the oldest went to the disk; the other two were kept


async def test_a_big_blob_is_not_kept_and_keeps_the_others(inner: CountingStore) -> None:
    store = RecentBlobs(inner, budget=1000, largest=500)
    small = await store.put(blob(1, 400))
    big = await store.put(blob(2, 900))

    assert await store.get(big) == blob(2, 900)
    assert await store.get(small) == blob(1, 400)
    assert inner.gets == [big]


async def test_a_deleted_blob_is_gone_from_memory_too(inner: CountingStore) -> None:
    store = RecentBlobs(inner)
    sha = await store.put(b"someone's photo" * 10)
    other = await store.put(b"someone else's" * 10)

    assert await store.delete([sha]) == 1
    with pytest.raises(BlobMissingError):
        await store.get(sha)
    assert not await store.exists(sha)
    assert await store.get(other) == b"someone else's" * 10


async def test_a_failed_write_keeps_nothing(tmp_path: Path) -> None:
    class Failing(LocalBlobStore):
        async def put(self, data: bytes) -> str:
            raise OSError("disk full")

    store = RecentBlobs(Failing(tmp_path / "blobs"))
    with pytest.raises(OSError):
        await store.put(b"never stored")
    sha = BlobStore.sha256_of(b"never stored")
    with pytest.raises(BlobMissingError):
        await store.get(sha)


async def test_what_is_kept_is_a_copy_of_a_reused_buffer(inner: CountingStore) -> None:
    store = RecentBlobs(inner)
    buf = bytearray(b"answer bytes" * 20)
    sha = await store.put(buf)  # type: ignore[arg-type]  # a provider may hand a bytearray
    buf[:6] = b"XXXXXX"

    assert await store.get(sha) == b"answer bytes" * 20
