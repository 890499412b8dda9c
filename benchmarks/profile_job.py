"""SQL statements and time per job, through the bot's real services (no Telegram, no HTTP).

    python -m benchmarks.profile_job [--jobs 200] [--json]

Builds the services as `bot/app.py` does (quotas configured as by default: no daily limits)
on a migrated SQLite file in a temp dir, with a provider that answers at once with a 1024x1024
PNG of ~1.4 MB (unique per answer, so the blob store really writes each one) and a stand-in
Bot whose send_photo returns at once. Each job follows the handlers' path:

* text: `inputs_for_text` (waiting album, prefs, current image), `run_job` (prefs,
  `GenerationService.run`), `ResultSender.send` (blob read, photo check, delivery record);
* photo: `take_user_image` of a 1280x960 JPEG (unique per job), then the same `run_job` path
  with that image as input (an edit).

"fresh" scenarios use a new user and chat per job (like the benchmark's overhead rows);
"same chat" ones repeat in one chat (text then refines the current image). Per scenario it
prints SQL statements per job (counted with `before_cursor_execute`), wall and CPU
milliseconds per job (CPU of the whole process, image threads included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image
from sqlalchemy import event

from benchmarks.fakes import png_bytes, user_photo

_PNG_HEAD = 33  # signature + IHDR


def _unique_png(base: bytes, n: int) -> bytes:
    data = b"tEXt" + b"bench\x00" + f"{n:012d}".encode()
    chunk = struct.pack(">I", len(data) - 4) + data + struct.pack(">I", zlib.crc32(data))
    return base[:_PNG_HEAD] + chunk + base[_PNG_HEAD:]


def _unique_jpeg(base: bytes, n: int) -> bytes:
    comment = f"bench {n:012d}".encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:]


class InstantProvider:
    """Answers every request at once with a unique 1024x1024 PNG."""

    def __init__(self) -> None:
        from bot.providers.base import Endpoint

        self.endpoint = Endpoint(name="bench", dialect="openai-chat", base_url="", api_key="")
        self.png = png_bytes(1024, 4, 6)
        self.count = 0

    async def generate(self, request: Any, progress: Any = None) -> Any:
        from bot.providers.base import GeneratedImage, ImageResult

        self.count += 1
        data = _unique_png(self.png, self.count)
        return ImageResult(
            images=[GeneratedImage(data, "image/png")], endpoint="bench", model=request.model
        )


class InstantBot:
    """What ResultSender needs of telegram.Bot: send_photo/send_document answering at once."""

    def __init__(self) -> None:
        self.message_id = 1_000_000

    def _message(self) -> Any:
        self.message_id += 1
        photo = [SimpleNamespace(file_id=f"photo-{self.message_id}")]
        return SimpleNamespace(message_id=self.message_id, photo=photo)

    async def send_photo(self, *args: Any, **kwargs: Any) -> Any:
        return self._message()

    async def send_document(self, *args: Any, **kwargs: Any) -> Any:
        return self._message()

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        return self._message()


class Bench:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.statements: Counter[str] = Counter()
        self.counting = False

    async def open(self) -> None:
        from bot.services.access import AccessLists, AccessService
        from bot.services.generation import GenerationService
        from bot.services.images import ImageLibrary
        from bot.services.ordering import FairScheduler
        from bot.services.prefs import PrefsService
        from bot.services.quotas import QuotaService
        from bot.storage import db
        from bot.storage.blobs import LocalBlobStore
        from bot.storage.database import Database
        from bot.telegram.replies import ResultSender

        url = f"sqlite+aiosqlite:///{self.data_dir}/bot.db"
        await db.aupgrade(url)
        self.engine = db.create_engine(url)
        sessions = db.create_sessionmaker(self.engine)
        for counted in (self.engine.sync_engine, db.inline_engine(sessions)):
            event.listen(counted, "before_cursor_execute", self._count)
        database = Database(sessions)
        blobs = LocalBlobStore(self.data_dir / "images")
        self.access = AccessService(database, AccessLists(frozenset(), frozenset(), frozenset()))
        self.quotas = QuotaService(database, per_user=0, per_chat=0)
        self.images = ImageLibrary(database, blobs)
        self.prefs = PrefsService(database)
        self.generation = GenerationService(
            database,
            blobs,
            InstantProvider(),
            model="gemini-2.5-flash-image",
            dialect="openai-chat",
            quotas=self.quotas,
            scheduler=FairScheduler(1000, 1000),
            pricing=lambda endpoint, model, size: 0.039,
            images=self.images,
            prefs=self.prefs,
        )
        self.sender = ResultSender(InstantBot(), self.images)  # type: ignore[arg-type]
        self.photo = user_photo()
        self.photos = 0

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.counting:
            self.statements[" ".join(statement.split()[:3])] += 1

    async def job(self, who: Any, message_id: int, *, photo: bool) -> None:
        """One request as the handlers make it (private chat): a request, prepared, run, shown."""
        from bot.services.requests import GenerationRequest, TelegramImage

        assert await self.access.allowed(who.user_id, who.chat_id)
        images: tuple[TelegramImage, ...] = ()
        if photo:
            self.photos += 1
            data = _unique_jpeg(self.photo, self.photos)

            async def fetch() -> bytes:
                return data

            images = (
                TelegramImage(message_id, f"file-{message_id}", f"unique-{message_id}", fetch),
            )
        request = GenerationRequest(
            who,
            "a red bicycle on a beach at sunset --ar 4:3",
            reply_to=message_id,
            images=images,
            chat_images=not photo,
        )
        outcome = await self.generation.run(await self.generation.prepare(request))
        prefs = await self.prefs.get(who.chat_id)
        await self.sender.send(who, "en", outcome, message_id, reply_mode=prefs.reply_mode)

    async def scenario(self, name: str, jobs: int, *, photo: bool, fresh: bool) -> dict[str, Any]:
        from bot.services.types import Who

        base = {"text": 1, "photo": 2}["photo" if photo else "text"] * 10_000_000
        base += 1_000_000 if fresh else 0

        def who(n: int) -> Who:
            chat = base + (n if fresh else 0)
            return Who(chat, f"User {chat}", "someone", "en", chat, "private")

        await self.job(who(0), 1, photo=photo)  # warm-up: first rows, statement caches
        self.statements.clear()
        self.counting = True
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(1, jobs + 1):
            await self.job(who(n), 2 * n + 1, photo=photo)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.counting = False
        return {
            "scenario": name,
            "jobs": jobs,
            "sql_per_job": round(sum(self.statements.values()) / jobs, 2),
            "wall_ms_per_job": round(wall * 1000 / jobs, 2),
            "cpu_ms_per_job": round(cpu * 1000 / jobs, 2),
            "statements": {k: round(v / jobs, 2) for k, v in self.statements.most_common()},
        }


SCENARIOS = {  # name: (photo, fresh)
    "text, fresh chat": (False, True),
    "text, same chat (refine)": (False, False),
    "photo edit, fresh chat": (True, True),
    "photo edit, same chat": (True, False),
}


async def run(jobs: int, data_dir: Path, only: str = "") -> list[dict[str, Any]]:
    bench = Bench(data_dir)
    await bench.open()
    try:
        return [
            await bench.scenario(name, jobs, photo=photo, fresh=fresh)
            for name, (photo, fresh) in SCENARIOS.items()
            if only in name
        ]
    finally:
        await bench.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_job")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--detail", action="store_true", help="statements by kind")
    parser.add_argument("--only", default="", help="scenarios whose name contains this")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        results = asyncio.run(run(args.jobs, Path(tmp), args.only))
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'scenario':<28} {'SQL/job':>8} {'wall ms':>8} {'CPU ms':>8}")
    for r in results:
        print(
            f"{r['scenario']:<28} {r['sql_per_job']:>8} "
            f"{r['wall_ms_per_job']:>8} {r['cpu_ms_per_job']:>8}"
        )
        if args.detail:
            for statement, count in r["statements"].items():
                print(f"    {count:>6}  {statement}")
    return 0


if __name__ == "__main__":
    Image.init()  # load Pillow's plugins before anything is timed
    sys.exit(main())
