"""A second tiny server on 127.0.0.1 that serves a PNG at any path and records every connection.

It stands for a host inside the operator's network (an admin page, a metadata service) that an
image link in an answer should not reach, or for a host the operator allowed. It is plain
asyncio, not aiohttp, so that it records every connection, even one whose request a web
framework would refuse before any handler runs. It also answers requests in proxy form
(`GET http://169.254.169.254/... HTTP/1.1`), so a test can set it as the HTTP proxy: a link to
any address then lands here instead of leaving the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass

from PIL import Image

COLOR = (12, 200, 99)


@dataclass
class Hit:
    target: str  # the request line's target: a path, or an absolute URL when used as a proxy
    host: str | None


class ImageHost:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.root = ""
        self.port = 0
        self._server: asyncio.Server | None = None
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), COLOR).save(buf, "PNG")
        self.png = buf.getvalue()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{self.port}"
        return self.root

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hit = Hit("", None)
        self.hits.append(hit)  # the connection itself counts: a request was on its way
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            parts = head[0].split(" ")
            hit.target = parts[1] if len(parts) > 1 else ""
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "host":
                    hit.host = value.strip()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
                + f"Content-Length: {len(self.png)}\r\n\r\n".encode()
                + self.png
            )
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
