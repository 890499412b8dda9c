"""The openai-chat dialect on JSON alone: golden request bodies and every answer shape of §1B."""

from __future__ import annotations

import base64

import pytest

from bot.providers import base
from bot.providers.base import Endpoint, ImageRef, ImageRequest, InputImage, Turn
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.openai_chat import build_request, parse_response
from bot.providers.profiles import ProfileOverride

MODEL = "gemini-2.5-flash-image"
# A real 1x1 red PNG.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PNG = base64.b64decode(PNG_B64)
S4_URL = (
    "https://google.datas.systems/fileSystem/response_images/287/2025/09/22/"
    "1758541477487536718_6102.png"
)


def endpoint(**kw: object) -> Endpoint:
    return Endpoint(
        name="relay", dialect="openai-chat", base_url="https://r/v1", api_key="sk-x", **kw
    )  # type: ignore[arg-type]


def request(**kw: object) -> ImageRequest:
    return ImageRequest(prompt=kw.pop("prompt", "画一条狗"), model=MODEL, **kw)  # type: ignore[arg-type]


ONE = InputImage(data=b"img-one", mime="image/png")
TWO = InputImage(data=b"img-two", mime="image/jpeg")


# --- build_request ------------------------------------------------------------------------


def test_text_only_request_has_string_content() -> None:
    assert build_request(request(), endpoint()) == {
        "model": "gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": "画一条狗"}],
        "stream": False,
    }


def test_edit_with_one_image_puts_text_first_then_a_data_uri() -> None:
    body = build_request(request(prompt="将这只狗的颜色改为绿色", images=[ONE]), endpoint())
    assert body == {
        "model": "gemini-2.5-flash-image",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "将这只狗的颜色改为绿色"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,aW1nLW9uZQ=="},
                    },
                ],
            }
        ],
        "stream": False,
    }


def test_composition_has_one_image_url_part_per_image_in_order() -> None:
    body = build_request(request(prompt="让这两只狗面对面", images=[ONE, TWO]), endpoint())
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "让这两只狗面对面"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,aW1nLW9uZQ=="}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,aW1nLXR3bw=="}},
            ],
        }
    ]


def test_aspect_ratio_and_size_go_in_extra_body_google_image_config() -> None:
    pro = "gemini-3-pro-image-preview"
    req = ImageRequest(prompt="画一条狗", model=pro, aspect_ratio="16:9", image_size="2K")
    body = build_request(req, endpoint())
    assert body == {
        "model": pro,
        "messages": [{"role": "user", "content": "画一条狗"}],
        "stream": False,
        "extra_body": {"google": {"image_config": {"aspect_ratio": "16:9", "image_size": "2K"}}},
    }


def test_a_size_goes_only_where_the_models_profile_takes_one() -> None:
    body = build_request(request(aspect_ratio="16:9", image_size="2K"), endpoint())
    assert body["extra_body"] == {"google": {"image_config": {"aspect_ratio": "16:9"}}}
    relay = endpoint(profile=ProfileOverride(image_sizes=("2K",)))
    body = build_request(request(image_size="2K"), relay)
    assert body["extra_body"] == {"google": {"image_config": {"image_size": "2K"}}}


def test_aspect_ratio_alone() -> None:
    body = build_request(request(aspect_ratio="3:4"), endpoint())
    assert body["extra_body"] == {"google": {"image_config": {"aspect_ratio": "3:4"}}}


def test_extra_body_group_is_merged_at_top_level_like_seed_004() -> None:
    body = build_request(request(), endpoint(extra_body={"group": "default"}))
    assert body == {
        "model": "gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": "画一条狗"}],
        "group": "default",
        "stream": False,
    }


def test_extra_body_is_deep_merged_with_the_image_config_and_not_mutated() -> None:
    extra = {"group": "default", "extra_body": {"google": {"safety": "off"}}}
    ep = endpoint(extra_body=extra)
    body = build_request(request(aspect_ratio="1:1"), ep)
    assert body["group"] == "default"
    assert body["extra_body"] == {
        "google": {"safety": "off", "image_config": {"aspect_ratio": "1:1"}}
    }
    assert extra == {"group": "default", "extra_body": {"google": {"safety": "off"}}}


# --- OpenRouter (openrouter.ai/docs/guides/overview/multimodal/image-generation) -----------


def test_openrouter_golden_request_has_modalities_and_a_top_level_image_config() -> None:
    ep = endpoint(extra_body={"modalities": ["image", "text"]})
    body = build_request(
        ImageRequest(
            prompt="a fox", model="gemini-3-pro-image-preview", aspect_ratio="16:9", image_size="2K"
        ),
        ep,
    )
    assert body == {
        "model": "gemini-3-pro-image-preview",
        "modalities": ["image", "text"],
        "image_config": {"aspect_ratio": "16:9", "image_size": "2K"},
        "messages": [{"role": "user", "content": "a fox"}],
        "stream": False,
    }


def test_openrouter_host_alone_asks_for_images_and_has_no_google_extra_body() -> None:
    ep = Endpoint(
        name="or", dialect="openai-chat", base_url="https://openrouter.ai/api/v1", api_key="sk-or-x"
    )
    body = build_request(request(aspect_ratio="3:4"), ep)
    assert body["modalities"] == ["image", "text"]
    assert body["image_config"] == {"aspect_ratio": "3:4"}
    assert "extra_body" not in body


def test_openrouter_without_ratio_or_size_sends_no_image_config() -> None:
    body = build_request(request(), endpoint(extra_body={"modalities": ["image", "text"]}))
    assert body["modalities"] == ["image", "text"] and "image_config" not in body


def test_an_endpoints_own_modalities_win() -> None:
    body = build_request(request(), endpoint(extra_body={"modalities": ["image"]}))
    assert body["modalities"] == ["image"]


def test_openrouter_golden_answer_images_field_and_reasoning_are_read() -> None:
    body = (
        '{"id":"gen-1","provider":"Google","model":"google/gemini-3-pro-image",'
        '"object":"chat.completion","choices":[{"logprobs":null,"finish_reason":"stop",'
        '"native_finish_reason":"STOP","index":0,"message":{"role":"assistant",'
        '"content":"Here is a fox.","refusal":null,"reasoning":"**Planning** a fox",'
        '"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,'
        + PNG_B64
        + '"},"index":0},{"type":"image_url","image_url":{"url":"data:image/png;base64,'
        + PNG_B64
        + '"},"index":1}]}}],"usage":{"prompt_tokens":5,"completion_tokens":1290}}'
    ).encode()
    parsed = parse_response(body)
    assert [r.data for r in parsed.images] == [PNG, PNG]
    assert parsed.text == "Here is a fox."


def test_extra_body_cannot_override_model_messages_or_stream() -> None:
    body = build_request(request(), endpoint(extra_body={"stream": True, "model": "other"}))
    assert body["stream"] is False
    assert body["model"] == MODEL


def test_n_is_left_out_because_chat_cannot_ask_for_several_images() -> None:
    assert "n" not in build_request(request(n=3), endpoint())


def test_history_turns_become_earlier_messages() -> None:
    history = [
        Turn(role="user", parts=[base.TextPart("draw a cat")]),
        Turn(
            role="model",
            parts=[
                base.TextPart("here", {"thoughtSignature": "gemini's own"}),
                base.ImagePart("image/png", data=PNG),
                base.TokenPart({"functionCall": {"name": "x"}}),
            ],
        ),
    ]
    body = build_request(request(prompt="now blue", history=history), endpoint())
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "draw a cat"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "here"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            ],
        },
        {"role": "user", "content": "now blue"},
    ]


def test_a_history_picture_without_its_bytes_is_not_sent() -> None:
    history = [Turn(role="model", parts=[base.ImagePart("image/png", sha256="ab" * 32)])]
    with pytest.raises(ValueError, match="no bytes"):
        build_request(request(history=history), endpoint())


# --- parse_response: answers with images ----------------------------------------------------


def answer(message: str, finish: str = "stop", usage: str = "") -> bytes:
    """A whole chat.completion answer as the relays print it; `$PNG`/`$URL` are filled in."""
    usage = usage or '{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}'
    message = message.replace("$PNG", PNG_B64).replace("$URL", S4_URL)
    return (
        '{"id":"gemini-1704067200000","object":"chat.completion","created":1704067200,'
        '"model":"gemini-2.5-flash-image","choices":[{"index":0,"finish_reason":"'
        + finish
        + '","message":'
        + message
        + '}],"usage":'
        + usage
        + "}"
    ).encode()


def test_markdown_data_uri_after_leading_text_s0() -> None:
    body = answer(
        '{"role":"assistant","content":"这是修改后的图片:![image](data:image/png;base64,$PNG)"}'
    )
    parsed = parse_response(body)
    assert parsed.images == [ImageRef(data=PNG, mime="image/png")]
    assert parsed.images[0].data == PNG
    assert parsed.text == "这是修改后的图片:"
    assert parsed.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_markdown_url_s4() -> None:
    body = answer(
        '{"role":"assistant","content":"![image]($URL)"}',
        usage='{"prompt_tokens":107,"completion_tokens":35,"total_tokens":142,'
        '"prompt_tokens_details":{"text_tokens":100}}',
    )
    parsed = parse_response(body)
    assert parsed.images == [ImageRef(url=S4_URL)]
    assert parsed.text is None
    assert parsed.usage is not None and parsed.usage["total_tokens"] == 142


def test_message_images_field_openrouter() -> None:
    body = answer(
        '{"role":"assistant","content":"Here is your picture.","images":[{"type":"image_url",'
        '"image_url":{"url":"data:image/png;base64,$PNG"}}]}'
    )
    parsed = parse_response(body)
    assert [i.data for i in parsed.images] == [PNG]
    assert parsed.text == "Here is your picture."


def test_content_array_with_image_url_part() -> None:
    body = answer(
        '{"role":"assistant","content":[{"type":"text","text":"好的"},{"type":"image_url",'
        '"image_url":{"url":"data:image/png;base64,$PNG"}}]}'
    )
    parsed = parse_response(body)
    assert [i.data for i in parsed.images] == [PNG]
    assert parsed.text == "好的"


def test_several_markdown_images_in_one_content() -> None:
    body = answer(
        '{"role":"assistant","content":"一:![a](data:image/png;base64,$PNG)\\n二:![b]($URL)"}'
    )
    parsed = parse_response(body)
    assert parsed.images == [ImageRef(data=PNG, mime="image/png"), ImageRef(url=S4_URL)]
    assert parsed.text == "一:\n二:"


# --- parse_response: answers without images -------------------------------------------------


def test_empty_markdown_target_means_no_image_s1() -> None:
    parsed = parse_response(answer('{"role":"assistant","content":"这是您的小猫:![image]()"}'))
    assert parsed.images == []
    assert parsed.text == "这是您的小猫:"


def test_text_only_answer_is_a_result_not_an_error() -> None:
    parsed = parse_response(
        answer('{"role":"assistant","content":"I can describe it, but not draw it."}')
    )
    assert parsed.images == []
    assert parsed.text == "I can describe it, but not draw it."


def test_content_filter_without_image_is_blocked() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(answer('{"role":"assistant","content":null}', finish="content_filter"))
    assert info.value.kind is ProviderErrorKind.BLOCKED
    assert info.value.reason == "content_filter"


def test_content_filter_with_an_image_still_returns_the_image() -> None:
    body = answer(
        '{"role":"assistant","content":"![image](data:image/png;base64,$PNG)"}',
        finish="content_filter",
    )
    assert len(parse_response(body).images) == 1


def test_no_image_and_no_text_is_no_image() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(answer('{"role":"assistant","content":""}'))
    assert info.value.kind is ProviderErrorKind.NO_IMAGE


# --- parse_response: broken answers ----------------------------------------------------------


def test_200_with_error_object_is_bad_response_with_the_relays_message() -> None:
    body = (
        b'{"error":{"message":"\xe5\xbd\x93\xe5\x89\x8d\xe5\x88\x86\xe7\xbb\x84\xe4\xb8\x8a\xe6'
        b'\xb8\xb8\xe8\xb4\x9f\xe8\xbd\xbd\xe5\xb7\xb2\xe9\xa5\xb1\xe5\x92\x8c","type":'
        b'"new_api_error","param":"","code":"upstream_error"}}'
    )
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert "当前分组上游负载已饱和" in info.value.detail
    assert info.value.reason == "upstream_error"


def test_200_with_error_object_naming_an_http_status_is_classified_by_it() -> None:
    body = b'{"error":{"message":"Too many requests","type":"rate_limit","code":429}}'
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind is ProviderErrorKind.RATE_LIMITED


def test_missing_choices_without_error_is_bad_response() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(b'{"id":"x","object":"chat.completion","choices":[]}')
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE


def test_malformed_json_is_bad_response() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(b'{"id":"chatcmpl-1","choices":[{"message":{"content":"\xe8\xbf')
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert "not JSON" in info.value.detail


def test_json_that_is_not_an_object_is_bad_response() -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(b'["choices"]')
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE


def test_truncated_base64_is_bad_response() -> None:
    cut = PNG_B64[:41]  # 41 % 4 == 1: no padding can make that whole
    body = answer('{"role":"assistant","content":"![image](data:image/png;base64,' + cut + ')"}')
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert "base64" in info.value.detail


def test_invalid_base64_characters_are_bad_response() -> None:
    body = answer('{"role":"assistant","content":"![image](data:image/png;base64,iVBO*w0K)"}')
    with pytest.raises(ProviderError) as info:
        parse_response(body)
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE


def test_openrouter_names_googles_512_tier_0_5k() -> None:
    ep = endpoint(
        extra_body={"modalities": ["image", "text"]},
        profile=ProfileOverride(image_sizes=("512", "1K")),
    )
    body = build_request(request(image_size="512"), ep)
    assert body["image_config"] == {"image_size": "0.5K"}
