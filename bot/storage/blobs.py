"""Content-addressed image store: each blob is named by its SHA-256.

`BlobStore` is the interface the services use; `LocalBlobStore` keeps blobs at
``root/ab/cd/abcd…`` under DATA_DIR (the default) and `bot.storage.s3blobs.S3BlobStore` keeps
them in an S3-compatible bucket. Export zips are written here, whichever backend holds the blobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX: Final = ".tmp-"


class BlobMissingError(LookupError):
    """No blob is stored under this hash."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} is missing")
        self.sha256 = sha256


class BlobStore(ABC):
    """Blobs by the SHA-256 of their bytes. A blob is never rewritten once present; `put`
    returns once it is durable; `delete` removes ones that no row names any more (the caller
    checks that, in the transaction that dropped the last row) and skips missing ones."""

    @staticmethod
    def sha256_of(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    @staticmethod
    def check_key(sha256: str) -> str:
        """``sha256`` itself. Raises ValueError unless it is 64 lowercase hex."""
        if not isinstance(sha256, str) or _SHA256_RE.fullmatch(sha256) is None:
            raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
        return sha256

    @abstractmethod
    async def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest. Idempotent."""

    @abstractmethod
    async def get(self, sha256: str) -> bytes:
        """The blob's bytes; BlobMissingError when none is stored under this hash."""

    @abstractmethod
    async def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    async def delete(self, sha256s: Sequence[str]) -> int:
        """Remove these blobs (missing ones are skipped); how many were removed."""

    @abstractmethod
    async def size(self, sha256: str) -> int:
        """The blob's length in bytes; BlobMissingError when it is missing."""

    @abstractmethod
    def chunks(self, sha256: str) -> AsyncIterator[bytes]:
        """The blob's bytes a piece at a time, so a big one is never held whole."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the store holds open."""

    async def pack(
        self, entries: Sequence[PackEntry], extra: dict[str, bytes], part_limit: int
    ) -> list[Path]:
        """Zip files of these blobs (named as given) plus `extra` files in the first part, each
        part at most about `part_limit` bytes, written in a new temp folder off the event loop.
        A blob bigger than the limit gets a part of its own. `discard` removes the folder."""
        sizes = {e.sha256: await self.size(e.sha256) for e in entries}
        groups = _groups(entries, sizes, extra, part_limit)
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="export-"))
        parts: list[Path] = []
        try:
            for number, group in enumerate(groups, 1):
                path = folder / f"part-{number}.zip"
                archive = await asyncio.to_thread(zipfile.ZipFile, path, "w", zipfile.ZIP_STORED)
                try:
                    if number == 1:
                        for name, data in extra.items():
                            await asyncio.to_thread(
                                archive.writestr, name, data, zipfile.ZIP_DEFLATED
                            )
                    for entry in group:
                        # Streamed into the zip: only one chunk of a blob is in memory at once.
                        member = await asyncio.to_thread(archive.open, entry.name, "w")
                        try:
                            async for chunk in self.chunks(entry.sha256):
                                await asyncio.to_thread(member.write, chunk)
                        finally:
                            await asyncio.to_thread(member.close)
                finally:
                    await asyncio.to_thread(archive.close)
                parts.append(path)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        return parts

    @staticmethod
    async def discard(paths: Sequence[Path]) -> None:
        """Remove what `pack` wrote."""
        for folder in {p.parent for p in paths}:
            await asyncio.to_thread(shutil.rmtree, folder, True)


class LocalBlobStore(BlobStore):
    """Files under a folder, written atomically (temp file in the same directory, then
    ``os.replace``, then fsync of the file and its directories)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # created lazily by the first put()
        # Directories of the store this process has seen made durable: a put checks none of
        # them again (each check is a system call that gives up the GIL and must win it back
        # from the event loop). Directories are never removed; should one vanish anyway, the
        # write fails and the put starts again from what is on disk.
        self._dirs: set[Path] = set()

    def path_for(self, sha256: str) -> Path:
        """``root/ab/cd/<sha256>``. Raises ValueError unless ``sha256`` is 64 lowercase hex."""
        self.check_key(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest. Idempotent."""
        return await asyncio.to_thread(self._put_sync, data)

    async def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobMissingError(sha256) from exc

    async def exists(self, sha256: str) -> bool:
        path = self.path_for(sha256)
        return await asyncio.to_thread(path.is_file)

    async def delete(self, sha256s: Sequence[str]) -> int:
        """Remove these blobs' files (missing ones are skipped); how many were removed."""
        paths = [self.path_for(sha) for sha in sha256s]
        return await asyncio.to_thread(_delete_sync, paths)

    async def pack(
        self, entries: Sequence[PackEntry], extra: dict[str, bytes], part_limit: int
    ) -> list[Path]:
        # Files are zipped in one thread from start to end: no hop per chunk.
        return await asyncio.to_thread(self._pack_sync, entries, extra, part_limit)

    async def close(self) -> None:
        """Files hold nothing open between calls."""

    async def size(self, sha256: str) -> int:
        return await asyncio.to_thread(self._size_sync, sha256)

    async def chunks(self, sha256: str) -> AsyncIterator[bytes]:
        path = self.path_for(sha256)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobMissingError(sha256) from exc
        try:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

    def _pack_sync(
        self, entries: Sequence[PackEntry], extra: dict[str, bytes], part_limit: int
    ) -> list[Path]:
        folder = Path(tempfile.mkdtemp(prefix="export-"))
        parts: list[Path] = []
        try:
            sizes = {e.sha256: self._size_sync(e.sha256) for e in entries}
            for number, group in enumerate(_groups(entries, sizes, extra, part_limit), 1):
                path = folder / f"part-{number}.zip"
                # Images are compressed already: stored as they are, read a chunk at a time.
                with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
                    if number == 1:
                        for name, data in extra.items():
                            archive.writestr(name, data, zipfile.ZIP_DEFLATED)
                    for entry in group:
                        archive.write(self.path_for(entry.sha256), entry.name)
                parts.append(path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return parts

    def _size_sync(self, sha256: str) -> int:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError as exc:
            raise BlobMissingError(sha256) from exc

    def _put_sync(self, data: bytes) -> str:
        sha256 = self.sha256_of(data)
        path = self.path_for(sha256)
        if path.is_file():
            return sha256
        try:
            self._write(path, data)
        except FileNotFoundError:
            self._dirs.clear()
            self._write(path, data)
        return sha256

    def _write(self, path: Path, data: bytes) -> None:
        chain = (self.root, path.parent.parent, path.parent)
        # Made here or not, a directory not yet known durable has its entry synced: another
        # put may have made it a moment ago and not synced it yet.
        unsure = [d for d in chain if d not in self._dirs]
        for directory in unsure:
            _make(directory)
        _write_atomic(path, data)
        # The rename and any new directory are entries of their parents: sync those too,
        # or a power loss could forget a file whose row is committed.
        for directory in dict.fromkeys([path.parent, *(d.parent for d in reversed(unsure))]):
            fsync_dir(directory)
        self._dirs.update(chain)


@dataclass(frozen=True)
class PackEntry:
    """One blob in an export zip, under this file name."""

    name: str
    sha256: str


#: Bytes a zip spends on one member beyond its data (headers, a name, the directory entry).
_ZIP_OVERHEAD: Final = 512
#: Bytes read at a time when a blob is streamed.
CHUNK: Final = 1 << 20


def _groups(
    entries: Sequence[PackEntry], sizes: dict[str, int], extra: dict[str, bytes], part_limit: int
) -> list[list[PackEntry]]:
    """The entries of each zip part, in order, each part within `part_limit` if it can be."""
    budget = part_limit - sum(len(v) + _ZIP_OVERHEAD for v in extra.values())
    groups: list[list[PackEntry]] = [[]]
    for entry in entries:
        size = sizes[entry.sha256] + _ZIP_OVERHEAD
        # The first part's extra files count as content: an image too big beside
        # them goes to the next part, never over the limit.
        started = bool(groups[-1]) or (len(groups) == 1 and bool(extra))
        if started and size > budget:
            groups.append([])
            budget = part_limit
        groups[-1].append(entry)
        budget -= size
    return groups


def _delete_sync(paths: list[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    for directory in {p.parent for p in paths}:
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(directory)
    return removed


def _make(directory: Path) -> None:
    """Make `directory` (and any missing parent) unless it is there: one mkdir either way."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new or renamed file in it) survive a power loss."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
