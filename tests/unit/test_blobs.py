"""bot.storage.blobs.BlobStore."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bot.storage.blobs import BlobMissingError, BlobStore


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_put_get_roundtrip(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"\x89PNG pretend image" * 100

    sha = await store.put(data)

    assert sha == hashlib.sha256(data).hexdigest() == BlobStore.sha256_of(data)
    assert await store.get(sha) == data
    assert await store.exists(sha)


async def test_root_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = BlobStore(root)
    assert not root.exists()
    assert not await store.exists("0" * 64)

    await store.put(b"x")

    assert root.is_dir()


def test_path_fan_out(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = "ab" + "cd" + "e" * 60

    assert store.path_for(sha) == tmp_path / "ab" / "cd" / sha


async def test_put_is_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = await store.put(b"same bytes")
    path = store.path_for(first)
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10_000_000_000, before - 10_000_000_000))
    marked = path.stat().st_mtime_ns

    second = await store.put(b"same bytes")

    assert second == first
    assert path.stat().st_mtime_ns == marked  # not rewritten
    assert all_files(tmp_path) == [path]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "A" * 64,  # uppercase
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "../" + "a" * 61,
        "aa/" + "a" * 61,
    ],
)
async def test_bad_sha_is_rejected(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for(bad)
    with pytest.raises(ValueError):
        await store.get(bad)
    with pytest.raises(ValueError):
        await store.exists(bad)


async def test_missing_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = BlobStore.sha256_of(b"never stored")

    assert not await store.exists(sha)
    with pytest.raises(BlobMissingError) as info:
        await store.get(sha)
    assert info.value.sha256 == sha


async def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    shas = [await store.put(bytes([i]) * 1000) for i in range(20)]

    files = all_files(tmp_path)

    assert sorted(store.path_for(s) for s in shas) == files
    assert not any(p.name.startswith(".") for p in files)


async def test_failed_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"payload")

    assert all_files(tmp_path) == []
