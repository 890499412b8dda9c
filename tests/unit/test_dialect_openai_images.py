"""The openai-images dialect on JSON alone: golden bodies, answers (§1C), async task states."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from bot.providers.base import Endpoint, ImageRequest, InputImage
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.openai_images import build_request, parse_response, parse_task

EP = Endpoint(name="q", dialect="openai-images", base_url="https://x/v1", api_key="k")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()
URI = f"data:image/png;base64,{B64}"
IMG = InputImage(PNG, "image/png")


def test_generation_body() -> None:
    path, body = build_request(ImageRequest(prompt="a pig", model="gemini-2.5-flash-image"), EP)
    assert (path, body) == (
        "/images/generations",
        {"model": "gemini-2.5-flash-image", "prompt": "a pig"},
    )


def test_edit_with_one_image_is_a_string_and_with_two_an_array() -> None:
    path, body = build_request(ImageRequest(prompt="p", model="m", images=[IMG]), EP)
    assert path == "/images/edits" and body["image"] == URI
    _, body = build_request(ImageRequest(prompt="p", model="m", images=[IMG, IMG], n=4), EP)
    assert body["image"] == [URI, URI] and body["n"] == 4


def test_mask_kling_ratio_and_extra_body() -> None:
    ep = Endpoint(
        name="q",
        dialect="openai-images",
        base_url="https://x",
        api_key="k",
        extra_body={"group": "default", "model": "not-this"},
    )
    _, body = build_request(
        ImageRequest(
            prompt="p", model="kling-v2", images=[IMG], mask=IMG, aspect_ratio="16:9", n=20
        ),
        ep,
    )
    assert body["mask"] == URI and body["aspect_ratio"] == "16:9" and body["n"] == 10
    assert body["group"] == "default" and body["model"] == "kling-v2"
    _, body = build_request(
        ImageRequest(prompt="p", model="gemini-2.5-flash-image", aspect_ratio="16:9"), EP
    )
    assert "aspect_ratio" not in body


def test_b64_answer_qiniu() -> None:
    answer = {
        "created": 1,
        "data": [{"b64_json": B64}, {"b64_json": B64}],
        "output_format": "png",
        "usage": {"total_tokens": 6234},
    }
    parsed = parse_response(json.dumps(answer).encode())
    assert [i.data for i in parsed.images] == [PNG, PNG] and parsed.usage == {"total_tokens": 6234}


def test_url_answer_rainboxs() -> None:
    url = "https://google.datas.systems/fileSystem/response_images/287/x.png"
    answer = {
        "created": 1758420613,
        "data": [
            {"revised_prompt": f"Draw a pig, I only want the picture.: ![image]({url})", "url": url}
        ],
    }
    parsed = parse_response(json.dumps(answer).encode())
    assert parsed.images[0].url == url
    assert parsed.text == "Draw a pig, I only want the picture.:"


def test_task_answer_and_states() -> None:
    assert parse_response(b'{"task_id": "image-1762159125266058362-1383010xxx"}').task_id
    url = "https://aitoken-image.qnaigc.com/x/0.png?e=1&token=t"
    done = {
        "task_id": "t",
        "created": 1,
        "status": "succeed",
        "status_message": "成功",
        "data": [{"index": 0, "url": url}],
        "quantity": 1,
    }
    state = parse_task(json.dumps(done).encode())
    assert state.status == "succeed" and state.images[0].url == url
    for status in ("submitted", "processing"):
        assert parse_task(json.dumps({"task_id": "t", "status": status}).encode()).images == []
    failed = parse_task(b'{"task_id":"t","status":"failed","status_message":"bad"}')
    assert failed.status == "failed" and failed.message == "bad"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{oops", K.BAD_RESPONSE),
        (b'{"error": {"message": "quota", "type": "x"}}', K.BAD_RESPONSE),
        (json.dumps({"data": [{"b64_json": B64[:-3]}]}).encode(), K.BAD_RESPONSE),
        (b'{"data": []}', K.NO_IMAGE),
    ],
)
def test_bad_answers(body: bytes, kind: K) -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind == kind
