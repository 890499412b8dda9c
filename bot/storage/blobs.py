"""Content-addressed image store: each blob lives at ``root/ab/cd/abcd…`` named by its SHA-256."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX: Final = ".tmp-"


class BlobMissingError(LookupError):
    """No blob is stored under this hash."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} is missing")
        self.sha256 = sha256


class BlobStore:
    """Files are written atomically (temp file in the same directory, then ``os.replace``).

    A blob is never rewritten once present; there is no deletion API.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # created lazily by the first put()

    @staticmethod
    def sha256_of(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def path_for(self, sha256: str) -> Path:
        """``root/ab/cd/<sha256>``. Raises ValueError unless ``sha256`` is 64 lowercase hex."""
        if not isinstance(sha256, str) or _SHA256_RE.fullmatch(sha256) is None:
            raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
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

    def _put_sync(self, data: bytes) -> str:
        sha256 = self.sha256_of(data)
        path = self.path_for(sha256)
        if path.is_file():
            return sha256
        created = [d for d in (self.root, path.parent.parent, path.parent) if not d.is_dir()]
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        # The rename and any new directory are entries of their parents: sync those too,
        # or a power loss could forget a file whose row is committed.
        for directory in dict.fromkeys([path.parent, *(d.parent for d in reversed(created))]):
            fsync_dir(directory)
        return sha256


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
