"""The gemini dialect on JSON alone: golden request bodies, every answer shape (§1A, §2, §3)
and Google's error bodies as extract.error_from_http classifies them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bot.providers.base import (
    Endpoint,
    ImagePart,
    ImageRef,
    ImageRequest,
    InputImage,
    TextPart,
    TokenPart,
    Turn,
)
from bot.providers.errors import ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.providers.extract import error_from_http
from bot.providers.gemini import (
    build_request,
    contents_of,
    endpoint_url,
    parse_response,
    read_content,
)

EP = Endpoint(name="google", dialect="gemini", base_url="https://g.test", api_key="AIza-test")
PRO = "gemini-3-pro-image-preview"
THINK = {"thinkingConfig": {"includeThoughts": True}}  # 3 Pro thinks: it is asked for summaries
FLASH = "gemini-2.5-flash-image"

# A real 1x1 PNG and a real 1x1 WebP, as an answer carries them.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
WEBP_B64 = (
    "UklGRj4AAABXRUJQVlA4IDIAAADQAQCdASoBAAEAAUAmJaACdLoB+AADsAD+"
    "6SIf+8+fufP3Pn/Rn/+U/fI4/kcf/KBAAA=="
)
PNG = base64.b64decode(PNG_B64)
WEBP = base64.b64decode(WEBP_B64)

# Input images: build_request does not look inside them, so short stand-ins keep bodies legible.
IN_JPEG_1 = InputImage(b"\xff\xd8\xff-jpeg-1", "image/jpeg")  # base64 /9j/LWpwZWctMQ==
IN_JPEG_2 = InputImage(b"\xff\xd8\xff-jpeg-2", "image/jpeg")  # base64 /9j/LWpwZWctMg==
IN_PNG_3 = InputImage(b"\x89PNG\r\n\x1a\n-png-3", "image/png")  # base64 iVBORw0KGgotcG5nLTM=


def answer(text: str) -> bytes:
    """A literal JSON answer with <PNG> and <WEBP> standing for the images' base64."""
    return text.replace("<PNG>", PNG_B64).replace("<WEBP>", WEBP_B64).encode()


def refusal(body: str | bytes) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        parse_response(body.encode() if isinstance(body, str) else body)
    return info.value


# --- request bodies -----------------------------------------------------------------------


def test_text_to_image_body() -> None:
    body = build_request(ImageRequest(prompt="a cat in a hat", model=FLASH), EP)
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "a cat in a hat"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_edit_with_one_image_body() -> None:
    req = ImageRequest(prompt="add a llama", model=FLASH, images=[IN_JPEG_1])
    assert build_request(req, EP) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "add a llama"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/LWpwZWctMQ=="}},
                ],
            }
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_composition_with_three_images_body() -> None:
    req = ImageRequest(
        prompt="put them in one room", model=PRO, images=[IN_JPEG_1, IN_JPEG_2, IN_PNG_3]
    )
    assert build_request(req, EP) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "put them in one room"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/LWpwZWctMQ=="}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/LWpwZWctMg=="}},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgotcG5nLTM="}},
                ],
            }
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], **THINK},
    }


def test_aspect_ratio_and_image_size_on_3_pro() -> None:
    req = ImageRequest(prompt="a fox", model=PRO, aspect_ratio="16:9", image_size="2K")
    assert build_request(req, EP) == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
            "thinkingConfig": {"includeThoughts": True},
        },
    }


def test_image_size_dropped_on_2_5_flash_image() -> None:
    req = ImageRequest(prompt="a fox", model=FLASH, aspect_ratio="16:9", image_size="2K")
    assert build_request(req, EP) == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }


def test_image_size_alone_is_uppercased() -> None:
    req = ImageRequest(prompt="a fox", model=PRO, image_size="4k")
    assert build_request(req, EP)["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"imageSize": "4K"},
        "thinkingConfig": {"includeThoughts": True},
    }


def test_n_is_left_to_the_caller() -> None:
    body = build_request(ImageRequest(prompt="p", model=PRO, n=4), EP)
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], **THINK}
    assert "candidateCount" not in json.dumps(body)


# A 3 Pro model turn exactly as it came back: a signed image, then a signed empty text part.
SIGNED_MODEL_PARTS: list[dict[str, Any]] = [
    {"inlineData": {"mimeType": "image/png", "data": PNG_B64}, "thoughtSignature": "Cq0BAXLI2n=="},
    {"text": "", "thoughtSignature": "EvUCAQ+sig/2=="},
]
# The same turn as the dialect hands it to the services: neutral parts, signatures as tokens.
SIGNED_MODEL_TURN = Turn(
    "model",
    [
        ImagePart("image/png", data=PNG, token={"thoughtSignature": "Cq0BAXLI2n=="}),
        TextPart("", {"thoughtSignature": "EvUCAQ+sig/2=="}),
    ],
)


def test_history_of_two_earlier_turns_is_sent_verbatim() -> None:
    history = [Turn("user", [TextPart("draw a red bicycle")]), SIGNED_MODEL_TURN]
    req = ImageRequest(prompt="now make it blue", model=PRO, history=history)
    body = build_request(req, EP)
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "draw a red bicycle"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "inlineData": {"mimeType": "image/png", "data": PNG_B64},
                        "thoughtSignature": "Cq0BAXLI2n==",
                    },
                    {"text": "", "thoughtSignature": "EvUCAQ+sig/2=="},
                ],
            },
            {"role": "user", "parts": [{"text": "now make it blue"}]},
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], **THINK},
    }
    sent = json.dumps(body["contents"][1]["parts"], separators=(",", ":"))
    assert sent == json.dumps(SIGNED_MODEL_PARTS, separators=(",", ":"))


def test_a_snake_case_signature_goes_back_under_its_own_name() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"parts": [
                 {"inline_data": {"mime_type": "image/png", "data": "<PNG>"},
                  "thought_signature": "s"}]}}]}"""
        )
    )
    assert parsed.model_turn is not None
    history = [Turn("user", [TextPart("x")]), parsed.model_turn]
    req = ImageRequest(prompt="again", model=PRO, history=history)
    assert build_request(req, EP)["contents"][1] == {
        "role": "model",
        # the picture in the form this dialect writes its own (and every relay reads)
        "parts": [
            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}, "thought_signature": "s"}
        ],
    }


def test_an_image_part_without_its_bytes_is_not_sent() -> None:
    history = [Turn("model", [ImagePart("image/png", sha256="ab" * 32)])]
    with pytest.raises(ValueError, match="no bytes"):
        build_request(ImageRequest(prompt="p", model=PRO, history=history), EP)


# --- round trips: an answer's content -> neutral model turn -> contents ----------------------


def _content(text: str) -> dict[str, Any]:
    candidate: dict[str, Any] = json.loads(answer(text))["candidates"][0]
    return candidate


def test_a_3_pro_answer_round_trips_with_its_signatures() -> None:
    candidate = _content(THREE_PRO_ANSWER)
    images, turn = read_content(candidate)
    assert images == [ImageRef(data=PNG, mime="image/png")]
    assert turn is not None
    kept = [p for p in candidate["content"]["parts"] if not p.get("thought")]
    assert contents_of([turn]) == [{"role": "model", "parts": kept}]
    sent = json.dumps(contents_of([turn])[0]["parts"], separators=(",", ":"))
    assert sent == json.dumps(kept, separators=(",", ":"))  # key order too


def test_several_images_and_words_round_trip_in_order() -> None:
    candidate = _content(
        """{"candidates": [{"content": {"role": "model", "parts": [
             {"text": "First the day,"},
             {"inlineData": {"mimeType": "image/png", "data": "<PNG>"}, "thoughtSignature": "a"},
             {"text": "then the night."},
             {"inlineData": {"mimeType": "image/webp", "data": "<WEBP>"}},
             {"text": "", "thoughtSignature": "b"}]}}]}"""
    )
    images, turn = read_content(candidate)
    assert [i.mime for i in images] == ["image/png", "image/webp"]
    assert turn == Turn(
        "model",
        [
            TextPart("First the day,"),
            ImagePart("image/png", data=PNG, token={"thoughtSignature": "a"}),
            TextPart("then the night."),
            ImagePart("image/webp", data=WEBP),
            TextPart("", {"thoughtSignature": "b"}),
        ],
    )
    assert contents_of([turn]) == [{"role": "model", "parts": candidate["content"]["parts"]}]


def test_a_part_of_another_kind_is_kept_whole_and_sent_back_verbatim() -> None:
    call = {"functionCall": {"name": "draw", "args": {"what": "fox"}}, "thoughtSignature": "c"}
    images, turn = read_content({"content": {"parts": [call, {"text": "ok"}]}})
    assert images == []
    assert turn == Turn("model", [TokenPart(call), TextPart("ok")])
    assert contents_of([turn])[0]["parts"] == [call, {"text": "ok"}]


def test_a_content_of_thoughts_alone_keeps_no_turn() -> None:
    assert read_content({"content": {"parts": [{"text": "hm", "thought": True}]}}) == ([], None)


def test_extra_body_is_merged_and_the_request_wins() -> None:
    extra = {
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
        ],
        "generationConfig": {"temperature": 0.4, "responseModalities": ["IMAGE"]},
        "contents": "ignored",
    }
    ep = Endpoint(
        name="relay",
        dialect="gemini",
        base_url="http://api.aaigc.top",
        api_key="k",
        extra_body=extra,
    )
    req = ImageRequest(prompt="a fox", model=PRO, aspect_ratio="1:1")
    assert build_request(req, ep) == {
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
        ],
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {
            "temperature": 0.4,
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "1:1"},
            "thinkingConfig": {"includeThoughts": True},
        },
    }
    assert extra["generationConfig"] == {"temperature": 0.4, "responseModalities": ["IMAGE"]}


@pytest.mark.parametrize(
    ("base", "model", "url"),
    [
        (
            "https://generativelanguage.googleapis.com",
            PRO,
            "https://generativelanguage.googleapis.com/v1beta/models/"
            "gemini-3-pro-image-preview:generateContent",
        ),
        (
            "http://api.aaigc.top/",
            "gemini-2.5-flash-image-preview",
            "http://api.aaigc.top/v1beta/models/gemini-2.5-flash-image-preview:generateContent",
        ),
        (
            "https://relay.test/v1beta/",
            f"models/{FLASH}",
            "https://relay.test/v1beta/models/gemini-2.5-flash-image:generateContent",
        ),
    ],
)
def test_endpoint_url(base: str, model: str, url: str) -> None:
    assert endpoint_url(base, model) == url


# --- answers --------------------------------------------------------------------------------


def test_camel_case_image_and_text() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"role": "model", "parts": [
                 {"text": "Here is your cat."},
                 {"inlineData": {"mimeType": "image/png", "data": "<PNG>"}}]},
               "finishReason": "STOP", "index": 0}],
             "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1290,
                               "totalTokenCount": 1299},
             "modelVersion": "gemini-2.5-flash-image"}"""
        )
    )
    assert parsed.images == [ImageRef(data=PNG, mime="image/png")]
    assert parsed.text == "Here is your cat."
    assert parsed.usage == {
        "promptTokenCount": 9,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1299,
    }
    assert parsed.model_turn == Turn(
        "model", [TextPart("Here is your cat."), ImagePart("image/png", data=PNG)]
    )


def test_snake_case_inline_data() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"parts": [
                 {"inline_data": {"mime_type": "image/webp", "data": "<WEBP>"}},
                 {"text": "Done."}]},
               "finish_reason": "STOP"}],
             "usage_metadata": {"total_token_count": 1300}}"""
        )
    )
    assert parsed.images == [ImageRef(data=WEBP, mime="image/webp")]
    assert parsed.text == "Done."
    assert parsed.usage == {"total_token_count": 1300}


def test_mime_is_sniffed_not_trusted() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"parts": [
                 {"inlineData": {"mimeType": "image/jpeg", "data": "<PNG>"}}]}}]}"""
        )
    )
    assert parsed.images[0].mime == "image/png"
    assert parsed.text is None


THREE_PRO_ANSWER = """{"candidates": [{"content": {"role": "model", "parts": [
  {"text": "**Composing the scene** I will place the fox...", "thought": true},
  {"inlineData": {"mimeType": "image/webp", "data": "<WEBP>"}, "thought": true},
  {"text": "**Refining** The light needs to be warmer.", "thought": true},
  {"inlineData": {"mimeType": "image/webp", "data": "<WEBP>"}, "thought": true},
  {"inlineData": {"mimeType": "image/png", "data": "<PNG>"}, "thoughtSignature": "Cq0BAXLI2n=="},
  {"text": "Here is the fox at sunset.", "thoughtSignature": "EvUCAQ+sig/2=="}]},
  "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1120,
                    "thoughtsTokenCount": 250, "totalTokenCount": 1382}}"""


def test_3_pro_thinking_images_are_skipped_and_signatures_kept() -> None:
    parsed = parse_response(answer(THREE_PRO_ANSWER))
    assert parsed.images == [ImageRef(data=PNG, mime="image/png")]
    assert parsed.text == "Here is the fox at sunset."
    assert parsed.model_turn == Turn(
        "model",
        [
            ImagePart("image/png", data=PNG, token={"thoughtSignature": "Cq0BAXLI2n=="}),
            TextPart("Here is the fox at sunset.", {"thoughtSignature": "EvUCAQ+sig/2=="}),
        ],
    )
    assert parsed.usage is not None and parsed.usage["thoughtsTokenCount"] == 250


def test_snake_case_signature_is_kept_verbatim() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"parts": [
                 {"inline_data": {"mime_type": "image/png", "data": "<PNG>"},
                  "thought_signature": "c2ln"}]}}]}"""
        )
    )
    assert parsed.model_turn == Turn(
        "model", [ImagePart("image/png", data=PNG, token={"thought_signature": "c2ln"})]
    )


def test_two_images_both_returned_in_order() -> None:
    parsed = parse_response(
        answer(
            """{"candidates": [{"content": {"parts": [
                 {"inlineData": {"mimeType": "image/png", "data": "<PNG>"}},
                 {"inlineData": {"mimeType": "image/webp", "data": "<WEBP>"}}]}}]}"""
        )
    )
    assert [i.mime for i in parsed.images] == ["image/png", "image/webp"]


def test_text_only_stop_is_an_answer_not_an_error() -> None:
    parsed = parse_response(
        b"""{"candidates": [{"content": {"role": "model", "parts": [
              {"text": "I can describe a cat, but please ask me to generate an image."}]},
            "finishReason": "STOP"}],
          "usageMetadata": {"totalTokenCount": 1304}}"""
    )
    assert parsed.images == []
    assert parsed.text == "I can describe a cat, but please ask me to generate an image."
    assert parsed.model_turn == Turn(
        "model", [TextPart("I can describe a cat, but please ask me to generate an image.")]
    )
    assert parsed.usage == {"totalTokenCount": 1304}


def test_thoughts_alone_are_no_answer() -> None:
    err = refusal(
        """{"candidates": [{"content": {"parts": [{"text": "thinking...", "thought": true}]},
            "finishReason": "STOP"}]}"""
    )
    assert err.kind == K.NO_IMAGE and err.reason == "STOP"


@pytest.mark.parametrize(
    ("finish", "kind"),
    [
        ("SAFETY", K.BLOCKED),
        ("IMAGE_SAFETY", K.BLOCKED),
        ("PROHIBITED_CONTENT", K.BLOCKED),
        ("IMAGE_PROHIBITED_CONTENT", K.BLOCKED),
        ("BLOCKLIST", K.BLOCKED),
        ("SPII", K.BLOCKED),
        ("RECITATION", K.BLOCKED),
        ("IMAGE_RECITATION", K.BLOCKED),
        ("NO_IMAGE", K.NO_IMAGE),
        ("IMAGE_OTHER", K.NO_IMAGE),
        ("OTHER", K.NO_IMAGE),
        ("MAX_TOKENS", K.NO_IMAGE),
        ("MALFORMED_FUNCTION_CALL", K.NO_IMAGE),
        ("LANGUAGE", K.NO_IMAGE),
        ("UNEXPECTED_TOOL_CALL", K.NO_IMAGE),
        ("FINISH_REASON_UNSPECIFIED", K.NO_IMAGE),
        ("STOP", K.NO_IMAGE),
        ("IMAGE_SAFETY_V2", K.BLOCKED),  # a reason Google may add: judged by its words
    ],
)
def test_finish_reason_without_image(finish: str, kind: K) -> None:
    err = refusal(
        f"""{{"candidates": [{{"finishReason": "{finish}", "index": 0,
              "finishMessage": "Unable to show the generated image."}}]}}"""
    )
    assert err.kind == kind
    assert err.reason == finish
    assert finish in err.detail
    assert "Unable to show the generated image." in err.detail


def test_recitation_keeps_its_reason() -> None:
    err = refusal('{"candidates": [{"finishReason": "IMAGE_RECITATION"}]}')
    assert (err.kind, err.reason) == (K.BLOCKED, "IMAGE_RECITATION")


def test_block_with_words_is_still_blocked() -> None:
    err = refusal(
        """{"candidates": [{"content": {"parts": [{"text": "I can't make that image."}]},
            "finishReason": "IMAGE_PROHIBITED_CONTENT"}]}"""
    )
    assert (err.kind, err.reason) == (K.BLOCKED, "IMAGE_PROHIBITED_CONTENT")


def test_no_image_with_words_shows_the_words() -> None:
    parsed = parse_response(
        b"""{"candidates": [{"content": {"parts": [
              {"text": "I could not draw this; try describing the scene."}]},
            "finishReason": "NO_IMAGE"}]}"""
    )
    assert parsed.images == [] and parsed.text == "I could not draw this; try describing the scene."


@pytest.mark.parametrize("finish", ["IMAGE_SAFETY", "MAX_TOKENS", "NO_IMAGE", "OTHER"])
def test_an_image_wins_over_any_finish_reason(finish: str) -> None:
    parsed = parse_response(
        answer(
            f"""{{"candidates": [{{"content": {{"parts": [
                 {{"inlineData": {{"mimeType": "image/png", "data": "<PNG>"}}}}]}},
               "finishReason": "{finish}"}}]}}"""
        )
    )
    assert parsed.images == [ImageRef(data=PNG, mime="image/png")]


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "OTHER"])
def test_prompt_feedback_block_reason(reason: str) -> None:
    err = refusal(
        f"""{{"promptFeedback": {{"blockReason": "{reason}", "safetyRatings": [
               {{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}}]}},
             "usageMetadata": {{"promptTokenCount": 8, "totalTokenCount": 8}}}}"""
    )
    assert err.kind == K.BLOCKED
    assert err.reason == reason
    assert reason in err.detail


def test_prompt_feedback_message_and_snake_case() -> None:
    err = refusal(
        """{"prompt_feedback": {"block_reason": "IMAGE_SAFETY",
             "block_reason_message": "The input image was flagged."}, "candidates": []}"""
    )
    assert (err.kind, err.reason) == (K.BLOCKED, "IMAGE_SAFETY")
    assert "The input image was flagged." in err.detail


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        ('{"candidates": [{"finishReason": "STOP", "index": 0}]}', K.NO_IMAGE, "STOP"),
        (
            '{"candidates": [{"content": {"role": "model"}, "finishReason": "OTHER"}]}',
            K.NO_IMAGE,
            "OTHER",
        ),
        (
            '{"candidates": [{"content": {}, "finishReason": "IMAGE_SAFETY"}]}',
            K.BLOCKED,
            "IMAGE_SAFETY",
        ),
        ('{"candidates": [{}]}', K.NO_IMAGE, None),
        ('{"candidates": []}', K.NO_IMAGE, None),
        ('{"usageMetadata": {}}', K.NO_IMAGE, None),
        ('{"candidates": [{"content": {"parts": "nonsense"}}]}', K.NO_IMAGE, None),
    ],
)
def test_candidates_without_content(body: str, kind: K, reason: str | None) -> None:
    err = refusal(body)
    assert (err.kind, err.reason) == (kind, reason)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[]",
        b'"a string"',
        b'{"candidates": ["not an object"]}',
        b"<html><body>502 Bad Gateway</body></html>",
    ],
)
def test_malformed_answers(body: bytes) -> None:
    assert refusal(body).kind == K.BAD_RESPONSE


@pytest.mark.parametrize(
    "data",
    [
        PNG_B64[:-7],  # cut mid-quantum: not even valid base64
        PNG_B64[:48],  # cut on a quantum: decodes, but the PNG has no end
        PNG_B64[:30] + "!!!" + PNG_B64[30:],  # characters outside the alphabet
        "aGVsbG8gd29ybGQ=",  # "hello world": base64, but no image
        "",
    ],
)
def test_bad_inline_data(data: str) -> None:
    body = json.dumps(
        {
            "candidates": [
                {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]}}
            ]
        }
    )
    assert refusal(body).kind == K.BAD_RESPONSE


def test_base64_wrapped_over_lines_is_fine() -> None:
    wrapped = "\n".join(PNG_B64[i : i + 20] for i in range(0, len(PNG_B64), 20))
    body = json.dumps(
        {
            "candidates": [
                {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": wrapped}}]}}
            ]
        }
    )
    assert parse_response(body.encode()).images == [ImageRef(data=PNG, mime="image/png")]


def test_google_error_sent_with_200_is_classified() -> None:
    err = refusal(
        """{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]}}"""
    )
    assert (err.kind, err.retry_after, err.status) == (K.RATE_LIMITED, 5.0, 429)


def test_other_error_sent_with_200_is_a_bad_response() -> None:
    err = refusal('{"error": "upstream busy"}')
    assert err.kind == K.BAD_RESPONSE and "upstream busy" in err.detail


# --- Google's HTTP error bodies through extract.error_from_http ------------------------------

RETRY_27S = """{"error": {"code": 429,
  "message": "You exceeded your current quota, please check your plan and billing details.",
  "status": "RESOURCE_EXHAUSTED", "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
      {"quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
       "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
       "quotaDimensions": {"location": "global", "model": "gemini-3-pro-image"},
       "quotaValue": "20"}]},
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [
      {"description": "Learn more about Gemini API quotas",
       "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"}]}}"""

PER_DAY = """{"error": {"code": 429, "message": "You exceeded your current quota.",
  "status": "RESOURCE_EXHAUSTED", "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
      {"quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
       "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
       "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash-image"}}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "52758s"}]}}"""

# A free-tier key on an image model: limits of 0 per minute and per day (gemini-cli#8437).
FREE_TIER_ZERO = """{"error": {"code": 429, "message": "You exceeded your current quota.",
  "status": "RESOURCE_EXHAUSTED", "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
      {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"},
      {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}]}}"""

NOT_FOUND = """{"error": {"code": 404, "message":
  "models/gemini-2.0-flash-exp-image is not found for API version v1beta, or is not supported for
 generateContent. Call ListModels to see the list of available models and their supported
 methods.", "status": "NOT_FOUND"}}""".replace("\n", "")

INVALID_ARGUMENT = """{"error": {"code": 400, "message":
  "Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
  "status": "INVALID_ARGUMENT"}}"""

BAD_KEY = """{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
  "status": "INVALID_ARGUMENT", "details": [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}"""

PERMISSION_DENIED = """{"error": {"code": 403,
  "message": "Your API key was reported as leaked. Please use another API key.",
  "status": "PERMISSION_DENIED"}}"""

UNAVAILABLE = """{"error": {"code": 503,
  "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"""

INTERNAL = """[{"error": {"code": 500, "message": "An internal error has occurred.",
  "status": "INTERNAL"}}]"""


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason", "retry_after"),
    [
        (429, RETRY_27S, K.RATE_LIMITED, "RESOURCE_EXHAUSTED", 27.0),
        (429, PER_DAY, K.QUOTA_EXHAUSTED, "RESOURCE_EXHAUSTED", 52758.0),
        (429, FREE_TIER_ZERO, K.QUOTA_EXHAUSTED, "RESOURCE_EXHAUSTED", 41.0),
        (404, NOT_FOUND, K.MODEL_RETIRED, "NOT_FOUND", None),
        (400, INVALID_ARGUMENT, K.BAD_REQUEST, "INVALID_ARGUMENT", None),
        (400, BAD_KEY, K.AUTH, "API_KEY_INVALID", None),
        (403, PERMISSION_DENIED, K.AUTH, "PERMISSION_DENIED", None),
        (503, UNAVAILABLE, K.SERVER, "UNAVAILABLE", None),
        (500, INTERNAL, K.SERVER, "INTERNAL", None),
    ],
)
def test_google_error_bodies(
    status: int, body: str, kind: K, reason: str, retry_after: float | None
) -> None:
    err = error_from_http(status, body.encode(), {}, "google", secrets=["AIza-test"])
    assert err.kind == kind
    assert err.reason == reason
    assert err.retry_after == retry_after
    assert err.status == status and err.endpoint == "google"
    assert err.detail.startswith(f"HTTP {status}: ")
    assert err.transient == (kind in (K.RATE_LIMITED, K.SERVER))


def test_retry_after_header_wins_over_retry_info() -> None:
    err = error_from_http(429, RETRY_27S.encode(), {"Retry-After": "3"}, "google")
    assert (err.kind, err.retry_after) == (K.RATE_LIMITED, 3.0)
