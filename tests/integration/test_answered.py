"""Which failures come after the upstream answered 2xx (so may be billed, and are never resent
by the pool), over real HTTP against the fake relay, in every dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.base import Endpoint, ImageRequest
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.factory import provider_for
from bot.providers.urlguard import UrlPolicy, parse_allowed_hosts
from tests.fakes.image_api import FakeImageAPI

K = ProviderErrorKind
REQ = ImageRequest(prompt="a kite", model="gemini-2.5-flash-image")


@pytest.fixture
async def api() -> AsyncIterator[FakeImageAPI]:
    fake = FakeImageAPI()
    fake.output_size = (16, 16)
    await fake.start()
    yield fake
    await fake.stop()


def _provider(api: FakeImageAPI, http: httpx.AsyncClient, dialect: str):  # type: ignore[no-untyped-def]
    base = api.root if dialect == "gemini" else api.openai_base
    endpoint = Endpoint(
        name="fake",
        dialect=dialect,
        base_url=base,
        api_key="sk-test",  # type: ignore[arg-type]
        timeout=10.0,
    )
    policy = UrlPolicy(allowed_hosts=parse_allowed_hosts("127.0.0.1"))
    return provider_for(endpoint, http, policy)


@pytest.mark.parametrize(
    ("dialect", "fault", "kind"),
    [
        ("openai-chat", "200-error-500", K.SERVER),
        ("openai-chat", "no-content", K.NO_IMAGE),
        ("openai-chat", "malformed-json", K.BAD_RESPONSE),
        ("gemini", "200-error-500", K.SERVER),
        ("gemini", "finish-NO_IMAGE", K.NO_IMAGE),
        ("openai-images", "200-error-500", K.SERVER),
    ],
)
async def test_a_failure_after_a_200_is_marked_answered(
    api: FakeImageAPI, http: httpx.AsyncClient, dialect: str, fault: str, kind: K
) -> None:
    api.fail_next(fault)
    with pytest.raises(ProviderError) as info:
        await _provider(api, http, dialect).generate(REQ)
    assert info.value.kind is kind and info.value.answered


@pytest.mark.parametrize("dialect", ["openai-chat", "gemini", "openai-images"])
@pytest.mark.parametrize("fault", ["500", "429", "new-api-empty", "401"])
async def test_a_failure_before_any_2xx_is_not(
    api: FakeImageAPI, http: httpx.AsyncClient, dialect: str, fault: str
) -> None:
    api.fail_next(fault)
    with pytest.raises(ProviderError) as info:
        await _provider(api, http, dialect).generate(REQ)
    assert not info.value.answered


async def test_an_image_link_that_will_not_download_is_answered(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.answer_shape = "markdown-url"
    api.url_ttl = -1.0  # every link has expired by the time it is fetched
    with pytest.raises(ProviderError) as info:
        await _provider(api, http, "openai-chat").generate(REQ)
    assert info.value.answered


async def test_a_task_whose_polls_fail_is_answered(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    api.images_answer = "task"
    api.fail_next_poll("401")
    with pytest.raises(ProviderError) as info:
        await _provider(api, http, "openai-images").generate(
            ImageRequest(prompt="a kite", model="kling-v2")
        )
    assert info.value.answered


async def test_a_stream_that_breaks_off_after_its_200_is_answered(
    api: FakeImageAPI, http: httpx.AsyncClient
) -> None:
    endpoint = Endpoint(
        name="fake",
        dialect="gemini",
        base_url=api.root,
        api_key="sk-test",
        timeout=10.0,
        stream=True,
    )
    api.fail_next("mid-stream")
    with pytest.raises(ProviderError) as info:
        await provider_for(endpoint, http).generate(
            ImageRequest(prompt="a kite", model="gemini-3-pro-image")
        )
    assert info.value.answered and "streamGenerateContent" in api.requests[0].path


async def test_a_streamed_error_status_is_not(api: FakeImageAPI, http: httpx.AsyncClient) -> None:
    endpoint = Endpoint(
        name="fake",
        dialect="gemini",
        base_url=api.root,
        api_key="sk-test",
        timeout=10.0,
        stream=True,
    )
    api.fail_next("429")
    with pytest.raises(ProviderError) as info:
        await provider_for(endpoint, http).generate(REQ)
    assert info.value.kind is K.RATE_LIMITED and not info.value.answered
