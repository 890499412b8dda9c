"""bot.storage.blobs: the interface on both backends (files under a folder, an S3 bucket on
moto's server), then what only the local store does."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from bot.storage import blobs
from bot.storage.blobs import BlobMissingError, BlobStore, LocalBlobStore, PackEntry
from bot.storage.recent import RecentBlobs
from bot.storage.s3blobs import S3BlobStore, S3Location
from tests.fakes.s3_server import S3Bucket


@pytest.fixture(params=["local", "s3", "recent-local", "recent-s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each backend, and each behind the memory of recent blobs the app puts in front."""
    backend: BlobStore
    if request.param.endswith("local"):
        backend = LocalBlobStore(tmp_path / "blobs")
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        backend = s3_store(bucket)
    return RecentBlobs(backend) if request.param.startswith("recent") else backend


def s3_store(bucket: S3Bucket) -> S3BlobStore:
    options = bucket.settings()
    return S3BlobStore(
        S3Location.parse(options["blob_store_url"]),
        endpoint_url=options["s3_endpoint_url"],
        access_key_id=options["s3_access_key_id"],
        secret_access_key=options["s3_secret_access_key"],
        region=options["s3_region"],
    )


async def test_put_get_roundtrip_on_both(store: BlobStore) -> None:
    first, second = b"\x89PNG pretend image" * 100, b"\xff\xd8 another" * 3000
    sha1, sha2 = await store.put(first), await store.put(second)

    assert sha1 == hashlib.sha256(first).hexdigest() == BlobStore.sha256_of(first)
    assert (await store.get(sha1), await store.get(sha2)) == (first, second)
    assert await store.exists(sha1) and await store.exists(sha2)
    assert (await store.size(sha1), await store.size(sha2)) == (len(first), len(second))
    assert b"".join([c async for c in store.chunks(sha2)]) == second


async def test_put_twice_keeps_one_blob(store: BlobStore) -> None:
    assert await store.put(b"same bytes") == await store.put(b"same bytes")
    assert await store.delete([BlobStore.sha256_of(b"same bytes")]) == 1
    assert not await store.exists(BlobStore.sha256_of(b"same bytes"))


async def test_missing_blob_on_both(store: BlobStore) -> None:
    await store.put(b"a neighbour")
    sha = BlobStore.sha256_of(b"never stored")

    assert not await store.exists(sha)
    for read in (store.get(sha), store.size(sha)):
        with pytest.raises(BlobMissingError) as info:
            await read
        assert info.value.sha256 == sha
    with pytest.raises(BlobMissingError):
        [c async for c in store.chunks(sha)]


async def test_delete_is_idempotent_and_counts_what_it_removed(store: BlobStore) -> None:
    kept, gone = await store.put(b"kept"), await store.put(b"gone")
    missing = BlobStore.sha256_of(b"never stored")

    assert await store.delete([gone, missing]) == 1
    assert await store.delete([gone, missing]) == 0
    assert await store.delete([]) == 0
    assert await store.exists(kept) and not await store.exists(gone)
    assert await store.get(kept) == b"kept"


@pytest.mark.parametrize("bad", ["", "A" * 64, "a" * 63, "../" + "a" * 61])
async def test_bad_key_is_rejected_on_both(store: BlobStore, bad: str) -> None:
    for call in (store.get(bad), store.exists(bad), store.size(bad), store.delete([bad])):
        with pytest.raises(ValueError):
            await call


async def test_pack_splits_parts_and_streams_every_blob(store: BlobStore) -> None:
    images = [bytes([i]) * (40_000 + i) for i in range(3)]
    shas = [await store.put(data) for data in images]
    entries = [PackEntry(f"image-{i}.png", sha) for i, sha in enumerate(shas)]

    parts = await store.pack(entries, {"data.json": b'{"jobs": []}'}, part_limit=70_000)
    try:
        contents: dict[str, bytes] = {}
        per_part = []
        for part in parts:
            with zipfile.ZipFile(part) as archive:
                per_part.append(sorted(archive.namelist()))
                contents |= {name: archive.read(name) for name in archive.namelist()}
            assert part.stat().st_size <= 70_000
    finally:
        await BlobStore.discard(parts)

    assert per_part == [["data.json", "image-0.png"], ["image-1.png"], ["image-2.png"]]
    assert contents == {"data.json": b'{"jobs": []}'} | {
        e.name: data for e, data in zip(entries, images, strict=True)
    }
    assert not any(p.parent.exists() for p in parts)


async def test_pack_of_a_missing_blob_fails_and_leaves_no_folder(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    present = await store.put(b"here")
    entries = [PackEntry("a.png", present), PackEntry("b.png", BlobStore.sha256_of(b"gone"))]

    with pytest.raises(BlobMissingError):
        await store.pack(entries, {}, part_limit=1_000_000)

    assert list((tmp_path / "tmp").iterdir()) == []


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_root_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = LocalBlobStore(root)
    assert not root.exists()
    assert not await store.exists("0" * 64)

    await store.put(b"x")

    assert root.is_dir()


def _same_shard(prefix_len: int) -> tuple[bytes, bytes]:
    """Two contents whose digests share their first `prefix_len` hex digits."""
    seen: dict[str, bytes] = {}
    for n in itertools.count():
        data = f"blob {n}".encode()
        key = hashlib.sha256(data).hexdigest()[:prefix_len]
        if key in seen:
            return seen[key], data
        seen[key] = data
    raise AssertionError("unreachable")


async def test_new_directories_are_synced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = blobs.fsync_dir
    monkeypatch.setattr(blobs, "fsync_dir", lambda d: (synced.append(d), real(d)))
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    first, same_leaf = _same_shard(4)
    leaf = store.path_for(await store.put(first)).parent
    # the file's rename and each new directory in its parent, down from the root
    assert synced == [leaf, leaf.parent, root, tmp_path]

    synced.clear()
    await store.put(same_leaf)
    assert synced == [leaf]  # nothing new but the file

    synced.clear()
    one, other = _same_shard(2)
    a = store.path_for(await store.put(one)).parent
    synced.clear()
    b = store.path_for(await store.put(other)).parent
    assert a.parent == b.parent and a != b
    assert synced == [b, b.parent]  # a new leaf in a known directory


async def test_a_directory_found_made_is_synced_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another put (or a previous run) made it; whether its entry is durable is not known
    synced: list[Path] = []
    real = blobs.fsync_dir
    monkeypatch.setattr(blobs, "fsync_dir", lambda d: (synced.append(d), real(d)))
    store = LocalBlobStore(tmp_path)
    data = b"found"
    leaf = store.path_for(hashlib.sha256(data).hexdigest()).parent
    leaf.mkdir(parents=True)

    await store.put(data)

    assert synced == [leaf, leaf.parent, tmp_path, tmp_path.parent]


async def test_a_vanished_directory_is_made_again(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    first, second = _same_shard(4)
    path = store.path_for(await store.put(first))
    shutil.rmtree(path.parent.parent)  # someone cleaned up under the running bot

    sha = await store.put(second)

    assert await store.get(sha) == second
    assert not await store.exists(path.name)


def test_path_fan_out(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    sha = "ab" + "cd" + "e" * 60

    assert store.path_for(sha) == tmp_path / "ab" / "cd" / sha


async def test_put_is_idempotent(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
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
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for(bad)
    with pytest.raises(ValueError):
        await store.get(bad)
    with pytest.raises(ValueError):
        await store.exists(bad)


async def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    shas = [await store.put(bytes([i]) * 1000) for i in range(20)]

    files = all_files(tmp_path)

    assert sorted(store.path_for(s) for s in shas) == files
    assert not any(p.name.startswith(".") for p in files)


async def test_failed_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"payload")

    assert all_files(tmp_path) == []


async def test_s3_keys_are_the_local_layout_below_the_prefix(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    shas = [await store.put(b"one"), await store.put(b"two"), await store.put(b"one")]

    assert s3_bucket.keys() == sorted(f"images/{s[:2]}/{s[2:4]}/{s}" for s in set(shas))
    assert s3_bucket.read(f"images/{shas[1][:2]}/{shas[1][2:4]}/{shas[1]}") == b"two"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://b", "b", ""), ("s3://b/", "b", ""), ("s3://b/x/y/", "b", "x/y")],
)
def test_s3_location(url: str, bucket: str, prefix: str) -> None:
    assert S3Location.parse(url) == S3Location(bucket, prefix)


@pytest.mark.parametrize("url", ["", "b/x", "http://b/x", "s3:///x"])
def test_s3_location_rejects_other_shapes(url: str) -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        S3Location.parse(url)
