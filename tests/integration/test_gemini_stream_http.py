"""GeminiProvider reading `streamGenerateContent?alt=sse` over real HTTP from the fake image
API: the same result as the unstreamed call, thoughts told as they arrive, the same errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.providers import http as http_module
from bot.providers.base import Endpoint, ImageRequest, ImageResult, ProgressEvent, Thinking
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.gemini import GeminiProvider
from tests.fakes.image_api import DRAFT_COLOR, FakeImageAPI, describe_image, solid_image

PRO = "gemini-3-pro-image"
FLASH = "gemini-2.5-flash-image"
KEY = "AIza-test-key"
RESULT = solid_image((40, 24), (10, 120, 200), "png")


@pytest.fixture
async def api() -> AsyncIterator[FakeImageAPI]:
    fake = FakeImageAPI(api_key=KEY, auth_style="x-goog-api-key")
    fake.output_size = (40, 24)
    await fake.start()
    yield fake
    await fake.stop()


Make = Callable[..., GeminiProvider]


@pytest.fixture
def make(api: FakeImageAPI, http: httpx.AsyncClient) -> Make:
    def build(stream: bool, **kw: Any) -> GeminiProvider:
        fields: dict[str, Any] = {
            "name": "google",
            "dialect": "gemini",
            "base_url": api.root,
            "api_key": KEY,
            "auth_style": "x-goog-api-key",
            "timeout": 20.0,
            "stream": stream,
            **kw,
        }
        return GeminiProvider(Endpoint(**fields), http)

    return build


class Heard:
    """A ProgressCallback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.first = asyncio.Event()

    async def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self.first.set()

    @property
    def thoughts(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Thinking)]


async def both(api: FakeImageAPI, make: Make, model: str = PRO) -> tuple[ImageResult, ImageResult]:
    """The same answer unstreamed and streamed (the fake numbers signatures by request)."""
    request = ImageRequest(prompt="a fox at sunset", model=model)
    whole = await make(stream=False).generate(request)
    api.requests.clear()
    streamed = await make(stream=True).generate(request)
    return whole, streamed


@pytest.mark.parametrize("answer", ["image", "snake", "thinking", "text-only"])
async def test_the_streamed_result_is_the_unstreamed_one(
    api: FakeImageAPI, make: Make, answer: str
) -> None:
    api.gemini_answer, api.raw_output = answer, (RESULT, "image/png")
    whole, streamed = await both(api, make)
    assert streamed == whole
    if answer != "text-only":
        assert [i.data for i in streamed.images] == [RESULT]
    assert streamed.usage == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1300,
    }


async def test_thoughts_are_told_in_order_and_never_the_result(
    api: FakeImageAPI, make: Make
) -> None:
    api.gemini_answer = "thinking"
    heard = Heard()
    result = await make(stream=True).generate(ImageRequest(prompt="a fox", model=PRO), heard)
    assert heard.thoughts == api.thoughts
    assert heard.events == [Thinking(t) for t in api.thoughts]  # nothing else from a provider
    [image] = result.images
    assert describe_image(image.data).color == api.outputs[-1] != DRAFT_COLOR
    assert result.text is None and result.model_turn is not None
    assert "Planning" not in repr(result.model_turn)
    assert result.model_turn.parts[0].token == {"thoughtSignature": "sig-1"}  # type: ignore[union-attr]


async def test_a_thought_arrives_while_the_image_is_still_being_made(
    api: FakeImageAPI, make: Make
) -> None:
    api.gemini_answer, api.thought_delay = "thinking", 0.3
    heard = Heard()
    call = asyncio.ensure_future(
        make(stream=True).generate(ImageRequest(prompt="a fox", model=PRO), heard)
    )
    await asyncio.wait_for(heard.first.wait(), 10)
    assert not call.done() and heard.thoughts == api.thoughts[:1]
    await call
    assert heard.thoughts == api.thoughts


async def test_the_request_asks_for_thoughts_on_the_streaming_url(
    api: FakeImageAPI, make: Make
) -> None:
    await make(stream=True).generate(ImageRequest(prompt="a fox", model=PRO, image_size="2K"))
    api.auth_style = "query-key"
    await make(stream=True, auth_style="query-key").generate(ImageRequest(prompt="x", model=FLASH))
    first, second = api.requests
    assert first.path == f"/v1beta/models/{PRO}:streamGenerateContent"
    assert first.query == {"alt": "sse"} and first.headers["x-goog-api-key"] == KEY
    assert first.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert first.json["generationConfig"]["imageConfig"] == {"imageSize": "2K"}
    assert second.query == {"alt": "sse", "key": KEY}  # the key beside alt=sse, not instead
    assert "thinkingConfig" not in second.json["generationConfig"]  # 2.5 Flash does not think


async def test_unstreamed_keeps_generate_content_and_still_asks_for_thoughts(
    api: FakeImageAPI, make: Make
) -> None:
    api.gemini_answer = "thinking"
    heard = Heard()
    await make(stream=False).generate(ImageRequest(prompt="a fox", model=PRO), heard)
    [sent] = api.requests
    assert sent.path == f"/v1beta/models/{PRO}:generateContent" and sent.query == {}
    assert sent.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert heard.events == []  # without streaming, today's progress: no thought lines


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("429", K.RATE_LIMITED),
        ("quota-per-day", K.QUOTA_EXHAUSTED),
        ("404-model", K.MODEL_RETIRED),
        ("500", K.SERVER),
        ("401", K.AUTH),
        ("safety-block", K.BLOCKED),
        ("finish-IMAGE_SAFETY", K.BLOCKED),
        ("finish-NO_IMAGE", K.NO_IMAGE),
        ("malformed-json", K.BAD_RESPONSE),
        ("truncated-base64", K.BAD_RESPONSE),
        ("mid-stream", K.SERVER),
    ],
)
async def test_each_failure_is_the_error_the_unstreamed_call_gives(
    api: FakeImageAPI, make: Make, fault: str, kind: K
) -> None:
    api.gemini_answer = "thinking"
    errors = []
    for stream in (False, True):
        api.fail_next(fault)
        with pytest.raises(ProviderError) as info:
            await make(stream=stream).generate(ImageRequest(prompt="a fox", model=PRO))
        errors.append(info.value)
    whole, streamed = errors
    assert streamed.kind == whole.kind == kind
    assert (streamed.transient, streamed.retry_after) == (whole.transient, whole.retry_after)
    assert streamed.endpoint == "google" and KEY not in streamed.detail


async def test_a_stream_broken_off_after_its_thoughts_told_them_first(
    api: FakeImageAPI, make: Make
) -> None:
    api.gemini_answer = "thinking"
    api.fail_next("mid-stream")
    heard = Heard()
    provider = make(stream=True)
    with pytest.raises(ProviderError) as info:
        await provider.generate(ImageRequest(prompt="a fox", model=PRO), heard)
    assert info.value.kind == K.SERVER and heard.thoughts == api.thoughts
    result = await provider.generate(ImageRequest(prompt="again", model=PRO))  # the next works
    assert len(result.images) == 1


async def test_a_big_image_in_one_event_arrives_whole_and_frees_the_answer_lane(
    api: FakeImageAPI, make: Make
) -> None:
    api.gemini_answer, api.big_output_bytes = "thinking", 12_000_000
    heard = Heard()
    result = await make(stream=True).generate(ImageRequest(prompt="a fox", model=PRO), heard)
    assert [i.data for i in result.images] == [api.output_bytes[-1]]
    assert len(result.images[0].data) >= 12_000_000
    assert heard.thoughts == api.thoughts
    lane = http_module.answer_lane()
    assert lane._value == http_module.ANSWER_LANE_WIDTH  # every place given back


async def test_a_stream_over_the_answer_cap_is_refused(
    api: FakeImageAPI, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.big_output_bytes = 3_000_000
    # the cap a streamed answer is read under (MAX_ANSWER_BYTES), made small for the test
    monkeypatch.setattr(http_module.post_and_stream, "__kwdefaults__", {"max_bytes": 1_000_000})
    with pytest.raises(ProviderError) as info:
        await make(stream=True).generate(ImageRequest(prompt="a fox", model=PRO))
    assert info.value.kind == K.BAD_RESPONSE and "too large" in info.value.detail
