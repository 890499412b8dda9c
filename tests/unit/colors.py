"""The average colour of an image, for tests that check what a conversion did to the pixels."""

from __future__ import annotations

from PIL import ImageStat

from bot import imaging


def mean_color(data: bytes, *, max_pixels: int = imaging.MAX_PIXELS) -> tuple[int, int, int]:
    """Average (R, G, B) of the first frame as the bot decodes it (same guard), alpha ignored."""
    im, _animated = imaging._decode(data, imaging._INPUT_FORMATS, max_pixels)
    with im:
        rgb = imaging._to_rgb_or_rgba(im).convert("RGB")
    r, g, b = (round(v) for v in ImageStat.Stat(rgb).mean[:3])
    return r, g, b
