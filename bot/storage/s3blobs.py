"""The blob store in an S3-compatible bucket (AWS S3, MinIO, R2…), through `obstore`.

Keys are ``prefix/ab/cd/<sha256>``, the local store's layout. `obstore` is async from end to end
(Rust's `object_store` underneath, no thread per call) and talks to any endpoint, plain HTTP too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from bot.storage.blobs import CHUNK, BlobMissingError, BlobStore

if TYPE_CHECKING:
    from obstore import ObjectMeta
    from obstore.store import S3Config


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/prefix`` (the prefix may be empty). ValueError for anything else."""
        parts = urlsplit(url.strip())
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("must look like s3://bucket or s3://bucket/prefix")
        return cls(parts.netloc, parts.path.strip("/"))


class S3BlobStore(BlobStore):
    """A `put` returns once the bucket has answered the upload (S3 writes are durable then).
    Blobs are uploaded in one request: a multipart upload would only add requests for the
    sizes images have."""

    def __init__(
        self,
        location: S3Location,
        *,
        endpoint_url: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        region: str = "",
    ) -> None:
        config: S3Config = {}
        if endpoint_url:
            config["endpoint"] = endpoint_url
        if access_key_id:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        if region:
            config["region"] = region
        self.location = location
        self._store = S3Store(
            location.bucket,
            prefix=location.prefix or None,
            config=config,
            client_options={"allow_http": endpoint_url.startswith("http://")},
        )

    @staticmethod
    def key_for(sha256: str) -> str:
        """``ab/cd/<sha256>`` (below the store's prefix)."""
        BlobStore.check_key(sha256)
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    async def put(self, data: bytes) -> str:
        sha256 = self.sha256_of(data)
        key = self.key_for(sha256)
        if not await self._head(key):
            await obstore.put_async(self._store, key, data, use_multipart=False)
        return sha256

    async def get(self, sha256: str) -> bytes:
        key = self.key_for(sha256)
        try:
            result = await obstore.get_async(self._store, key)
            # One copy into the bytes the callers take; the buffer obstore read is dropped here.
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise BlobMissingError(sha256) from exc

    async def exists(self, sha256: str) -> bool:
        return await self._head(self.key_for(sha256)) is not None

    async def size(self, sha256: str) -> int:
        meta = await self._head(self.key_for(sha256))
        if meta is None:
            raise BlobMissingError(sha256)
        return int(meta["size"])

    async def chunks(self, sha256: str) -> AsyncIterator[bytes]:
        key = self.key_for(sha256)
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError as exc:
            raise BlobMissingError(sha256) from exc
        async for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    async def delete(self, sha256s: Sequence[str]) -> int:
        """S3 deletes succeed for missing keys too: the count is of those present before."""
        keys = [self.key_for(sha) for sha in sha256s]
        present = [key for key in keys if await self._head(key) is not None]
        if present:
            await obstore.delete_async(self._store, present)
        return len(present)

    async def close(self) -> None:
        """obstore's client closes its connections when dropped."""

    async def _head(self, key: str) -> ObjectMeta | None:
        try:
            return await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
