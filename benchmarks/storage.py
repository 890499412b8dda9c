"""Storage throughput: jobs per second the database layer sustains when every chat writes at once.

    python -m benchmarks.storage [--chats 500] [--jobs 4]

Drives the bot's real services against a migrated SQLite file (WAL, as `python -m bot` runs it)
with a provider that answers at once, so only the database and blob store work is measured:
per job, the read a text message makes (`ImageLibrary.for_text`: waiting album, else current
image), `GenerationService.run` (open the job, mark it sent upstream, store the output, finish
the job), `ImageLibrary.record_delivery` and `GenerationService.mark_delivered` -- every database write
of one generation. `--chats` chats run concurrently, each `--jobs` jobs in a row.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


class InstantProvider:
    """Answers every request at once with the same small PNG."""

    def __init__(self) -> None:
        from bot.providers.base import Endpoint

        self.endpoint = Endpoint(name="bench", dialect="openai-chat", base_url="", api_key="")
        self.png = _png()

    async def generate(self, request: Any, progress: Any = None) -> Any:
        from bot.providers.base import GeneratedImage, ImageResult

        return ImageResult(
            images=[GeneratedImage(self.png, "image/png")], endpoint="bench", model=request.model
        )


async def run(chats: int, jobs: int, data_dir: Path) -> dict[str, Any]:
    from bot.services.generation import GenerationService
    from bot.services.images import ImageLibrary
    from bot.services.requests import GenerationRequest
    from bot.services.types import Who
    from bot.storage import db
    from bot.storage.blobs import LocalBlobStore
    from bot.storage.database import Database

    url = f"sqlite+aiosqlite:///{data_dir}/bot.db"
    await db.aupgrade(url)
    engine = db.create_engine(url)
    database = Database(db.create_sessionmaker(engine))
    blobs = LocalBlobStore(data_dir / "images")
    images = ImageLibrary(database, blobs)
    generation = GenerationService(
        database,
        blobs,
        InstantProvider(),
        model="gemini-2.5-flash-image",
        dialect="openai-chat",
        images=images,
    )
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def chat(chat_id: int) -> None:
        who = Who(chat_id, "Bench", None, "en", chat_id, "private")
        for n in range(jobs):
            started = time.monotonic()
            try:
                # prepare() reads the chat's prefs and its current image, as a text does
                request = GenerationRequest(who, f"job {n}", 2 * n + 1, chat_images=True)
                outcome = await generation.run(await generation.prepare(request))
                await images.record_delivery(chat_id, 2 * n + 2, outcome.images[0].id, None)
                await generation.mark_delivered(outcome.job_id)
            except Exception as exc:
                key = f"{type(exc).__name__}: {str(exc)[:80]}"
                errors[key] = errors.get(key, 0) + 1
                continue
            latencies.append(time.monotonic() - started)

    # Warm up: the first chat creates rows and caches statements.
    await chat(1)
    latencies.clear()
    started = time.monotonic()
    await asyncio.gather(*(chat(10_000 + i) for i in range(chats)))
    elapsed = time.monotonic() - started
    await engine.dispose()
    done = len(latencies)
    latencies.sort()
    return {
        "chats": chats,
        "jobs_per_chat": jobs,
        "jobs_done": done,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "jobs_per_second": round(done / elapsed, 1) if elapsed else 0.0,
        "job_ms_p50": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "job_ms_p99": round(latencies[int(0.99 * (done - 1))] * 1000, 1) if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage")
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        result = asyncio.run(run(args.chats, args.jobs, Path(tmp)))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
