"""The floor: the least any bot must do per image, to compare the real bot against.

    python -m benchmarks.floor TG_ROOT TOKEN API_BASE API_KEY MODEL

Long-polls the Bot API like the bot, and for every message makes only the HTTP calls the work
needs: for a photo, getFile and its download; the upstream POST (openai-chat, the photo inline
as base64); then the upload of the answer (sendPhoto; an answer over Telegram's 10 MB photo
limit gets the smallest honest treatment the bot also gives it: a JPEG preview as the photo,
then the file as a document). No database, no files, no progress messages, no checks. Runs
until SIGTERM. Uses httpx, the HTTP client the bot uses, so both pay the same client costs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import signal
import sys
from typing import Any

import httpx
from PIL import Image

PHOTO_MAX = 10_000_000


def preview(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im.thumbnail((2560, 2560))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


class Floor:
    def __init__(self, tg_root: str, token: str, api_base: str, api_key: str, model: str) -> None:
        self.api = f"{tg_root}/bot{token}"
        self.files = f"{tg_root}/file/bot{token}"
        self.upstream = f"{api_base}/chat/completions"
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.model = model
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(120.0), limits=httpx.Limits(max_connections=None)
        )
        self.tasks: set[asyncio.Task[None]] = set()

    async def poll(self) -> None:
        offset = None
        while True:
            params: dict[str, Any] = {"timeout": 10}
            if offset is not None:
                params["offset"] = offset
            r = await self.http.post(f"{self.api}/getUpdates", json=params)
            for update in r.json().get("result", []):
                offset = update["update_id"] + 1
                msg = update.get("message")
                if msg is not None:
                    task = asyncio.create_task(self.job(msg))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)

    async def job(self, msg: dict[str, Any]) -> None:
        chat = msg["chat"]["id"]
        prompt = msg.get("text") or msg.get("caption") or ""
        content: Any = prompt
        if msg.get("photo"):
            r = await self.http.post(
                f"{self.api}/getFile", json={"file_id": msg["photo"][-1]["file_id"]}
            )
            path = r.json()["result"]["file_path"]
            photo = (await self.http.get(f"{self.files}/{path}")).content
            uri = "data:image/jpeg;base64," + base64.b64encode(photo).decode("ascii")
            content = [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": uri}},
            ]
        body = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        r = await self.http.post(self.upstream, content=json.dumps(body), headers=self.auth)
        text = r.json()["choices"][0]["message"]["content"]
        start = text.index("data:")
        comma = text.index(",", start)
        image = base64.b64decode(text[comma + 1 : text.index(")", comma)])
        if len(image) <= PHOTO_MAX:
            await self.send(chat, "sendPhoto", "photo", image, "image.png")
            return
        small = await asyncio.to_thread(preview, image)
        await self.send(chat, "sendPhoto", "photo", small, "preview.jpg")
        await self.send(chat, "sendDocument", "document", image, "image.png")

    async def send(self, chat: int, method: str, field: str, data: bytes, name: str) -> None:
        await self.http.post(
            f"{self.api}/{method}", data={"chat_id": str(chat)}, files={field: (name, data)}
        )


async def main(argv: list[str]) -> None:
    floor = Floor(*argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    poller = asyncio.create_task(floor.poll())
    await stop.wait()
    poller.cancel()
    await floor.http.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:6]))
