"""OpenAIChatProvider over real HTTP against the fake relay (tests/fakes/image_api.py)."""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.providers.base import Endpoint, ImageRef, ImageRequest, ImageResult, InputImage
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.http import MAX_ANSWER_BYTES, download_image, resolve_images, transport_error
from bot.providers.openai_chat import OpenAIChatProvider
from bot.providers.urlguard import UrlPolicy
from tests.fakes.image_api import LEADING_TEXT, TEXT_ONLY_ANSWER, FakeImageAPI, noise_png

K = ProviderErrorKind
MODEL = "gemini-2.5-flash-image"
SMALL = (48, 32)


@pytest.fixture
async def api() -> AsyncIterator[FakeImageAPI]:
    fake = FakeImageAPI()
    fake.output_size = SMALL
    await fake.start()
    yield fake
    await fake.stop()


ProviderFactory = Callable[..., OpenAIChatProvider]


@pytest.fixture
def provider(api: FakeImageAPI, http: httpx.AsyncClient) -> ProviderFactory:
    def make(**kw: Any) -> OpenAIChatProvider:
        max_download = kw.pop("max_download_bytes", 50_000_000)
        fields: dict[str, Any] = {
            "name": "fake",
            "dialect": "openai-chat",
            "base_url": api.openai_base,
            "api_key": "sk-test",
            "timeout": 10.0,
            **kw,
        }
        return OpenAIChatProvider(Endpoint(**fields), http, max_download_bytes=max_download)

    return make


def pixels(result: ImageResult, i: int = 0) -> tuple[tuple[int, int], tuple[int, int, int]]:
    with Image.open(io.BytesIO(result.images[i].data)) as im:
        rgb = im.convert("RGB")
        return im.size, rgb.getpixel((0, 0))  # type: ignore[return-value]


def png(color: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


async def failure(make: ProviderFactory, **kw: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await make(**kw).generate(ImageRequest(prompt="画一条狗", model=MODEL))
    return info.value


# --- answer shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        ("markdown-data", LEADING_TEXT),
        ("markdown-url", None),
        ("images-field", "Here is the image you asked for."),
        ("content-array", LEADING_TEXT),
    ],
)
async def test_each_image_shape_arrives_as_bytes(
    api: FakeImageAPI, provider: ProviderFactory, shape: str, text: str | None
) -> None:
    api.answer_shape = shape
    expected = api.next_color()
    result = await provider().generate(ImageRequest(prompt="画一条狗", model=MODEL))
    assert [i.mime for i in result.images] == ["image/png"]
    assert pixels(result) == (SMALL, expected)
    assert api.outputs == [expected]
    assert result.text == text
    assert (result.endpoint, result.model) == ("fake", MODEL)
    assert result.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@pytest.mark.parametrize(
    ("shape", "text"), [("text-only", TEXT_ONLY_ANSWER), ("empty-markdown", "这是您的小猫:")]
)
async def test_answers_without_image_carry_the_words(
    api: FakeImageAPI, provider: ProviderFactory, shape: str, text: str
) -> None:
    api.answer_shape = shape
    result = await provider().generate(ImageRequest(prompt="画一条狗", model=MODEL))
    assert result.images == []
    assert result.text == text
    assert api.outputs == []


async def test_jpeg_output_and_several_images_in_one_answer(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    api.output_format, api.images_per_answer = "jpeg", 2
    result = await provider().generate(ImageRequest(prompt="two dogs", model=MODEL))
    assert [i.mime for i in result.images] == ["image/jpeg", "image/jpeg"]
    assert len(api.outputs) == 2 and api.outputs[0] != api.outputs[1]
    for i, color in enumerate(api.outputs):
        got = pixels(result, i)[1]
        assert all(abs(a - b) <= 3 for a, b in zip(got, color, strict=True))


async def test_the_request_on_the_wire(api: FakeImageAPI, provider: ProviderFactory) -> None:
    request = ImageRequest(
        prompt="make it green",
        model=MODEL,
        images=[InputImage(png((10, 200, 30)), "image/png")],
        aspect_ratio="16:9",
    )
    await provider(extra_body={"group": "default"}).generate(request)
    [seen] = api.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json["group"] == "default"
    assert seen.json["stream"] is False
    assert seen.json["extra_body"] == {"google": {"image_config": {"aspect_ratio": "16:9"}}}
    assert seen.json["messages"][0]["content"][0] == {"type": "text", "text": "make it green"}
    [image] = seen.input_images
    assert (image.mime, image.width, image.height, image.color) == (
        "image/png",
        16,
        16,
        (10, 200, 30),
    )


async def test_a_later_request_carries_the_earlier_output_by_pixels(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    chat = provider()
    first = await chat.generate(ImageRequest(prompt="a cat", model=MODEL))
    out = first.images[0]
    await chat.generate(
        ImageRequest(prompt="now blue", model=MODEL, images=[InputImage(out.data, out.mime)])
    )
    assert api.requests[1].input_images[0].color == api.outputs[0]
    assert api.outputs[1] != api.outputs[0]


async def test_the_shared_client_is_left_open(
    provider: ProviderFactory, http: httpx.AsyncClient
) -> None:
    await provider().generate(ImageRequest(prompt="x", model=MODEL))
    assert not http.is_closed


# --- links ------------------------------------------------------------------------------------


async def test_expired_link_is_bad_response(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.answer_shape, api.url_ttl = "markdown-url", -1.0
    err = await failure(provider)
    assert err.kind is K.BAD_RESPONSE
    assert "expired" in err.detail
    assert err.endpoint == "fake"


async def test_link_is_downloaded_at_once_within_its_ttl(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    api.answer_shape, api.url_ttl = "markdown-url", 2.0
    result = await provider().generate(ImageRequest(prompt="x", model=MODEL))
    assert len(result.images) == 1


@pytest.mark.parametrize("shape", ["markdown-data", "markdown-url"])
async def test_image_over_the_byte_cap_is_bad_response(
    api: FakeImageAPI, provider: ProviderFactory, shape: str
) -> None:
    api.answer_shape = shape
    err = await failure(provider, max_download_bytes=100)
    assert err.kind is K.BAD_RESPONSE
    assert "image too large" in err.detail


async def test_download_helpers_refuse_other_schemes_and_check_bytes(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as info:
        await download_image(http, "file:///etc/passwd", max_bytes=1000, timeout=1)
    assert info.value.kind is K.BAD_RESPONSE
    own = UrlPolicy().with_origin(api.root)  # the fake's own links, as its provider allows them
    with pytest.raises(ProviderError) as info:
        await download_image(
            http, f"{api.root}/files/missing.png", max_bytes=1000, timeout=1, policy=own
        )
    assert "expired" in info.value.detail
    with pytest.raises(ProviderError) as info:
        await download_image(
            http, f"{api.root}/v1/chat/completions", max_bytes=1000, timeout=1, policy=own
        )
    assert info.value.kind is K.BAD_RESPONSE and "HTTP 405" in info.value.detail
    with pytest.raises(ProviderError) as info:
        await resolve_images(
            http, [ImageRef(data=b"<html>", mime="image/png")], max_bytes=99, timeout=1
        )
    assert info.value.kind is K.BAD_RESPONSE and "not an image" in info.value.detail


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected", "status"),
    [
        ("500", K.SERVER, 500),
        ("503-html", K.SERVER, 503),
        ("429", K.RATE_LIMITED, 429),
        ("malformed-json", K.BAD_RESPONSE, None),
        ("truncated-base64", K.BAD_RESPONSE, None),
        ("401", K.AUTH, 401),
        ("400", K.BAD_REQUEST, 400),
        ("404-model", K.MODEL_RETIRED, 404),
        ("content-filter", K.BLOCKED, None),
    ],
)
async def test_each_failure_kind_maps_to_its_error(
    api: FakeImageAPI,
    provider: ProviderFactory,
    kind: str,
    expected: ProviderErrorKind,
    status: int | None,
) -> None:
    api.fail_next(kind)
    err = await failure(provider)
    assert err.kind is expected
    assert err.status == status
    assert err.endpoint == "fake"
    assert "sk-test" not in str(err)
    assert len(api.requests) == 1  # no hidden retries: a retry could charge twice


async def test_429_carries_retry_after(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.fail_next("429", retry_after=3)
    err = await failure(provider)
    assert err.retry_after == 3.0
    assert err.transient


async def test_html_error_page_is_summarised(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.fail_next("503-html")
    err = await failure(provider)
    assert "503: Service temporarily unavailable" in err.detail
    assert "<" not in err.detail


async def test_model_not_found_as_new_api_says_it_with_503(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    api.fail_next("404-model", status=503)
    assert (await failure(provider)).kind is K.MODEL_RETIRED


async def test_hang_times_out(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.fail_next("hang", seconds=30)
    err = await failure(provider, timeout=0.3)
    assert err.kind is K.TIMEOUT
    assert err.transient


async def test_latency_within_timeout_is_fine(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.latency = 0.2
    result = await provider(timeout=5.0).generate(ImageRequest(prompt="x", model=MODEL))
    assert len(result.images) == 1


async def test_failures_are_used_up_in_order(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.fail_next("500", times=2)
    chat = provider()
    for _ in range(2):
        with pytest.raises(ProviderError):
            await chat.generate(ImageRequest(prompt="x", model=MODEL))
    assert len((await chat.generate(ImageRequest(prompt="x", model=MODEL))).images) == 1


async def test_refused_connection_is_connection_error(http: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = Endpoint(
        name="gone",
        dialect="openai-chat",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-test",
        timeout=5.0,
    )
    with pytest.raises(ProviderError) as info:
        await OpenAIChatProvider(endpoint, http).generate(ImageRequest(prompt="x", model=MODEL))
    assert info.value.kind is K.CONNECTION
    assert info.value.endpoint == "gone"


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["bearer", "raw", "x-goog-api-key", "query-key"])
async def test_auth_styles(api: FakeImageAPI, provider: ProviderFactory, style: str) -> None:
    api.auth_style = style
    result = await provider(auth_style=style).generate(ImageRequest(prompt="x", model=MODEL))
    assert len(result.images) == 1
    if style == "raw":  # S4: the key alone, no "Bearer"
        assert api.requests[0].headers["authorization"] == "sk-test"


async def test_raw_server_refuses_a_bearer_client(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    api.auth_style = "raw"
    err = await failure(provider, auth_style="bearer")
    assert err.kind is K.AUTH


async def test_wrong_key_is_auth_and_never_echoed(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    err = await failure(provider, api_key="sk-wrong-key-123456")
    assert err.kind is K.AUTH
    assert err.reason == "invalid_api_key"
    assert "sk-wrong-key-123456" not in str(err)


# --- a 4K-sized answer --------------------------------------------------------------------------


async def test_a_16_mb_answer_arrives_whole(api: FakeImageAPI, provider: ProviderFactory) -> None:
    api.big_output_bytes = 16_000_000
    result = await provider(timeout=60.0).generate(ImageRequest(prompt="4k", model=MODEL))
    [image] = result.images
    assert len(image.data) >= 16_000_000
    assert image.data == noise_png(16_000_000)
    assert image.mime == "image/png"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("t"), K.CONNECTION),  # never reached the upstream: not billed
        (httpx.PoolTimeout("t"), K.CONNECTION),
        (httpx.ReadTimeout("t"), K.TIMEOUT),  # the upstream may have made (and billed) it
        (TimeoutError(), K.TIMEOUT),
        (httpx.ConnectError("refused"), K.CONNECTION),
        (httpx.RemoteProtocolError("peer closed"), K.CONNECTION),
    ],
)
def test_transport_errors(exc: BaseException, kind: ProviderErrorKind) -> None:
    assert transport_error(exc, "POST to x", "x").kind is kind


async def test_a_runaway_answer_is_refused_while_it_streams(
    api: FakeImageAPI, provider: ProviderFactory
) -> None:
    """A 300 MB answer (chunked: no length to refuse it by) is cut off at the 64 MB cap."""
    api.stream_answer_bytes = 300_000_000
    err = await failure(provider)
    assert err.kind is K.BAD_RESPONSE and "answer too large" in err.detail
    assert MAX_ANSWER_BYTES == 64 * 1024 * 1024
    assert api.streamed_bytes < 150_000_000  # the bot hung up; it did not read on to the end
