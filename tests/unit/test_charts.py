"""bot/charts.py: exact size, opaque, bars in proportion, and no missing-glyph boxes."""

from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image

from bot.charts import HEIGHT, WIDTH, DayCount, Words, stats_chart, usage_chart

DAYS = [date(2026, 12, 2) - timedelta(days=i) for i in range(6, -1, -1)]
BAR = (0x2F, 0x81, 0xF7)


def _blue(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (WIDTH, HEIGHT)
        assert im.convert("RGBA").getchannel("A").getextrema() == (255, 255)
        rgb = im.convert("RGB")
        return sum(n for n, c in rgb.getcolors(WIDTH * HEIGHT) or [] if c == BAR)


def _usage(counts: list[DayCount], left: int | None = None) -> bytes:
    title = Words("t", "t")
    return usage_chart(DAYS, counts, title=title, used_today=0, left=left, left_words=title)


def test_bars_grow_with_the_count_and_a_persons_models_add_up() -> None:
    scale = DayCount(DAYS[0], "m", 8, 0.0)  # the same axis for all three
    one = _blue(_usage([scale, DayCount(DAYS[3], "m", 2, 0.0)]))
    two = _blue(_usage([scale, DayCount(DAYS[3], "m", 4, 0.0)]))
    split = _blue(_usage([scale, DayCount(DAYS[3], "a", 2, 0.0), DayCount(DAYS[3], "b", 2, 0.0)]))
    assert one < two and abs(two - split) < two * 0.02


def test_words_the_font_cannot_draw_fall_back_to_english() -> None:
    assert Words("Your images", "x").shown() == "Your images"
    assert (
        Words("你最近 7 天的图片", "Your images, last 7 days").shown() == "Your images, last 7 days"
    )


def test_stats_chart_takes_many_models_and_a_long_span() -> None:
    days = [date(2026, 12, 2) - timedelta(days=i) for i in range(89, -1, -1)]
    counts = [
        DayCount(d, f"vendor/model-{m}-" + "x" * 40, m + 1, 0.04) for d in days for m in range(9)
    ]
    png = stats_chart(days, counts, title=Words("a", "a"), cost_title=Words("b", "b"))
    assert _blue(png) > 0
