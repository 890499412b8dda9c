"""normalise_input(probed=True): bytes that already passed probe are not decoded a second time
when they go upstream as they are, and are normalised exactly as before when they must not."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from bot import imaging
from bot.imaging import ImageInputError


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert("RGB")


def test_a_probed_pass_through_jpeg_is_not_decoded_again() -> None:
    data = encode(photo(), "JPEG", quality=90)
    truncated = data[: len(data) // 2]  # header intact, pixel data cut: only a decode notices
    with pytest.raises(ImageInputError) as err:
        imaging.normalise_input(truncated)
    assert err.value.code == "not_image"
    out, info = imaging.normalise_input(truncated, probed=True)
    assert out is truncated
    assert (info.mime, info.width, info.height) == ("image/jpeg", 320, 240)


def test_probed_pass_through_matches_the_full_path() -> None:
    data = encode(photo(), "JPEG", quality=90)
    assert imaging.normalise_input(data, probed=True) == imaging.normalise_input(data)


@pytest.mark.parametrize("case", ["rotated", "too_big", "palette_png"])
def test_probed_files_that_need_re_encoding_come_out_the_same(case: str) -> None:
    if case == "rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        data = encode(photo(), "JPEG", quality=95, exif=exif.tobytes())
    elif case == "too_big":
        data = encode(photo((600, 300)), "JPEG", quality=90)
    else:
        data = encode(photo().convert("P"), "PNG")
    expected = imaging.normalise_input(data, max_side=256)
    assert imaging.normalise_input(data, max_side=256, probed=True) == expected
    assert expected[0] != data


def test_probed_re_encoding_still_reports_broken_pixels() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # must be re-encoded, so its pixels are decoded
    data = encode(photo(), "JPEG", quality=95, exif=exif.tobytes())
    with pytest.raises(ImageInputError) as err:
        imaging.normalise_input(data[: len(data) // 2], probed=True)
    assert err.value.code == "not_image"


def test_probed_animation_is_still_refused() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageInputError) as err:
        imaging.normalise_input(buf.getvalue(), probed=True)
    assert err.value.code == "animated"
    _out, info = imaging.normalise_input(buf.getvalue(), probed=True, first_frame=True)
    assert info.mime == "image/jpeg" and (info.width, info.height) == (32, 32)
