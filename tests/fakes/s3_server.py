"""An S3-speaking server on 127.0.0.1 for the S3 blob store: `moto`'s standalone server, run
in a thread of the test process, one fresh bucket per test."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import httpx
import obstore
from moto.server import ThreadedMotoServer
from obstore.store import S3Store

from tests.fakes.ports import free_port

# moto checks no signature; the store still signs with these, never with the environment's.
ACCESS_KEY_ID = "AKIATESTONLY0000OPS1"
SECRET_ACCESS_KEY = "test-only-secret-access-key-for-moto-0001"
REGION = "us-east-1"


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def new_bucket(self, prefix: str = "") -> S3Bucket:
        name = f"bot-{uuid.uuid4().hex[:12]}"
        with httpx.Client(trust_env=False) as client:
            client.put(f"{self.endpoint}/{name}").raise_for_status()
        return S3Bucket(self.endpoint, name, prefix)


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    name: str
    prefix: str

    @property
    def url(self) -> str:
        """What BLOB_STORE_URL says for it."""
        return f"s3://{self.name}/{self.prefix}" if self.prefix else f"s3://{self.name}"

    def settings(self) -> dict[str, str]:
        return {
            "blob_store_url": self.url,
            "s3_endpoint_url": self.endpoint,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
            "s3_region": REGION,
        }

    def _store(self) -> S3Store:
        return S3Store(
            self.name,
            config={
                "endpoint": self.endpoint,
                "access_key_id": ACCESS_KEY_ID,
                "secret_access_key": SECRET_ACCESS_KEY,
                "region": REGION,
            },
            client_options={"allow_http": True},
        )

    def keys(self) -> list[str]:
        """Every object key in the bucket (prefix included), sorted."""
        return sorted(m["path"] for batch in obstore.list(self._store()) for m in batch)

    def read(self, key: str) -> bytes:
        return bytes(obstore.get(self._store(), key).bytes())
