"""The decode guard: no decode holds more pixels than ``max_pixels``; big baseline JPEGs are
decoded scaled (libjpeg's draft) instead of refused, other formats are refused from the header."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot import imaging
from bot.imaging import ImageInputError
from tests.e2e.helpers import png_bomb
from tests.unit.colors import mean_color

GUARD = 100_000  # pixels: small numbers keep these tests fast


def _encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _code(fn, *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageInputError) as caught:
        fn(*args, **kw)
    return caught.value.code


def _turned_jpeg(progressive: bool = False) -> bytes:
    """800x400 (320 000 pixels), to be shown turned 90°: the left half red, the right blue."""
    im = Image.new("RGB", (800, 400), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 400, 400))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(im, "JPEG", quality=90, exif=exif.tobytes(), progressive=progressive)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "TIFF"])
def test_an_8000_square_bomb_is_refused_from_its_header(fmt: str) -> None:
    data = png_bomb() if fmt == "PNG" else _encode(Image.new("L", (8000, 8000)), fmt)
    for fn in (imaging.probe, imaging.normalise_input, mean_color):
        assert _code(fn, data) == "too_large_pixels"
    if fmt != "TIFF":
        assert _code(imaging.validate_output, data) == "too_large_pixels"


def test_a_baseline_jpeg_beyond_the_guard_is_decoded_scaled_and_still_turned() -> None:
    data = _turned_jpeg()
    info = imaging.probe(data, max_pixels=GUARD)
    assert (info.width, info.height) == (800, 400)  # the file's size, not the decode's
    assert imaging.validate_output(data, max_pixels=GUARD).width == 800
    out, oinfo = imaging.normalise_input(data, max_side=100, max_pixels=GUARD)
    assert (oinfo.width, oinfo.height) == (50, 100)
    with Image.open(io.BytesIO(out)) as im:
        top = im.convert("RGB").getpixel((25, 10))
        bottom = im.convert("RGB").getpixel((25, 90))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # type: ignore[index]
    assert mean_color(data, max_pixels=GUARD)[1] < 30
    preview = imaging.telegram_photo(
        data, imaging.ImageInfo("image/webp", 800, 400, "WEBP"), max_pixels=GUARD
    )
    assert preview is not None


def test_only_a_cheap_reduction_lets_a_jpeg_past_the_guard() -> None:
    baseline, progressive = _turned_jpeg(), _turned_jpeg(progressive=True)
    assert imaging.probe(baseline, max_pixels=GUARD).width == 800  # 1/4 scale: 50 000 pixels
    eighth = (800 // 8) * (400 // 8)
    assert _code(imaging.probe, baseline, max_pixels=eighth - 1) == "too_large_pixels"
    # progressive: libjpeg holds every coefficient of the full size, scaled or not
    assert _code(imaging.probe, progressive, max_pixels=GUARD) == "too_large_pixels"
    assert _code(imaging.validate_output, progressive, max_pixels=GUARD) == "too_large_pixels"
    assert imaging.probe(progressive, max_pixels=320_000).width == 800


def test_webp_counts_double_for_its_decoder_copies() -> None:
    data = _encode(Image.new("RGB", (300, 300), (1, 2, 3)), "WEBP", lossless=True)
    assert _code(imaging.probe, data, max_pixels=GUARD) == "too_large_pixels"
    assert imaging.probe(data, max_pixels=2 * 90_000).width == 300
    png = _encode(Image.new("RGB", (300, 300), (1, 2, 3)), "PNG")
    assert imaging.probe(png, max_pixels=GUARD).width == 300
