"""Charts for /usage and /stats, drawn with matplotlib's Agg backend off the event loop.

Readable on a phone in both Telegram themes: an opaque white background with dark ink (a
transparent PNG would put dark text on a dark chat), large fonts, at most a few colours.
Words come from the caller (already in the reader's language); a word the font cannot draw
falls back to its English twin rather than showing boxes.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib (and numpy) load with the first chart: ~40 MB a bot never
    # drawing one need not hold
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import Locator

#: Pixel size of every chart: wide enough for a week of bars, sharp on a phone held upright.
WIDTH, HEIGHT = 1280, 960
_DPI = 100
_INK = "#1f2328"
_GRID = "#d0d7de"
_PALETTE = ("#2f81f7", "#f0883e", "#3fb950", "#a371f7", "#db61a2", "#d29922", "#8b949e")
_FONT = {"size": 22}


@dataclass(frozen=True)
class Words:
    """A chart's words: in the reader's language, and in English where the font lacks a glyph."""

    text: str
    english: str

    def shown(self) -> str:
        return self.text if _drawable(self.text) else self.english


@dataclass(frozen=True)
class DayCount:
    day: date
    key: str  # the model (stats) or "" (one person's use)
    images: int
    cost: float


@cache
def _glyphs() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return frozenset(FT2Font(path).get_charmap())


def _drawable(text: str) -> bool:
    return all(ord(c) in _glyphs() or c.isspace() for c in text)


#: matplotlib's font cache and state are shared: one chart is drawn at a time.
_DRAWING = threading.Lock()


def _figure(rows: int) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / _DPI, HEIGHT / _DPI), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    for ax in axes:
        ax.set_facecolor("white")
        ax.tick_params(colors=_INK, labelsize=_FONT["size"] - 4)
        ax.grid(axis="y", color=_GRID, linewidth=1)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, list(axes)


def _integer_ticks() -> Locator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _png(fig: Figure) -> bytes:
    fig.tight_layout(pad=1.2)
    buf = io.BytesIO()
    # No bbox="tight": the size stays exactly WIDTH x HEIGHT, and the background opaque.
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white", transparent=False)
    return buf.getvalue()


def _day_labels(days: Sequence[date]) -> list[str]:
    return [f"{d:%m-%d}" for d in days]


def usage_chart(
    days: Sequence[date],
    counts: Sequence[DayCount],
    *,
    title: Words,
    used_today: int,
    left: int | None,
    left_words: Words,
) -> bytes:
    """One person's images per day, today's bar topped by what is left (a PNG's bytes)."""
    with _DRAWING:
        return _usage(days, counts, title, used_today, left, left_words)


def _usage(
    days: Sequence[date],
    counts: Sequence[DayCount],
    title: Words,
    used_today: int,
    left: int | None,
    left_words: Words,
) -> bytes:
    per_day: dict[date, int] = {}
    for c in counts:  # one person's models add up
        per_day[c.day] = per_day.get(c.day, 0) + c.images
    values = [per_day.get(d, 0) for d in days]
    fig, (ax,) = _figure(1)
    x = list(range(len(days)))
    ax.bar(x, values, color=_PALETTE[0], width=0.7)
    if left is not None and left > 0 and days:
        ax.bar(
            [x[-1]],
            [left],
            bottom=[values[-1]],
            color="white",
            edgecolor=_PALETTE[0],
            hatch="//",
            width=0.7,
            linewidth=2,
        )
    for i, v in enumerate(values):
        if v:
            ax.annotate(
                str(v),
                (i, v),
                ha="center",
                va="bottom",
                fontsize=_FONT["size"],
                color=_INK,
                xytext=(0, 4),
                textcoords="offset points",
            )
    ax.set_xticks(x, _day_labels(days))
    ax.yaxis.set_major_locator(_integer_ticks())
    ax.set_title(title.shown(), fontsize=_FONT["size"] + 6, color=_INK, pad=16)
    ax.set_xlabel(left_words.shown(), fontsize=_FONT["size"], color=_INK)
    ax.set_ylim(0, max([*values, used_today + (left or 0), 1]) * 1.2)
    return _png(fig)


def stats_chart(
    days: Sequence[date], counts: Sequence[DayCount], *, title: Words, cost_title: Words
) -> bytes:
    """Images per day stacked by model (top), cost per day stacked the same way (below)."""
    with _DRAWING:
        return _stats(days, counts, title, cost_title)


def _stats(
    days: Sequence[date], counts: Sequence[DayCount], title: Words, cost_title: Words
) -> bytes:
    keys = sorted(
        {c.key for c in counts}, key=lambda k: -sum(c.images for c in counts if c.key == k)
    )
    if len(keys) > len(_PALETTE):  # the smallest models share the last colour
        keys = [*keys[: len(_PALETTE) - 1], "…"]
    key_of = {k: k for k in keys}
    images = {(d, k): 0 for d in days for k in keys}
    cost = {(d, k): 0.0 for d in days for k in keys}
    for c in counts:
        k = key_of.get(c.key, "…")
        if (c.day, k) in images:
            images[c.day, k] += c.images
            cost[c.day, k] += c.cost
    fig, (top, bottom) = _figure(2)
    x = list(range(len(days)))
    base_i, base_c = [0] * len(days), [0.0] * len(days)
    for n, k in enumerate(keys):
        col = _PALETTE[n]
        iv = [images[d, k] for d in days]
        cv = [cost[d, k] for d in days]
        top.bar(x, iv, bottom=base_i, color=col, width=0.7, label=_short(k))
        bottom.bar(x, cv, bottom=base_c, color=col, width=0.7)
        base_i = [a + b for a, b in zip(base_i, iv, strict=True)]
        base_c = [a + b for a, b in zip(base_c, cv, strict=True)]
    for ax in (top, bottom):
        ax.set_xticks(x, _day_labels(days))
        if len(days) > 14:
            for i, label in enumerate(ax.get_xticklabels()):
                label.set_visible(i % max(1, len(days) // 10) == 0)
    top.yaxis.set_major_locator(_integer_ticks())
    top.set_title(title.shown(), fontsize=_FONT["size"] + 4, color=_INK)
    bottom.set_title(cost_title.shown(), fontsize=_FONT["size"], color=_INK)
    if keys:
        top.legend(fontsize=_FONT["size"] - 6, frameon=False, loc="upper left")
    top.set_ylim(0, max([*base_i, 1]) * 1.35)
    bottom.set_ylim(0, max([*base_c, 0.001]) * 1.2)
    return _png(fig)


def _short(model: str) -> str:
    """A legend entry short enough for a phone: the model's last path part, cut at 28."""
    name = model.rsplit("/", 1)[-1]
    return name if len(name) <= 28 else name[:27] + "…"
