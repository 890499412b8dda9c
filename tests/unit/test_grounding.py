"""Google Search grounding on JSON alone: the request's tool, the answer's groundingMetadata read
into sources, and the sources shown under a picture within Telegram's caption limit."""

from __future__ import annotations

import html
import json

import pytest

from bot.providers.base import Endpoint, ImageRequest, Source
from bot.providers.gemini import MAX_SOURCES, build_request, parse_response
from bot.services.types import JobOutcome
from bot.telegram.replies import CAPTION_LIMIT, caption_for, shown_length, sources_overflow

EP = Endpoint(name="google", dialect="gemini", base_url="https://g.test", api_key="AIza-test")
FLASH_31 = "gemini-3.1-flash-image"
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)

# A grounded answer as Google sends it (ai.google.dev/gemini-api/docs/google-search): the
# image, then groundingMetadata with the queries, the search entry point and the chunks.
GROUNDED = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Here is today's weather in London."},
                    {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                ],
            },
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["london weather today"],
                "searchEntryPoint": {"renderedContent": '<div class="chip">london</div>'},
                "groundingChunks": [
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/r/1",
                            "title": "bbc.co.uk",
                        }
                    },
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/r/2",
                            "title": "metoffice.gov.uk",
                        }
                    },
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/r/1",
                            "title": "bbc.co.uk",
                        }
                    },  # the same page twice: shown once
                    {"retrievedContext": {"uri": "gs://bucket/doc"}},  # not a web page
                    {"web": {"uri": "javascript:alert(1)", "title": "x"}},  # not a link
                ],
                "groundingSupports": [
                    {"segment": {"endIndex": 10}, "groundingChunkIndices": [0, 1]}
                ],
            },
        }
    ]
}


def test_search_adds_googles_tool_and_nothing_else() -> None:
    req = ImageRequest(
        prompt="today's weather in London as a poster",
        model=FLASH_31,
        aspect_ratio="4:1",
        image_size="512",
        search=True,
    )
    assert build_request(req, EP) == {
        "contents": [
            {"role": "user", "parts": [{"text": "today's weather in London as a poster"}]}
        ],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "4:1", "imageSize": "512"},
        },
        "tools": [{"googleSearch": {}}],
    }


def test_no_search_no_tools() -> None:
    assert "tools" not in build_request(ImageRequest(prompt="a cat", model=FLASH_31), EP)


def test_grounding_metadata_becomes_sources_once_each_in_order() -> None:
    parsed = parse_response(json.dumps(GROUNDED).encode())
    assert len(parsed.images) == 1
    assert parsed.sources == [
        Source("https://vertexaisearch.cloud.google.com/r/1", "bbc.co.uk"),
        Source("https://vertexaisearch.cloud.google.com/r/2", "metoffice.gov.uk"),
    ]


def test_snake_case_grounding_and_a_cap_on_sources() -> None:
    chunks = [{"web": {"uri": f"https://s.test/{i}", "title": f"page {i}"}} for i in range(30)]
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "words only"}]},
                "grounding_metadata": {"grounding_chunks": chunks},
            }
        ]
    }
    parsed = parse_response(json.dumps(body).encode())
    assert [s.uri for s in parsed.sources] == [f"https://s.test/{i}" for i in range(MAX_SOURCES)]


def test_an_answer_without_grounding_has_no_sources() -> None:
    plain = json.loads(json.dumps(GROUNDED))
    del plain["candidates"][0]["groundingMetadata"]
    assert parse_response(json.dumps(plain).encode()).sources == []


def outcome(prompt: str, sources: list[Source]) -> JobOutcome:
    return JobOutcome(job_id=7, model=FLASH_31, prompt=prompt, seconds=9.0, sources=sources)


def test_sources_under_the_picture_are_escaped_links() -> None:
    sources = [
        Source('https://a.test/x?a=1&b="2"', "Tom & Jerry <live>"),
        Source("https://b.test/very/long/path", ""),  # no title: its host is shown
    ]
    caption = caption_for(outcome("a poster", sources), "en")
    assert caption.endswith(
        '🔎 Sources: [1] <a href="https://a.test/x?a=1&amp;b=&quot;2&quot;">'
        "Tom &amp; Jerry &lt;live&gt;</a> · "
        '[2] <a href="https://b.test/very/long/path">b.test</a>'
    )
    assert sources_overflow(outcome("a poster", sources), "en") is None


def test_chinese_caption_names_its_sources_in_chinese() -> None:
    caption = caption_for(outcome("海报", [Source("https://a.test", "天气")]), "zh")
    assert '🔎 来源： [1] <a href="https://a.test">天气</a>' in caption


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_sources_past_the_caption_limit_go_to_a_follow_up(lang: str) -> None:
    # 15: the sources of several answers (--n 2) under one album
    sources = [Source(f"https://s.test/{i}", f"{'long title ' * 8}{i}") for i in range(15)]
    done = outcome("p " * 1000, sources)
    caption = caption_for(done, lang)
    assert shown_length(" ".join(caption.split())) <= CAPTION_LIMIT
    rest = sources_overflow(done, lang)
    assert rest is not None
    shown = [i for i in range(15) if f'href="https://s.test/{i}"' in caption]
    later = [i for i in range(15) if f'href="https://s.test/{i}"' in rest]
    assert shown and later and shown + later == list(range(15))  # each once, in order
    assert len(html.unescape(rest)) <= 4096


def test_titles_are_shortened_before_they_are_escaped() -> None:
    title = "&" * 200
    caption = caption_for(outcome("p", [Source("https://a.test", title)]), "en")
    assert "&amp;" * 59 + "…</a>" in caption and "&am…" not in caption
