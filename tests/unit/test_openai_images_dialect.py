"""The openai-images dialect on JSON alone (PROTOCOLS.md §1C): golden request bodies, every
answer shape of S2 (Qiniu) and S4 (Rainboxs), kling task states from S2's literal example."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from bot.providers.base import Endpoint, ImageRequest, InputImage
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.openai_images import (
    TaskState,
    build_request,
    parse_response,
    parse_task,
    task_failure,
    task_status,
)
from bot.providers.profiles import ProfileOverride

EP = Endpoint(name="q", dialect="openai-images", base_url="https://api.qnaigc.com/v1", api_key="k")
MODEL = "gemini-2.5-flash-image"


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


RED, BLUE = _png((255, 0, 0)), _png((0, 0, 255))
JPEG = _jpeg()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def req(**kw: Any) -> ImageRequest:
    return ImageRequest(**{"prompt": "画一只猪", "model": MODEL, **kw})


def parse(answer: Any) -> Any:
    return parse_response(json.dumps(answer, ensure_ascii=False).encode())


def failure_of(body: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    return info.value


# --- requests ---------------------------------------------------------------------------------


def test_generation_body() -> None:
    path, body = build_request(req(), EP)
    assert (path, body) == ("/images/generations", {"model": MODEL, "prompt": "画一只猪"})


def test_edit_with_one_image_sends_a_string() -> None:
    path, body = build_request(req(images=[InputImage(JPEG, "image/jpeg")]), EP)
    assert path == "/images/edits"
    assert body == {"model": MODEL, "prompt": "画一只猪", "image": uri(JPEG, "image/jpeg")}


def test_composition_with_two_images_sends_an_array_in_order() -> None:
    images = [InputImage(RED, "image/png"), InputImage(BLUE, "image/png")]
    path, body = build_request(req(images=images), EP)
    assert path == "/images/edits" and body["image"] == [uri(RED), uri(BLUE)]


@pytest.mark.parametrize(("n", "sent"), [(1, None), (0, None), (4, 4), (10, 10), (25, 10)])
def test_n_is_sent_only_above_one_and_clamped_to_ten(n: int, sent: int | None) -> None:
    _, body = build_request(req(n=n), EP)
    assert body.get("n") == sent


def test_n_is_not_sent_for_a_model_whose_profile_takes_none() -> None:
    _, body = build_request(req(model="acme-imagine-7", n=4), EP)
    assert "n" not in body
    no_n = Endpoint(
        name="r",
        dialect="openai-images",
        base_url="https://r/v1",
        api_key="k",
        profile=ProfileOverride(supports_n=False),
    )
    _, body = build_request(req(n=4), no_n)
    assert "n" not in body


def test_aspect_ratio_only_for_kling_models_and_size_never() -> None:
    _, body = build_request(req(model="kling-v2", aspect_ratio="9:16", image_size="2K"), EP)
    assert body == {"model": "kling-v2", "prompt": "画一只猪", "aspect_ratio": "9:16"}
    _, body = build_request(req(aspect_ratio="9:16", image_size="2K"), EP)
    assert body == {"model": MODEL, "prompt": "画一只猪"}


def test_extra_body_is_merged_but_cannot_replace_the_request() -> None:
    extra = {"group": "default", "model": "x", "prompt": "x", "image": "x", "mask": "x", "n": 9}
    ep = Endpoint(
        name="r", dialect="openai-images", base_url="https://r/v1", api_key="k", extra_body=extra
    )
    _, body = build_request(req(images=[InputImage(RED, "image/png")]), ep)
    assert body == {"group": "default", "model": MODEL, "prompt": "画一只猪", "image": uri(RED)}
    assert ep.extra_body["model"] == "x"  # the endpoint's own dict is not changed


# --- answers ----------------------------------------------------------------------------------


def test_qiniu_b64_json_list_with_usage() -> None:
    usage = {
        "total_tokens": 6234,
        "input_tokens": 1234,
        "output_tokens": 5000,
        "input_tokens_details": {"text_tokens": 234, "image_tokens": 1000},
    }
    data = [{"b64_json": b64(RED)}, {"b64_json": b64(BLUE)}]
    parsed = parse({"created": 1234567890, "data": data, "output_format": "png", "usage": usage})
    assert [(i.data, i.mime) for i in parsed.images] == [(RED, "image/png"), (BLUE, "image/png")]
    assert parsed.usage == usage and parsed.text is None and parsed.task_id is None


def test_b64_json_of_any_image_type_and_data_uris_in_it() -> None:
    parsed = parse({"data": [{"b64_json": b64(JPEG)}, {"b64_json": uri(RED)}]})
    assert [(i.data, i.mime) for i in parsed.images] == [(JPEG, "image/jpeg"), (RED, "image/png")]


def test_rainboxs_url_answer_literal_s4_example() -> None:
    url = (
        "https://google.datas.systems/fileSystem/response_images/287/2025/09/21/"
        "1758420613207028663_155.png"
    )
    answer = {
        "created": 1758420613,
        "data": [
            {
                "revised_prompt": "Draw a pig, I only want the picture, no other information.: "
                f"![image]({url})",
                "url": url,
            }
        ],
        "usage": {
            "total_tokens": 4189,
            "input_tokens": 14,
            "output_tokens": 4175,
            "input_tokens_details": {"text_tokens": 14},
        },
    }
    parsed = parse(answer)
    assert [(i.url, i.data) for i in parsed.images] == [(url, None)]
    assert parsed.text == "Draw a pig, I only want the picture, no other information.:"
    assert parsed.usage is not None and parsed.usage["total_tokens"] == 4189


def test_revised_prompt_alone_is_the_models_words() -> None:
    parsed = parse({"data": [{"revised_prompt": "I can't draw that, but here is an idea."}]})
    assert parsed.images == [] and parsed.text == "I can't draw that, but here is an idea."


def test_b64_json_wins_over_url_in_one_item() -> None:
    parsed = parse({"data": [{"b64_json": b64(RED), "url": "https://x/y.png"}]})
    assert parsed.images[0].data == RED and parsed.images[0].url is None


def test_kling_task_answer_literal_s2_example() -> None:
    parsed = parse({"task_id": "image-1762159125266058362-1383010xxx"})
    assert parsed.task_id == "image-1762159125266058362-1383010xxx" and parsed.images == []


@pytest.mark.parametrize(
    "answer",
    [{"data": []}, {"data": [{"index": 0}]}, {"created": 1}, {"data": "nope"}, {"data": [1, "x"]}],
)
def test_answers_without_images_or_words_are_no_image(answer: Any) -> None:
    assert failure_of(json.dumps(answer).encode()).kind is K.NO_IMAGE


def test_error_object_in_a_200_with_an_http_code_is_classified_by_it() -> None:
    body = b'{"error":{"code":429,"message":"rate limited","type":"rate_limit"}}'
    err = failure_of(body)
    assert (err.kind, err.status) == (K.RATE_LIMITED, 429)


def test_error_object_in_a_200_without_a_status_is_a_bad_response_with_its_code() -> None:
    err = failure_of(b'{"error":{"message":"quota gone","type":"new_api_error","code":"x_y"}}')
    assert (err.kind, err.reason) == (K.BAD_RESPONSE, "x_y") and "quota gone" in err.detail
    assert failure_of(b'{"error":"something broke"}').kind is K.BAD_RESPONSE


@pytest.mark.parametrize(
    "body",
    [
        b"{oops",
        b"",
        b"<html>502</html>",
        b"[1,2]",
        b'"text"',
        b"\xff\xfe{}",
        b'{"created":1758420613,"data":[{"b64_json":"iVBORw0KGgoAAAANSUhEU',
    ],
)
def test_malformed_answers_are_bad_responses(body: bytes) -> None:
    assert failure_of(body).kind is K.BAD_RESPONSE


@pytest.mark.parametrize("cut", [1, 5, 9])  # leaves 4k+1 base64 chars: cannot be decoded
def test_truncated_base64_is_a_bad_response(cut: int) -> None:
    payload = b64(RED)
    payload = payload.rstrip("=")[: (len(payload) - 12) // 4 * 4 + cut]
    assert len(payload) % 4 == 1
    err = failure_of(json.dumps({"data": [{"b64_json": payload}]}).encode())
    assert err.kind is K.BAD_RESPONSE and "base64" in err.detail


def test_non_base64_b64_json_is_a_bad_response() -> None:
    err = failure_of(b'{"data":[{"b64_json":"iVBORw0KGgoAAAANSUhEUgA..."}]}')  # S2's placeholder
    assert err.kind is K.BAD_RESPONSE


# --- tasks ------------------------------------------------------------------------------------

TASK_URL = (
    "https://aitoken-image.qnaigc.com/1383010xxx/image-1761793032508597404-1383010xxx/"
    "0.png?e=1763089082&token=IDB69r4gicDbMfrecarthgw1btTTWEFNg9i5_yasXqhp:"
    "JapC2EihLvSADMficht3pZVn5Xc="
)
S2_TASK_DONE = f"""{{
"task_id": "image-1762159125266058362-1383010xxx",
"created": 1761793032,
"status": "succeed",
"status_message": "成功",
"data": [
{{
"index": 0,
"url": "{TASK_URL}"
}}
],
"quantity": 1
}}""".encode()


def test_task_succeed_literal_s2_example() -> None:
    state = parse_task(S2_TASK_DONE)
    assert state.status == "succeed" and state.message == "成功"
    assert [i.url for i in state.images] == [TASK_URL]


@pytest.mark.parametrize("status", ["submitted", "processing"])
def test_task_still_running(status: str) -> None:
    body = {"task_id": "image-1", "created": 1761793032, "status": status, "status_message": ""}
    assert parse_task(json.dumps(body).encode()) == TaskState(status)  # type: ignore[arg-type]


def test_task_failed_keeps_the_status_message() -> None:
    state = parse_task(
        '{"task_id":"t","status":"failed","status_message":"图片内容审核未通过"}'.encode()
    )
    assert (state.status, state.images, state.message) == ("failed", [], "图片内容审核未通过")


@pytest.mark.parametrize(
    ("progress", "percent"),
    [
        (40, 40),
        ("75%", 75),
        (" 5 % ", 5),
        (99.5, 99),
        (None, None),
        ("half", None),
        (150, None),
        (True, None),
        (-1, None),
    ],
)
def test_a_task_progress_percent_is_read_when_the_relay_sends_one(
    progress: object, percent: int | None
) -> None:
    body = {"task_id": "t", "status": "processing", "progress": progress}
    assert parse_task(json.dumps(body).encode()).percent == percent


def test_images_are_only_taken_from_a_succeeded_task() -> None:
    body = {"status": "processing", "data": [{"url": TASK_URL}]}
    assert parse_task(json.dumps(body).encode()).images == []


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("SUCCEED", "succeed"),
        ("success", "succeed"),
        ("completed", "succeed"),
        ("queued", "submitted"),
        ("pending", "submitted"),
        ("running", "processing"),
        ("error", "failed"),
        ("cancelled", "failed"),
        ("", "processing"),
        (None, "processing"),
        ("something-new", "processing"),
    ],
)
def test_task_status_synonyms(word: str | None, status: str) -> None:
    assert task_status(word) == status


def test_task_poll_errors_and_garbage() -> None:
    with pytest.raises(ProviderError) as info:
        parse_task(b'{"error":{"code":500,"message":"internal"}}')
    assert info.value.kind is K.SERVER
    with pytest.raises(ProviderError) as info:
        parse_task(b"{nope")
    assert info.value.kind is K.BAD_RESPONSE


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("图片内容审核未通过", K.BLOCKED),
        ("Prompt flagged by moderation", K.BLOCKED),
        ("图片宽高尺寸不小于300px", K.BAD_REQUEST),
        ("invalid aspect_ratio", K.BAD_REQUEST),
        ("内部错误", K.NO_IMAGE),
        (None, K.NO_IMAGE),
    ],
)
def test_failed_task_errors(message: str | None, kind: K) -> None:
    err = task_failure(TaskState("failed", [], message))
    assert (err.kind, err.reason, err.transient) == (kind, "task_failed", False)
    assert (message or "no reason given") in err.detail
