"""OpenAIImagesProvider over real HTTP against the fake relay's /v1/images routes."""

from __future__ import annotations

import io
import socket
from base64 import b64encode
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.providers.base import (
    Endpoint,
    ImageRequest,
    ImageResult,
    InputImage,
    ProgressEvent,
    TaskPolling,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.openai_images import POLL_ATTEMPTS, OpenAIImagesProvider
from bot.providers.urlguard import UrlPolicy, parse_allowed_hosts
from tests.fakes.image_api import FakeImageAPI

K = ProviderErrorKind
MODEL = "gemini-2.5-flash-image"
SMALL = (48, 32)


@pytest.fixture
async def api() -> AsyncIterator[FakeImageAPI]:
    fake = FakeImageAPI(api_key="sk-qiniu")
    fake.output_size = SMALL
    await fake.start()
    yield fake
    await fake.stop()


Make = Callable[..., OpenAIImagesProvider]


@pytest.fixture
def make(api: FakeImageAPI, http: httpx.AsyncClient) -> Make:
    def build(**kw: Any) -> OpenAIImagesProvider:
        names = ("max_download_bytes", "poll_interval", "max_task_wait", "url_policy")
        options = {k: kw.pop(k) for k in names if k in kw}
        options.setdefault("poll_interval", 0.01)
        fields: dict[str, Any] = {
            "name": "qiniu",
            "dialect": "openai-images",
            "base_url": api.openai_base,
            "api_key": "sk-qiniu",
            "timeout": 10.0,
            **kw,
        }
        return OpenAIImagesProvider(Endpoint(**fields), http, **options)

    return build


def png(color: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def colors(result: ImageResult) -> list[tuple[int, int, int]]:
    found = []
    for image in result.images:
        with Image.open(io.BytesIO(image.data)) as im:
            assert im.size == SMALL
            found.append(im.convert("RGB").getpixel((0, 0)))
    return found  # type: ignore[return-value]


async def failure(provider: OpenAIImagesProvider, **kw: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await provider.generate(ImageRequest(**{"prompt": "画一只猪", "model": MODEL, **kw}))
    return info.value


class Notes:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[ProgressEvent] = []
        self.fail = fail

    @property
    def codes(self) -> list[str]:
        return [e.status for e in self.events if isinstance(e, TaskPolling)]

    async def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("telegram is down")


# --- synchronous answers ----------------------------------------------------------------------


async def test_generation(api: FakeImageAPI, make: Make) -> None:
    result = await make().generate(ImageRequest(prompt="画一只猪", model=MODEL))
    assert colors(result) == api.outputs == [api.outputs[0]]
    assert [i.data for i in result.images] == api.output_bytes
    assert (result.endpoint, result.model, result.text) == ("qiniu", MODEL, None)
    assert result.usage is not None and result.usage["output_tokens"] == 1290
    [sent] = api.requests
    assert sent.path == "/v1/images/generations"
    assert sent.json == {"model": MODEL, "prompt": "画一只猪"}
    assert sent.headers["authorization"] == "Bearer sk-qiniu"
    assert sent.headers["content-type"] == "application/json"


async def test_edit_carries_the_input_pixels(api: FakeImageAPI, make: Make) -> None:
    red = InputImage(png((200, 30, 30)), "image/png")
    await make().generate(ImageRequest(prompt="make it blue", model=MODEL, images=[red]))
    [sent] = api.requests
    assert sent.path == "/v1/images/edits" and isinstance(sent.json["image"], str)
    assert [i.color for i in sent.input_images] == [(200, 30, 30)]


async def test_composition_sends_every_image_in_order(api: FakeImageAPI, make: Make) -> None:
    images = [InputImage(png(c), "image/png") for c in ((10, 200, 10), (10, 10, 200))]
    await make().generate(ImageRequest(prompt="put them together", model=MODEL, images=images))
    assert [i.color for i in api.requests[0].input_images] == [(10, 200, 10), (10, 10, 200)]
    assert len(api.requests[0].json["image"]) == 2


async def test_n_images(api: FakeImageAPI, make: Make) -> None:
    result = await make().generate(ImageRequest(prompt="p", model=MODEL, n=3))
    assert api.requests[0].json["n"] == 3
    assert colors(result) == api.outputs and len(set(api.outputs)) == 3


async def test_url_answer_is_downloaded_with_the_revised_prompt(
    api: FakeImageAPI, make: Make
) -> None:
    api.images_answer = "url"
    api.auth_style = "raw"  # Rainboxs: the key without "Bearer"
    result = await make(auth_style="raw").generate(ImageRequest(prompt="画一只猪", model=MODEL))
    assert colors(result) == api.outputs
    assert result.text == "画一只猪:"  # the markdown link is gone
    assert api.requests[0].headers["authorization"] == "sk-qiniu"


async def test_expired_url_is_a_bad_response(api: FakeImageAPI, make: Make) -> None:
    api.images_answer, api.url_ttl = "url", -1.0
    err = await failure(make())
    assert err.kind is K.BAD_RESPONSE and "expired" in err.detail


async def test_unreachable_image_link_is_maybe_charged(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image was made (and billed); a link that cannot be fetched, even twice, must not
    look safe to resend."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/files/x.png"

    async def answer_with_dead_link(self: FakeImageAPI, body: Any, failure: Any) -> web.Response:
        return web.json_response({"data": [{"url": dead}]})

    monkeypatch.setattr("bot.providers.http.DOWNLOAD_RETRY_PAUSE", 0.0)
    monkeypatch.setattr(FakeImageAPI, "_images_answer", answer_with_dead_link)
    # the operator allowed that host: it is not refused, it just never answers
    allowed = UrlPolicy(allowed_hosts=parse_allowed_hosts(f"127.0.0.1:{port}"))
    err = await failure(make(url_policy=allowed))
    assert err.kind is K.TIMEOUT and "image already made" in err.detail


# --- async tasks ------------------------------------------------------------------------------


async def test_task_is_polled_until_it_succeeds(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    notes = Notes()
    result = await make().generate(ImageRequest(prompt="漫画", model="kling-v2", n=2), notes)
    assert notes.codes == ["submitted", "processing", "succeed"]
    assert colors(result) == api.outputs and len(api.outputs) == 2
    task_id = api.requests[1].path.rsplit("/", 1)[1]
    assert [r.path for r in api.requests] == ["/v1/images/generations"] + [
        f"/v1/images/tasks/{task_id}"
    ] * 3
    assert all(r.headers["authorization"] == "Bearer sk-qiniu" for r in api.requests)


async def test_task_polls_carry_query_key_auth(api: FakeImageAPI, make: Make) -> None:
    api.images_answer, api.auth_style, api.task_steps = "task", "query-key", 1
    await make(auth_style="query-key").generate(ImageRequest(prompt="p", model="kling-v2"))
    assert [r.query.get("key") for r in api.requests] == ["sk-qiniu"] * 3


async def test_failed_task_is_not_retried(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next("task-failed")
    notes = Notes()
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="p", model="kling-v2"), notes)
    err = info.value
    assert (err.kind, err.reason, err.endpoint) == (K.BLOCKED, "task_failed", "qiniu")
    assert "图片内容审核未通过" in err.detail and not err.transient
    assert notes.codes[-1] == "failed" and api.outputs == []


async def test_task_that_never_finishes_times_out(api: FakeImageAPI, make: Make) -> None:
    api.images_answer, api.task_steps = "task", 10**6
    notes = Notes()
    with pytest.raises(ProviderError) as info:
        await make(max_task_wait=0.3, poll_interval=0.05).generate(
            ImageRequest(prompt="p", model="kling-v2"), notes
        )
    assert info.value.kind is K.TIMEOUT and "still running after 0.3 s" in info.value.detail
    assert notes.codes == ["submitted", "processing"]
    assert 4 <= len(api.requests) <= 10


async def test_transient_poll_failures_are_polled_again(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next_poll("500")
    api.fail_next_poll("503-html")
    api.fail_next_poll("429", retry_after=0)
    result = await make().generate(ImageRequest(prompt="p", model="kling-v2"))
    assert len(result.images) == 1
    assert sum(r.path.startswith("/v1/images/tasks/") for r in api.requests) == 6
    assert len([r for r in api.requests if r.path == "/v1/images/generations"]) == 1


async def test_persistent_poll_failures_are_maybe_charged(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next_poll("500", times=POLL_ATTEMPTS)
    err = await failure(make(), model="kling-v2")
    assert err.kind is K.TIMEOUT and f"after {POLL_ATTEMPTS} polls" in err.detail
    assert err.endpoint == "qiniu"


async def test_hanging_poll_is_bounded_by_the_task_wait(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next_poll("hang", seconds=30)
    err = await failure(make(max_task_wait=0.5), model="kling-v2")
    assert err.kind is K.TIMEOUT


async def test_poll_with_a_revoked_key_is_an_auth_fault(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next_poll("401")
    assert (await failure(make(), model="kling-v2")).kind is K.AUTH


async def test_garbled_poll_answer_is_a_bad_response(api: FakeImageAPI, make: Make) -> None:
    api.images_answer = "task"
    api.fail_next_poll("malformed-json")
    assert (await failure(make(), model="kling-v2")).kind is K.BAD_RESPONSE


async def test_a_failing_progress_callback_does_not_lose_the_task(
    api: FakeImageAPI, make: Make
) -> None:
    api.images_answer = "task"
    notes = Notes(fail=True)
    result = await make().generate(ImageRequest(prompt="p", model="kling-v2"), notes)
    assert len(result.images) == 1 and len(notes.events) == 3


async def test_task_progress_reports_each_new_percent_once() -> None:
    done = {"status": "succeed", "data": [{"b64_json": b64encode(png((1, 2, 3))).decode()}]}
    polls = iter(
        [
            {"status": "processing", "progress": "10%"},
            {"status": "processing", "progress": "10%"},
            {"status": "processing", "progress": 60},
            done,
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"task_id": "image-1"})
        return httpx.Response(200, json={"task_id": "image-1", **next(polls)})

    notes = Notes()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        ep = Endpoint(name="m", dialect="openai-images", base_url="https://m/v1", api_key="k")
        provider = OpenAIImagesProvider(ep, mock, poll_interval=0)
        await provider.generate(ImageRequest(prompt="p", model="kling-v2"), notes)
    assert notes.events == [
        TaskPolling("processing", 10),
        TaskPolling("processing", 60),
        TaskPolling("succeed", None),
    ]


async def test_task_succeeding_without_images_is_no_image(http: httpx.AsyncClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"task_id": "image-1"})
        return httpx.Response(200, json={"task_id": "image-1", "status": "succeed", "data": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        ep = Endpoint(name="m", dialect="openai-images", base_url="https://m/v1", api_key="k")
        err = await failure(OpenAIImagesProvider(ep, mock, poll_interval=0), model="kling-v2")
    assert err.kind is K.NO_IMAGE


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("500", K.SERVER),
        ("503-html", K.SERVER),
        ("429", K.RATE_LIMITED),
        ("malformed-json", K.BAD_RESPONSE),
        ("truncated-base64", K.BAD_RESPONSE),
        ("401", K.AUTH),
        ("400", K.BAD_REQUEST),
        ("404-model", K.MODEL_RETIRED),
        ("quota-per-day", K.QUOTA_EXHAUSTED),
        ("safety-block", K.NO_IMAGE),  # a Gemini-shaped 200 has no data[]
    ],
)
async def test_fault_kinds(api: FakeImageAPI, make: Make, fault: str, kind: K) -> None:
    api.fail_next(fault, retry_after=2)
    err = await failure(make())
    assert err.kind is kind and err.endpoint == "qiniu"
    assert "sk-qiniu" not in err.detail
    if fault == "429":
        assert err.retry_after == 2.0


async def test_hang_is_a_timeout(api: FakeImageAPI, make: Make) -> None:
    api.fail_next("hang", seconds=30)
    assert (await failure(make(timeout=0.3))).kind is K.TIMEOUT


async def test_truncated_base64_in_an_edit_answer(api: FakeImageAPI, make: Make) -> None:
    api.fail_next("truncated-base64")
    image = InputImage(png((1, 2, 3)), "image/png")
    err = await failure(make(), images=[image], n=2)
    assert err.kind is K.BAD_RESPONSE


async def test_content_policy_rejection_is_final(api: FakeImageAPI, make: Make) -> None:
    api.fail_next("content-filter")
    err = await failure(make())
    assert err.reason == "content_policy_violation" and not err.transient


async def test_wrong_key(api: FakeImageAPI, make: Make) -> None:
    err = await failure(make(api_key="sk-wrong"))
    assert (err.kind, err.status) == (K.AUTH, 401) and "sk-wrong" not in err.detail


async def test_failures_are_used_up_in_order(api: FakeImageAPI, make: Make) -> None:
    api.fail_next("500", times=2)
    provider = make()
    for _ in range(2):
        assert (await failure(provider)).kind is K.SERVER
    assert len((await provider.generate(ImageRequest(prompt="p", model=MODEL))).images) == 1
