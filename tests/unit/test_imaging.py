"""bot.imaging: every input is built with Pillow here (no binary fixtures)."""

from __future__ import annotations

import io
import os
import random
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from bot import imaging
from bot.imaging import ImageInfo, ImageInputError
from tests.unit.colors import mean_color

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


# --- helpers -------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def solid(
    color: tuple[int, ...], size: tuple[int, int] = (64, 48), mode: str = "RGB"
) -> Image.Image:
    return Image.new(mode, size, color)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, with a tiny (wrong) IDAT: a bomb lookalike."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def animated(fmt: str) -> bytes:
    frames = [solid(RED), solid(GREEN), solid(BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def expect_code(code: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ImageInputError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code


# --- normalise_input: conversions ----------------------------------------------------------


def test_exif_orientation_6_is_applied() -> None:
    im = Image.new("RGB", (80, 40), BLUE)
    im.paste(RED, (0, 0, 40, 40))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    data = encode(im, "JPEG", quality=95, exif=exif.tobytes())

    out, info = imaging.normalise_input(data)

    assert out != data
    assert (info.width, info.height, info.mime) == (40, 80, imaging.MIME_JPEG)
    result = decode(out).convert("RGB")
    assert result.size == (40, 80)
    # after a clockwise turn the former left half is on top
    assert close_to(result.getpixel((2, 2)), RED, 40)
    assert close_to(result.getpixel((37, 77)), BLUE, 40)
    assert 0x0112 not in result.getexif()


def test_cmyk_jpeg_becomes_rgb_jpeg() -> None:
    data = encode(solid((0, 255, 255, 0), mode="CMYK"), "JPEG", quality=95)
    assert decode(data).mode == "CMYK"

    out, info = imaging.normalise_input(data)

    assert info.mime == imaging.MIME_JPEG and info.format == "JPEG"
    assert decode(out).mode == "RGB"
    assert close_to(mean_color(out), RED, 20)


def test_palette_png_with_transparency_becomes_rgba_png() -> None:
    im = Image.new("P", (32, 32), 0)
    im.putpalette([0, 0, 0, *RED] + [0] * (256 * 3 - 6))
    im.paste(1, (0, 0, 16, 32))  # left half red, right half index 0 = transparent
    data = encode(im, "PNG", transparency=0)

    out, info = imaging.normalise_input(data)

    assert info.mime == imaging.MIME_PNG and info.format == "PNG"
    result = decode(out)
    assert result.mode == "RGBA"
    assert result.getpixel((2, 2)) == (*RED, 255)
    assert result.getpixel((30, 2))[3] == 0


def test_unused_alpha_gives_jpeg() -> None:
    data = encode(solid((*GREEN, 255), mode="RGBA"), "TIFF")

    out, info = imaging.normalise_input(data)

    assert info.mime == imaging.MIME_JPEG
    assert close_to(mean_color(out), GREEN)


def test_16bit_png_is_scaled_not_clipped() -> None:
    data = encode(Image.new("I;16", (32, 32), 40000), "PNG")
    assert data[24] == 16  # IHDR bit depth

    out, info = imaging.normalise_input(data)

    assert out != data
    assert info.mime == imaging.MIME_JPEG
    assert decode(out).mode == "RGB"
    assert close_to(mean_color(out), (155, 155, 155), 3)  # 40000/257, not 255


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_formats_are_converted(fmt: str) -> None:
    data = encode(solid(BLUE), fmt)

    out, info = imaging.normalise_input(data)

    assert info.mime == imaging.MIME_JPEG
    assert (info.width, info.height) == (64, 48)
    assert close_to(mean_color(out), BLUE)


def _heic_bytes() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    try:
        heif = pillow_heif.from_pillow(solid(RED, (96, 64)))
        buf = io.BytesIO()
        heif.save(buf, quality=95)
    except (RuntimeError, ValueError, OSError) as exc:  # pragma: no cover - env dependent
        pytest.skip(f"pillow-heif cannot encode HEIC here: {exc}")
    return buf.getvalue()


def test_heic_is_converted_to_jpeg() -> None:
    data = _heic_bytes()

    probed = imaging.probe(data)
    out, info = imaging.normalise_input(data)

    assert probed.mime == imaging.MIME_HEIC and probed.format == "HEIF"
    assert (probed.width, probed.height) == (96, 64)
    assert info.mime == imaging.MIME_JPEG and (info.width, info.height) == (96, 64)
    assert close_to(mean_color(out), RED, 25)


# --- normalise_input: passthrough and scaling ----------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("WEBP", imaging.MIME_WEBP), ("JPEG", imaging.MIME_JPEG), ("PNG", imaging.MIME_PNG)],
)
def test_suitable_input_passes_through_unchanged(fmt: str, mime: str) -> None:
    data = encode(solid(GREEN, (300, 200)), fmt)

    out, info = imaging.normalise_input(data)

    assert out is data
    assert info == ImageInfo(mime, 300, 200, fmt)


def test_jpeg_with_orientation_1_passes_through() -> None:
    exif = Image.Exif()
    exif[0x0112] = 1
    data = encode(solid(GREEN), "JPEG", exif=exif.tobytes())

    out, _info = imaging.normalise_input(data)

    assert out is data


def test_large_input_is_downscaled_to_max_side() -> None:
    data = encode(solid(BLUE, (4000, 3000)), "JPEG")

    out, info = imaging.normalise_input(data)

    assert (info.width, info.height) == (2048, 1536)
    assert decode(out).size == (2048, 1536)
    out_small, info_small = imaging.normalise_input(data, max_side=1000)
    assert (info_small.width, info_small.height) == (1000, 750)
    assert close_to(mean_color(out_small), BLUE)


# --- errors --------------------------------------------------------------------------------


def test_empty_input() -> None:
    expect_code("empty", imaging.normalise_input, b"")
    expect_code("empty", imaging.probe, b"")
    expect_code("empty", imaging.validate_output, b"")


def test_random_bytes_are_not_an_image() -> None:
    noise = random.Random(7).randbytes(4096)
    expect_code("not_image", imaging.normalise_input, noise)
    expect_code("not_image", imaging.probe, noise)


def test_truncated_png_is_not_an_image() -> None:
    rng = random.Random(3)
    im = Image.frombytes("RGB", (128, 128), rng.randbytes(128 * 128 * 3))
    data = encode(im, "PNG")
    truncated = data[: len(data) // 2]

    expect_code("not_image", imaging.probe, truncated)
    expect_code("not_image", imaging.normalise_input, truncated)
    expect_code("not_image", imaging.validate_output, truncated)


def test_known_but_unsupported_format() -> None:
    data = encode(solid(RED, (32, 32)), "ICO")
    expect_code("unsupported", imaging.probe, data)
    expect_code("unsupported", imaging.normalise_input, data)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_input_is_refused_unless_first_frame(fmt: str) -> None:
    data = animated(fmt)

    expect_code("animated", imaging.normalise_input, data)
    assert imaging.probe(data).width == 64  # probing an animation is fine

    out, info = imaging.normalise_input(data, first_frame=True)
    assert info.mime in (imaging.MIME_JPEG, imaging.MIME_PNG)
    assert close_to(mean_color(out), RED, 20)


def test_single_frame_gif_is_accepted() -> None:
    data = encode(solid(GREEN), "GIF")

    out, info = imaging.normalise_input(data)

    assert info.mime == imaging.MIME_JPEG
    assert close_to(mean_color(out), GREEN, 20)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "size",
    [
        (9000, 8000),  # 72 MP: over our 25 MP guard, under Pillow's limit
        (10_000, 10_000),  # 100 MP: Pillow warns, our guard refuses
        (20_000, 20_000),  # 400 MP: Pillow raises DecompressionBombError
    ],
)
def test_decompression_bomb_header(size: tuple[int, int]) -> None:
    data = png_header_only(*size)
    expect_code("too_large_pixels", imaging.probe, data)
    expect_code("too_large_pixels", imaging.normalise_input, data)
    expect_code("too_large_pixels", imaging.validate_output, data)


def test_pixel_guard_parameter() -> None:
    data = encode(solid(RED, (100, 100)), "PNG")
    expect_code("too_large_pixels", imaging.probe, data, max_pixels=5000)
    expect_code("too_large_pixels", imaging.normalise_input, data, max_pixels=5000)
    assert imaging.probe(data, max_pixels=10_000).width == 100


# --- probe / validate_output ---------------------------------------------------------------


def test_probe_reports_mime_size_and_format() -> None:
    data = encode(solid(RED, (123, 45)), "JPEG")
    assert imaging.probe(data) == ImageInfo(imaging.MIME_JPEG, 123, 45, "JPEG")


def test_probe_of_a_big_jpeg_reads_the_whole_stream_at_reduced_scale() -> None:
    noisy = Image.effect_noise((1280, 960), 60).convert("RGB")
    data = encode(noisy, "JPEG", quality=90)
    assert imaging.probe(data) == ImageInfo(imaging.MIME_JPEG, 1280, 960, "JPEG")  # full size
    # cut off near the end: only the last rows are missing, found all the same
    expect_code("not_image", imaging.probe, data[: len(data) - 2000])


def test_validate_output_accepts_png_and_jpeg() -> None:
    png = encode(solid(RED, (20, 10)), "PNG")
    jpeg = encode(solid(RED, (20, 10)), "JPEG")
    assert imaging.validate_output(png) == ImageInfo(imaging.MIME_PNG, 20, 10, "PNG")
    assert imaging.validate_output(jpeg) == ImageInfo(imaging.MIME_JPEG, 20, 10, "JPEG")


def test_validate_output_rejects_text_and_other_formats() -> None:
    expect_code("not_image", imaging.validate_output, b'{"error": "quota exceeded"}')
    expect_code("not_image", imaging.validate_output, encode(solid(RED), "BMP"))


# --- telegram_photo ------------------------------------------------------------------------


def test_small_png_is_sent_as_is() -> None:
    data = encode(solid(RED, (1024, 1024)), "PNG")
    assert imaging.telegram_photo(data, imaging.probe(data)) is None


def test_big_noise_png_gets_a_preview_that_fits() -> None:
    noise = Image.frombytes("L", (4096, 4096), random.Random(5).randbytes(4096 * 4096))
    data = encode(noise, "PNG", compress_level=1)
    assert len(data) > 16_000_000
    info = imaging.probe(data)

    preview = imaging.telegram_photo(data, info)

    assert preview is not None
    assert preview[:3] == b"\xff\xd8\xff"
    assert len(preview) < 10_000_000
    width, height = decode(preview).size
    assert width + height <= 10_000 and max(width, height) <= 2560


def test_side_sum_over_limit_gets_a_preview() -> None:
    data = encode(solid(BLUE, (9000, 1200)), "PNG")
    info = imaging.probe(data)
    assert len(data) < 10_000_000

    preview = imaging.telegram_photo(data, info)

    assert preview is not None
    assert decode(preview).size == (2560, 341)


def test_transparent_png_preview_is_flattened_on_white() -> None:
    data = encode(solid((0, 0, 0, 0), (11_000, 10), mode="RGBA"), "PNG")

    preview = imaging.telegram_photo(data, imaging.probe(data))

    assert preview is not None
    assert close_to(mean_color(preview), (255, 255, 255), 3)


# --- async wrappers ------------------------------------------------------------------------


async def test_async_wrappers_run_in_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, int] = {}

    def spy(name: str) -> None:
        original = getattr(imaging, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen[name] = threading.get_ident()
            return original(*args, **kwargs)

        monkeypatch.setattr(imaging, name, wrapper)

    for name in ("probe", "normalise_input", "validate_output", "telegram_photo"):
        spy(name)
    data = encode(solid(RED), "PNG")

    info = await imaging.aprobe(data)
    out, _ = await imaging.anormalise_input(data)
    assert (await imaging.avalidate_output(out)).width == info.width
    big = encode(Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)), "PNG")
    assert len(big) > imaging.INLINE_CHECK_BYTES
    await imaging.avalidate_output(big)
    webp = encode(solid(RED), "WEBP")
    preview = await imaging.atelegram_photo(webp, await imaging.aprobe(webp))
    assert preview is not None and preview[:3] == b"\xff\xd8\xff"  # a JPEG, made in a thread
    with pytest.raises(ImageInputError):
        await imaging.aprobe(b"")

    loop_thread = threading.get_ident()
    assert set(seen) == {"probe", "normalise_input", "validate_output", "telegram_photo"}
    assert all(ident != loop_thread for ident in seen.values())


async def test_a_small_png_answer_is_checked_without_a_thread_hop_other_kinds_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    original = imaging.validate_output

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(imaging, "validate_output", spy)
    await imaging.avalidate_output(encode(solid(RED), "PNG"))
    await imaging.avalidate_output(encode(solid(RED), "WEBP"))  # a decode: never on the loop
    assert threads[0] == threading.get_ident() and threads[1] != threading.get_ident()


async def test_a_result_that_fits_send_photo_needs_no_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: Any) -> None:
        raise AssertionError("telegram_photo should not run")

    monkeypatch.setattr(imaging, "telegram_photo", never)
    data = encode(solid(RED), "PNG")
    assert await imaging.atelegram_photo(data, imaging.probe(data)) is None


def test_ext_by_mime() -> None:
    assert imaging.EXT_BY_MIME[imaging.MIME_PNG] == "png"
    assert imaging.EXT_BY_MIME[imaging.MIME_JPEG] == "jpg"
    assert imaging.EXT_BY_MIME[imaging.MIME_WEBP] == "webp"


def test_heic_orientation_is_applied_once() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    im = Image.new("RGB", (80, 40), BLUE)
    im.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    heif = pillow_heif.from_pillow(im)
    heif.info["exif"] = exif.tobytes()
    buf = io.BytesIO()
    try:
        heif.save(buf, quality=95)
    except (RuntimeError, ValueError, OSError) as exc:  # pragma: no cover - env dependent
        pytest.skip(f"pillow-heif cannot encode HEIC here: {exc}")

    out, info = imaging.normalise_input(buf.getvalue())

    assert (info.width, info.height) == (40, 80)
    result = decode(out).convert("RGB")
    assert close_to(result.getpixel((2, 2)), RED, 40)
    assert close_to(result.getpixel((37, 77)), BLUE, 40)


def test_png_orientation_read_only_when_it_has_an_exif_chunk() -> None:
    im = Image.new("RGB", (80, 40), BLUE)
    im.paste(RED, (0, 0, 40, 40))
    plain = encode(im, "PNG")
    assert b"eXIf" not in plain
    out, info = imaging.normalise_input(plain)
    assert out == plain and (info.width, info.height) == (80, 40)  # passes through as it is

    exif = Image.Exif()
    exif[0x0112] = 6
    turned = encode(im, "PNG", exif=exif.tobytes())
    assert b"eXIf" in turned
    out, info = imaging.normalise_input(turned)
    assert out != turned and (info.width, info.height) == (40, 80)  # orientation applied
    assert close_to(decode(out).convert("RGB").getpixel((2, 2)), RED, 40)
