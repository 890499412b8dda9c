"""The test fakes, set up for measuring: realistic images, unique answers, timestamps.

`TimedImageAPI` is the suite's FakeImageAPI (same openai-chat route, auth, recording, latency)
with two changes for benchmarks:

* answers carry a realistic image, unique per answer (a PNG tEXt chunk with a counter, so the
  bot's content-addressed store really writes every one) and are built from precomputed
  base64 in microseconds, so the fake stays cheap next to the bot at 500 chats;
* it notes, per job, when the request arrived (headers read, before the body) and when the
  answer was ready to go out. Jobs are found by a `job-<chat_id>` marker in the prompt;
* the Gemini routes answer too (generateContent, and Imagen's predict, which the suite's fake
  lacks), with either auth header, so `benchmarks/peers.py` can point other bots at it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image, ImageChops

from tests.fakes.image_api import LEADING_TEXT, FakeImageAPI, chat_payload, gemini_payload

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MARKER = re.compile(rb"job-(\d+)")
_PNG_HEAD = 33  # signature (8) + IHDR chunk (25): a multiple of 3, so base64 splits cleanly


def photo_like(side: int, sigma: float) -> Image.Image:
    """Gradients plus gaussian noise: compresses like a photo, not like a flat colour."""
    g = Image.linear_gradient("L").resize((side, side))
    r = Image.radial_gradient("L").resize((side, side))
    channels = [
        ImageChops.add(base, Image.effect_noise((side, side), sigma), scale=2.0, offset=-64)
        for base in (g, r, g.transpose(Image.Transpose.ROTATE_90))
    ]
    return Image.merge("RGB", channels)


def png_bytes(side: int, sigma: float, level: int) -> bytes:
    buf = io.BytesIO()
    photo_like(side, sigma).save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def user_photo() -> bytes:
    """What Telegram hands a bot for a phone photo: a 1280x960 JPEG of ~140 KB."""
    buf = io.BytesIO()
    photo_like(1280, 10).resize((1280, 960)).save(buf, "JPEG", quality=87)
    return buf.getvalue()


def _text_chunk(n: int) -> bytes:
    data = b"tEXt" + b"bench\x00" + f"{n:012d}".encode()  # 30-byte chunk: a multiple of 3
    return struct.pack(">I", len(data) - 4) + data + struct.pack(">I", zlib.crc32(data))


@dataclass
class AnswerImage:
    """A PNG whose base64 is precomputed around a slot for a unique chunk."""

    name: str
    png: bytes
    width: int
    height: int

    def __post_init__(self) -> None:
        assert self.png[12:16] == b"IHDR"
        self.b64_head = base64.b64encode(self.png[:_PNG_HEAD])
        self.b64_tail = base64.b64encode(self.png[_PNG_HEAD:])

    def b64(self, n: int) -> bytes:
        return self.b64_head + base64.b64encode(_text_chunk(n)) + self.b64_tail

    @property
    def size(self) -> int:
        return len(self.png) + len(_text_chunk(0))


_ANSWERS: dict[str, AnswerImage] = {}


def answer_image(kind: str) -> AnswerImage:
    """ "1k": 1024x1024 PNG of ~1.4 MB (like a Gemini 1K answer); "flat": 1024x1024 PNG of one
    colour (~4 KB, what the suite's fake answers); "4k": 4096x4096 PNG of ~16.5 MB."""
    if kind not in _ANSWERS:
        if kind == "1k":
            _ANSWERS[kind] = AnswerImage(kind, png_bytes(1024, 4, 6), 1024, 1024)
        elif kind == "flat":
            buf = io.BytesIO()
            Image.new("RGB", (1024, 1024), (90, 140, 200)).save(buf, "PNG")
            _ANSWERS[kind] = AnswerImage(kind, buf.getvalue(), 1024, 1024)
        elif kind == "4k":
            _ANSWERS[kind] = AnswerImage(kind, png_bytes(4096, 1, 1), 4096, 4096)
        else:
            raise ValueError(kind)
    return _ANSWERS[kind]


@dataclass
class JobTimes:
    arrived: float  # request headers read
    answered: float | None = None  # answer built, about to be written


class TimedImageAPI(FakeImageAPI):
    def __init__(self, answer: AnswerImage, **kw: Any) -> None:
        super().__init__(**kw)
        self.answer = answer
        self.jobs: dict[int, JobTimes] = {}
        self._serial = 0

    async def _timed(self, request: web.Request, serve: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        raw = await request.read()  # aiohttp keeps it: the shared pipeline reads it again
        found = _MARKER.search(raw)
        job = int(found.group(1)) if found else None
        if job is not None:
            self.jobs[job] = JobTimes(arrived)
        response = await serve(request)
        if job is not None:
            self.jobs[job].answered = time.monotonic()
        return response

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._timed(request, super()._chat_completions)

    async def _generate_content(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["model_action"].endswith(":predict"):
            return await self._timed(
                request, lambda r: self._serve(r, "gemini", self._imagen_answer)
            )
        return await self._timed(request, super()._generate_content)

    def _authorized(self, request: web.Request) -> bool:
        # Each peer's SDK sends the key its own way; the key is what is checked.
        return self.api_key in (
            request.headers.get("x-goog-api-key"),
            request.headers.get("Authorization", "").removeprefix("Bearer "),
        )

    def _answer_around(
        self, payload: dict[str, Any], prefix: bytes = b"", suffix: bytes = b""
    ) -> bytes:
        """The payload's JSON with its "\\x00" string replaced by a fresh unique image's base64."""
        self._serial += 1
        head, tail = json.dumps(payload, ensure_ascii=False).encode().split(b"\\u0000")
        self.outputs.append((0, 0, 0))
        return b"".join((head, prefix, self.answer.b64(self._serial), suffix, tail))

    async def _gemini_answer(self, body: dict[str, Any], failure: object) -> web.Response:
        parts: list[dict[str, Any]] = [
            {"text": "Here is your image."},
            {"inlineData": {"mimeType": "image/png", "data": "\x00"}},
        ]
        body_bytes = self._answer_around(gemini_payload(parts))
        return web.Response(body=body_bytes, content_type="application/json")

    async def _imagen_answer(self, body: dict[str, Any], failure: object) -> web.Response:
        payload = {"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "\x00"}]}
        return web.Response(body=self._answer_around(payload), content_type="application/json")

    async def _chat_answer(self, body: dict[str, Any], failure: object) -> web.Response:
        payload = chat_payload(str(body.get("model", "")), "\x00")
        prefix = LEADING_TEXT.encode() + b"![image](data:image/png;base64,"
        body_bytes = self._answer_around(payload, prefix, b")")
        return web.Response(body=body_bytes, content_type="application/json")
