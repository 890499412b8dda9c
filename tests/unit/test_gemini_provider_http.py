"""GeminiProvider over real HTTP, against a tiny generateContent server defined here on
127.0.0.1 (the shared fake image API will take this dialect over later)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.providers.base import (
    AuthStyle,
    Endpoint,
    ImagePart,
    ImageRequest,
    InputImage,
    TextPart,
    Turn,
)
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.gemini import GeminiProvider

KEY = "AIzaSyTEST-key-0123456789"
PRO = "gemini-3-pro-image-preview"
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PNG = base64.b64decode(PNG_B64)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class TinyGemini:
    """Answers POST /v1beta/models/{model}:generateContent with whatever `reply` says."""

    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    status: int = 200
    payload: bytes = b"{}"

    def reply(self, body: dict[str, Any] | bytes, status: int = 200) -> None:
        self.status = status
        self.payload = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append(
            Seen(
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=json.loads(raw),
            )
        )
        return web.Response(status=self.status, body=self.payload, content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[TinyGemini]:
    tiny = TinyGemini()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1beta/models/{model_action}", tiny.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    tiny.base_url = f"http://{host}:{port}"
    yield tiny
    await runner.cleanup()


Make = Callable[..., GeminiProvider]


@pytest.fixture
def make(server: TinyGemini, http: httpx.AsyncClient) -> Make:
    def build(auth_style: AuthStyle = "x-goog-api-key", **kw: Any) -> GeminiProvider:
        max_download = kw.pop("max_download_bytes", 50_000_000)
        fields: dict[str, Any] = {
            "name": "tiny",
            "dialect": "gemini",
            "base_url": server.base_url,
            "api_key": KEY,
            "auth_style": auth_style,
            "timeout": 20.0,
            **kw,
        }
        return GeminiProvider(Endpoint(**fields), http, max_download_bytes=max_download)

    return build


def image_answer(data_b64: str = PNG_B64, signature: str = "Cq0BAXLI2n==") -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "drafting", "thought": True},
                        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}, "thought": True},
                        {
                            "inlineData": {"mimeType": "image/png", "data": data_b64},
                            "thoughtSignature": signature,
                        },
                        {"text": "Here is your fox."},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 1127},
    }


async def failure(provider: GeminiProvider, model: str = PRO) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await provider.generate(ImageRequest(prompt="a fox", model=model))
    return info.value


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "headers", "query"),
    [
        ("x-goog-api-key", {"x-goog-api-key": KEY}, {}),
        ("query-key", {}, {"key": KEY}),
        ("bearer", {"authorization": f"Bearer {KEY}"}, {}),
        ("raw", {"authorization": KEY}, {}),
    ],
)
async def test_each_auth_style_reaches_the_server(
    server: TinyGemini, make: Make, style: AuthStyle, headers: dict[str, str], query: dict[str, str]
) -> None:
    server.reply(image_answer())
    await make(style).generate(ImageRequest(prompt="a fox", model=PRO))
    [seen] = server.seen
    assert seen.path == f"/v1beta/models/{PRO}:generateContent"
    assert seen.query == query
    auth = {k: v for k, v in seen.headers.items() if k in ("authorization", "x-goog-api-key")}
    assert auth == headers
    assert seen.headers["content-type"] == "application/json"


# --- answers --------------------------------------------------------------------------------


async def test_an_image_answer(server: TinyGemini, make: Make, http: httpx.AsyncClient) -> None:
    server.reply(image_answer())
    request = ImageRequest(
        prompt="a fox at sunset", model=PRO, aspect_ratio="16:9", image_size="2K"
    )
    result = await make().generate(request)
    assert [(i.data, i.mime) for i in result.images] == [(PNG, "image/png")]
    assert result.text == "Here is your fox."
    assert result.model_turn == Turn(
        "model",
        [
            ImagePart("image/png", data=PNG, token={"thoughtSignature": "Cq0BAXLI2n=="}),
            TextPart("Here is your fox."),
        ],
    )
    assert result.usage == {"promptTokenCount": 7, "totalTokenCount": 1127}
    assert (result.endpoint, result.model) == ("tiny", PRO)
    assert server.seen[0].body == {
        "contents": [{"role": "user", "parts": [{"text": "a fox at sunset"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
            "thinkingConfig": {"includeThoughts": True},
        },
    }
    assert not http.is_closed  # the provider uses the shared client, never closes it


async def test_an_edit_with_history_reaches_the_server_verbatim(
    server: TinyGemini, make: Make
) -> None:
    provider = make()
    server.reply(image_answer())
    earlier = await provider.generate(ImageRequest(prompt="a fox", model=PRO))
    assert earlier.model_turn is not None
    first = image_answer()["candidates"][0]["content"]["parts"][2:]
    server.reply(image_answer(signature="second"))
    history = [Turn("user", [TextPart("a fox")]), earlier.model_turn]
    photo = InputImage(PNG, "image/png")
    request = ImageRequest(prompt="make it night", model=PRO, images=[photo], history=history)
    result = await provider.generate(request)
    assert server.seen[1].body["contents"] == [
        {"role": "user", "parts": [{"text": "a fox"}]},
        {"role": "model", "parts": first},
        {
            "role": "user",
            "parts": [
                {"text": "make it night"},
                {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
            ],
        },
    ]
    assert result.model_turn is not None
    assert result.model_turn.parts[0] == ImagePart(
        "image/png", data=PNG, token={"thoughtSignature": "second"}
    )


async def test_a_text_only_answer(server: TinyGemini, make: Make) -> None:
    server.reply(
        {
            "candidates": [
                {"content": {"parts": [{"text": "Ask me to draw it."}]}, "finishReason": "STOP"}
            ]
        }
    )
    result = await make().generate(ImageRequest(prompt="hi", model=PRO))
    assert result.images == [] and result.text == "Ask me to draw it."


async def test_a_block(server: TinyGemini, make: Make) -> None:
    server.reply({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    err = await failure(make())
    assert (err.kind, err.reason, err.endpoint) == (K.BLOCKED, "PROHIBITED_CONTENT", "tiny")
    assert not err.transient


async def test_a_finish_reason_refusal(server: TinyGemini, make: Make) -> None:
    server.reply({"candidates": [{"finishReason": "IMAGE_SAFETY", "finishMessage": "Unsafe."}]})
    err = await failure(make())
    assert (err.kind, err.reason, err.endpoint) == (K.BLOCKED, "IMAGE_SAFETY", "tiny")
    assert "Unsafe." in err.detail


async def test_429_with_retry_info(server: TinyGemini, make: Make) -> None:
    server.reply(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"},
                ],
            }
        },
        status=429,
    )
    err = await failure(make())
    assert (err.kind, err.status, err.retry_after) == (K.RATE_LIMITED, 429, 27.0)
    assert err.endpoint == "tiny" and err.transient


async def test_404_model_not_found(server: TinyGemini, make: Make) -> None:
    server.reply(
        {
            "error": {
                "code": 404,
                "message": "models/gemini-9 is not found for API version v1beta",
                "status": "NOT_FOUND",
            }
        },
        status=404,
    )
    err = await failure(make(), model="gemini-9")
    assert (err.kind, err.status, err.reason) == (K.MODEL_RETIRED, 404, "NOT_FOUND")


async def test_a_malformed_answer(server: TinyGemini, make: Make) -> None:
    server.reply(b'{"candidates": [{"content": {"parts": [{"inlineData": {"data": "iVBOR')
    err = await failure(make())
    assert (err.kind, err.endpoint) == (K.BAD_RESPONSE, "tiny")


# --- big answers ----------------------------------------------------------------------------


def big_png(size: int) -> bytes:
    """PNG-shaped bytes of `size` (signature ... IEND): what the magic-byte checks look at."""
    iend = b"\x00\x00\x00\x00IEND\xaeB`\x82"
    head = b"\x89PNG\r\n\x1a\n"
    return head + os.urandom(size - len(head) - len(iend)) + iend


async def test_a_16_mb_inline_image_arrives_whole(server: TinyGemini, make: Make) -> None:
    big = big_png(16 * 1024 * 1024)
    encoded = base64.b64encode(big).decode("ascii")
    server.reply(await asyncio.to_thread(lambda: json.dumps(image_answer(encoded)).encode()))
    result = await make().generate(ImageRequest(prompt="a fox in 4K", model=PRO, image_size="4K"))
    [image] = result.images
    assert len(image.data) == len(big)
    assert hashlib.sha256(image.data).digest() == hashlib.sha256(big).digest()
    assert image.mime == "image/png"
    assert result.model_turn is not None
    assert result.model_turn.parts[0] == ImagePart(
        "image/png", data=big, token={"thoughtSignature": "Cq0BAXLI2n=="}
    )


async def test_an_image_over_the_download_cap_is_refused(server: TinyGemini, make: Make) -> None:
    encoded = base64.b64encode(big_png(2_000_000)).decode("ascii")
    server.reply(json.dumps(image_answer(encoded)).encode())
    err = await failure(make(max_download_bytes=1_000_000))
    assert (err.kind, err.endpoint) == (K.BAD_RESPONSE, "tiny")
    assert "too large" in err.detail


# --- transport --------------------------------------------------------------------------------


async def test_unreachable_endpoint_does_not_leak_the_query_key(make: Make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = await failure(make("query-key", base_url=f"http://127.0.0.1:{port}"))
    assert (err.kind, err.endpoint) == (K.CONNECTION, "tiny")
    assert KEY not in str(err) and KEY not in err.detail
