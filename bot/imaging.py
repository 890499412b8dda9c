"""Every Pillow operation the bot needs: probing, normalising inputs, checking outputs, previews.

The functions here are synchronous and pure (bytes in, bytes out). Images can be 4K and 16 MB,
so async code must call the ``a*`` wrappers, which run the work in a thread.

Safety rules applied to all decoding:
* only a whitelist of Pillow plugins is used to decode (no EPS/Ghostscript, PSD, ICO, ...);
* the pixel count from the header is checked against ``max_pixels`` BEFORE pixel data is
  decoded (Pillow's own ``DecompressionBombError``/``Warning`` are mapped to the same code);
  baseline JPEGs may be bigger when libjpeg's scaled decode (``draft``, 1/2 to 1/8) brings
  them within it, and every decode of one is drafted so: no decode ever holds more pixels;
* truncated or corrupt files fail with ``ImageInputError("not_image")``.
"""

from __future__ import annotations

import asyncio
import io
import struct
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

from PIL import Image, ImageCms, ImageOps

T = TypeVar("T")

# --- constants -----------------------------------------------------------------------------

MIME_PNG: Final = "image/png"
MIME_JPEG: Final = "image/jpeg"
MIME_WEBP: Final = "image/webp"
MIME_GIF: Final = "image/gif"
MIME_HEIC: Final = "image/heic"
MIME_HEIF: Final = "image/heif"
MIME_AVIF: Final = "image/avif"
MIME_BMP: Final = "image/bmp"
MIME_TIFF: Final = "image/tiff"

EXT_BY_MIME: Final[dict[str, str]] = {
    MIME_PNG: "png",
    MIME_JPEG: "jpg",
    MIME_WEBP: "webp",
    MIME_GIF: "gif",
    MIME_HEIC: "heic",
    MIME_HEIF: "heif",
    MIME_AVIF: "avif",
    MIME_BMP: "bmp",
    MIME_TIFF: "tiff",
}

#: Formats an upstream answer may hold (validate_output refuses any other).
ANSWER_MIMES: Final = frozenset({MIME_PNG, MIME_JPEG, MIME_WEBP, MIME_GIF})

#: Decompression-bomb guard: the most pixels any decode may hold, checked from the header
#: before decoding. 25 MP is the biggest photo Telegram sends (5000x5000 within its
#: width + height limit of 10 000) and keeps a 24 MP phone picture sent as a file; at Pillow's
#: 4 bytes a pixel one decoded frame stays within 100 MB.
MAX_PIXELS: Final = 25_000_000
#: Formats whose decoder holds more than one full-size copy: libwebp's canvas, the frame it
#: hands Pillow and Pillow's own image (385 MB for 25 MP against 160 MB for a PNG).
_PIXEL_COST: Final[dict[str, int]] = {"WEBP": 2}
#: libjpeg's scaled decodes (``Image.draft``): 1/1, 1/2, 1/4, 1/8.
_JPEG_SCALES: Final = (1, 2, 4, 8)

JPEG_QUALITY: Final = 92

#: Telegram ``sendPhoto`` limits (PROTOCOLS §5).
TG_PHOTO_MAX_BYTES: Final = 10_000_000
TG_PHOTO_MAX_SIDE_SUM: Final = 10_000
TG_PHOTO_MAX_RATIO: Final = 20
#: Preview produced when an image cannot go to ``sendPhoto`` as-is.
PREVIEW_MAX_SIDE: Final = 2560
PREVIEW_TARGET_BYTES: Final = 9_000_000
PREVIEW_QUALITIES: Final = (90, 82, 75, 65, 50)

# Pillow plugin names allowed to decode user input / upstream output.
_INPUT_FORMATS: Final = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
_OUTPUT_FORMATS: Final = ("PNG", "JPEG", "MPO", "WEBP", "GIF")
# Formats that can hold an animation; other multi-frame files (MPO stereo/depth JPEGs,
# multi-page TIFF, HEIF collections) are decoded from their first/primary image.
_ANIMATED_FORMATS: Final = frozenset({"GIF", "PNG", "WEBP"})
# Plain 8-bit modes that upstream decoders read without surprises (passthrough allowed);
# palette, 1-bit, LA, CMYK and 16-bit files are converted to RGB/RGBA.
_PASSTHROUGH_MODES: Final = frozenset({"L", "RGB", "RGBA"})
_PASSTHROUGH_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_EXIF_ORIENTATION: Final = 0x0112

# Exceptions Pillow and its plugins raise on corrupt or truncated data.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    RuntimeError,
    ZeroDivisionError,
    struct.error,
)


class ImageInputError(Exception):
    """An image we cannot use. ``code`` is one of:

    ``empty``, ``not_image``, ``animated``, ``too_large_pixels``, ``unsupported``.
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int
    format: str  # Pillow format name: "JPEG", "PNG", "WEBP", "HEIF", ...


# --- HEIF opener ---------------------------------------------------------------------------

_heif_lock = threading.Lock()
_heif_registered = False


def _ensure_heif() -> None:
    """Register pillow-heif's opener once, on first use."""
    global _heif_registered
    if _heif_registered:
        return
    with _heif_lock:
        if not _heif_registered:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_registered = True


# --- sniffing ------------------------------------------------------------------------------

_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm"})
_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1", b"mif2"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})


def sniff_mime(data: bytes) -> str | None:
    """MIME type from magic bytes, or None when the signature is not one we know."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return MIME_PNG
    if data.startswith(b"\xff\xd8\xff"):
        return MIME_JPEG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return MIME_GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MIME_WEBP
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return MIME_TIFF
    if data.startswith(b"BM"):
        return MIME_BMP
    if data[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    return None


def _sniff_isobmff(data: bytes) -> str | None:
    box_size = int.from_bytes(data[:4], "big")
    end = min(max(box_size, 16), 64, len(data))
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major not in _HEIC_BRANDS and brands & _AVIF_BRANDS):
        return MIME_AVIF
    if major in _HEIC_BRANDS or brands & _HEIC_BRANDS:
        return MIME_HEIC
    if brands & _HEIF_BRANDS:
        return MIME_HEIF
    return None


def _mime_of(data: bytes, im: Image.Image) -> str:
    sniffed = sniff_mime(data)
    if sniffed is not None:
        return sniffed
    fmt = im.format or ""
    return Image.MIME.get(fmt, f"image/{fmt.lower() or 'unknown'}")


# --- decoding ------------------------------------------------------------------------------


def _available(formats: Iterable[str]) -> list[str]:
    Image.init()
    return [f for f in formats if f in Image.OPEN]


def _open_header(data: bytes, formats: Iterable[str], max_pixels: int) -> Image.Image:
    """Open (header only) with a plugin whitelist and apply the pixel guard."""
    if not data:
        raise ImageInputError("empty", "no bytes")
    _ensure_heif()
    try:
        im = Image.open(io.BytesIO(data), formats=_available(formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError("too_large_pixels", str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageInputError(_unknown_code(data), str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageInputError("not_image", f"{type(exc).__name__}: {exc}") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise ImageInputError("not_image", f"bad size {width}x{height}")
    if _jpeg_scale_within(im, max_pixels) is None:
        im.close()
        raise ImageInputError("too_large_pixels", f"{width}x{height} exceeds {max_pixels} pixels")
    return im


def _is_drafty_jpeg(im: Image.Image) -> bool:
    """A baseline JPEG: libjpeg decodes it scaled, in memory for the scaled image only.

    A progressive one keeps every DCT coefficient of the full size while it decodes, so
    scaling it saves nothing and it must fit the pixel guard as it is."""
    return im.format in ("JPEG", "MPO") and not im.info.get("progressive")


def _jpeg_scale_within(im: Image.Image, max_pixels: int, want: int = 1) -> int | None:
    """The decode scale (1 = full size) that keeps this image within ``max_pixels``.

    ``want``: the biggest scale the caller can use (the decode stays at least that size).
    None: no scale will do (too big for the guard and no cheap reduction)."""
    width, height = im.size
    if not _is_drafty_jpeg(im):
        cost = _PIXEL_COST.get(im.format or "", 1)
        return 1 if width * height * cost <= max_pixels else None
    fitting = [s for s in _JPEG_SCALES if -(-width // s) * -(-height // s) <= max_pixels]
    if not fitting:
        return None
    return max(fitting[0], max((s for s in _JPEG_SCALES if s <= want), default=1))


def _draft(im: Image.Image, max_pixels: int, want: int = 1) -> None:
    """Make a JPEG decode at the smallest cost that keeps ``want`` and the pixel guard.

    Pillow allows one draft per open image: every decode path calls this exactly once."""
    scale = _jpeg_scale_within(im, max_pixels, want)
    if scale is None:
        raise ImageInputError("too_large_pixels", f"{im.width}x{im.height} too big to decode")
    if scale > 1 and _is_drafty_jpeg(im):
        im.draft(im.mode, (-(-im.width // scale), -(-im.height // scale)))


def _scale_for_side(size: tuple[int, int], max_side: int) -> int:
    """The biggest JPEG scale whose decode is still at least ``max_side`` on its long side."""
    long_side = max(size)
    return max(s for s in _JPEG_SCALES if s == 1 or -(-long_side // s) >= max_side)


def _unknown_code(data: bytes) -> str:
    """Not in our whitelist: "unsupported" if Pillow knows the format at all, else "not_image".

    Only the header is parsed here (no ``load()``), so no risky decoder runs.
    """
    try:
        with Image.open(io.BytesIO(data)):
            return "unsupported"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "unsupported"
    except _DECODE_ERRORS:
        return "not_image"


def _is_animated(im: Image.Image) -> bool:
    if im.format not in _ANIMATED_FORMATS:
        return False
    try:
        return bool(getattr(im, "is_animated", False))
    except _DECODE_ERRORS as exc:
        raise ImageInputError("not_image", f"{type(exc).__name__}: {exc}") from exc


def _load_first_frame(im: Image.Image, max_pixels: int, want: int = 1) -> None:
    """Decode the first frame (a JPEG as small as ``want`` and the pixel guard allow);
    truncation or corruption becomes "not_image"."""
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        _draft(im, max_pixels, want)
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError("too_large_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageInputError("not_image", f"{type(exc).__name__}: {exc}") from exc


def _decode(
    data: bytes, formats: Iterable[str], max_pixels: int, want: int = 1
) -> tuple[Image.Image, bool]:
    """Open, guard, detect animation, decode the first frame. Returns (image, animated)."""
    im = _open_header(data, formats, max_pixels)
    try:
        animated = _is_animated(im)
        _load_first_frame(im, max_pixels, want)
    except ImageInputError:
        im.close()
        raise
    return im, animated


def _info(data: bytes, im: Image.Image) -> ImageInfo:
    return ImageInfo(_mime_of(data, im), im.width, im.height, im.format or "")


# --- probe / validate ----------------------------------------------------------------------


def probe(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Identify an input image and check that its (first frame) pixel data fully decodes.

    Animation is not an error here (``normalise_input`` decides); unsupported formats are.
    """
    im = _open_header(data, _INPUT_FORMATS, max_pixels)
    with im:
        info = _info(data, im)
        _is_animated(im)
        # libjpeg still reads and entropy-decodes the whole stream at 1/8 scale, so
        # truncation and corruption show up as at full size, in a fraction of the time.
        _load_first_frame(im, max_pixels, want=8)
    return info


def validate_output(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Check an image returned by upstream: PNG/JPEG/WebP/GIF magic, decodable, within guard."""
    if not data:
        raise ImageInputError("empty", "no bytes")
    mime = sniff_mime(data)
    if mime not in ANSWER_MIMES:
        raise ImageInputError("not_image", f"unexpected signature {data[:12]!r}")
    if mime == MIME_PNG:
        return _verify_png(data, max_pixels)
    im = _open_header(data, _OUTPUT_FORMATS, max_pixels)
    with im:
        info = ImageInfo(mime, im.width, im.height, im.format or "")  # before a scaled decode
        _is_animated(im)
        _load_first_frame(im, max_pixels, want=8)  # a JPEG's errors show at 1/8 scale too
        return info


def _verify_png(data: bytes, max_pixels: int) -> ImageInfo:
    """A PNG answer: header, pixel guard, and every chunk's CRC up to IEND -- no pixel decode.

    Truncated or corrupted files fail their CRC or miss IEND. Decoding all pixels only to
    throw them away would put a full decode of every answer between the upstream's answer and
    the user's photo.
    """
    im = _open_header(data, ("PNG",), max_pixels)
    info = ImageInfo(MIME_PNG, im.width, im.height, "PNG")
    try:
        im.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError("too_large_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageInputError("not_image", f"{type(exc).__name__}: {exc}") from exc
    finally:
        im.close()
    return info


# --- normalise -----------------------------------------------------------------------------


def _orientation(data: bytes, im: Image.Image) -> int:
    if im.format == "PNG" and b"eXIf" not in data:
        # No EXIF chunk: orientation 1. (Pillow finds an eXIf chunk after the pixel data only
        # by decoding all of it, for every result refined.)
        return 1
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) len(4) "IHDR"(4) w(4) h(4) depth(1)
    return data[24] if len(data) > 24 and data[12:16] == b"IHDR" else 8


def _can_pass_through(data: bytes, im: Image.Image, animated: bool, max_side: int) -> bool:
    if im.format not in _PASSTHROUGH_FORMATS or animated:
        return False
    if im.mode not in _PASSTHROUGH_MODES or _orientation(data, im) != 1:
        return False
    if im.format == "PNG" and _png_bit_depth(data) > 8:
        return False
    return max(im.size) <= max_side


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or "transparency" in im.info


def _wide_to_8bit(im: Image.Image) -> Image.Image:
    """I;16*/I/F → L, scaling 16-bit ranges down instead of clipping them at 255."""
    if im.mode == "F":
        _lo, hi = im.getextrema()
        scale = 255.0 / hi if isinstance(hi, float) and hi > 255.0 else 1.0
        return im.point(lambda v: v * scale).convert("L")
    wide = im.convert("I") if im.mode != "I" else im
    _lo, hi = wide.getextrema()
    if im.mode.startswith("I;16") or (isinstance(hi, int) and hi > 255):
        wide = wide.point(lambda v: v * (1 / 257))
    return wide.convert("L")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return im.convert("RGB")


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB, or RGBA when the alpha channel is really used."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _wide_to_8bit(im)
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im)
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        alpha_min, _alpha_max = rgba.getchannel("A").getextrema()
        return rgba if isinstance(alpha_min, int) and alpha_min < 255 else rgba.convert("RGB")
    try:
        return im if im.mode == "RGB" else im.convert("RGB")
    except ValueError as exc:
        raise ImageInputError("unsupported", f"cannot convert mode {im.mode}") from exc


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(im: Image.Image, max_side: int) -> Image.Image:
    if max(im.size) <= max_side:
        return im
    size = _scaled_size(im.width, im.height, max_side)
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(im: Image.Image, icc: bytes | None) -> tuple[bytes, str, str]:
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if im.mode == "RGBA":
        im.save(out, "PNG", **extra)
        return out.getvalue(), MIME_PNG, "PNG"
    im.save(out, "JPEG", quality=JPEG_QUALITY, **extra)
    return out.getvalue(), MIME_JPEG, "JPEG"


def _rgb_icc(im: Image.Image) -> bytes | None:
    """Keep an ICC profile only if it describes RGB data (e.g. Display P3 from iPhones)."""
    icc = im.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and im.mode in ("RGB", "RGBA") else None


def normalise_input(
    data: bytes,
    *,
    max_side: int = 2048,
    first_frame: bool = False,
    max_pixels: int = MAX_PIXELS,
    probed: bool = False,
) -> tuple[bytes, ImageInfo]:
    """Prepare an image for upstream: upright, RGB(A), long side ≤ max_side, JPEG/PNG.

    Already-suitable JPEG/PNG/WebP files come back as the ORIGINAL bytes. Animated files
    raise ``animated`` unless ``first_frame`` is true, in which case frame 0 is used.
    Re-encoded output carries no EXIF (so no GPS) but keeps an RGB ICC profile.

    ``probed``: these exact bytes already passed ``probe`` (their pixel data decoded in full),
    so a file that goes up as-is is judged from its header alone; pixels are decoded only to
    re-encode. A phone JPEG then costs no second decode.
    """
    if probed:
        im, animated = _open_header(data, _INPUT_FORMATS, max_pixels), False
        try:
            animated = _is_animated(im)
        except ImageInputError:
            im.close()
            raise
    else:
        im, animated = _decode_for_side(data, max_pixels, max_side)
    with im:
        if animated and not first_frame:
            frames = getattr(im, "n_frames", "?")
            raise ImageInputError("animated", f"animated {im.format} ({frames} frames)")
        if _can_pass_through(data, im, animated, max_side):
            return data, _info(data, im)
        if probed:
            _load_first_frame(im, max_pixels, _scale_for_side(im.size, max_side))
        icc = _rgb_icc(im)
        return _reencode(im, icc, max_side)


def _reduced(im: Image.Image, max_side: int) -> Image.Image:
    """A big decode shrunk by a whole factor (box filter, cheap) before any full-size copy:
    turning and converting a 25 MP image would each cost another 100 MB."""
    factor = max(im.size) // max_side  # never below max_side: the final resize keeps quality
    if factor < 2:
        return im
    try:
        return im.reduce(factor)
    except ValueError:  # a mode reduce() does not take (1-bit, palette): converted as is
        return im


def _decode_for_side(data: bytes, max_pixels: int, max_side: int) -> tuple[Image.Image, bool]:
    """Decode an input, a big JPEG only as big as ``max_side`` needs."""
    im = _open_header(data, _INPUT_FORMATS, max_pixels)
    try:
        animated = _is_animated(im)
        _load_first_frame(im, max_pixels, _scale_for_side(im.size, max_side))
    except ImageInputError:
        im.close()
        raise
    return im, animated


def _upright(im: Image.Image) -> Image.Image:
    """Turned by its EXIF orientation; exif_transpose copies even an upright image."""
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        orientation = 1
    return ImageOps.exif_transpose(im) if orientation != 1 else im


def _reencode(im: Image.Image, icc: bytes | None, max_side: int) -> tuple[bytes, ImageInfo]:
    try:
        upright = _upright(_reduced(im, max_side))
        converted = _fit(_to_rgb_or_rgba(upright), max_side)
    except ImageInputError:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageInputError("unsupported", f"{type(exc).__name__}: {exc}") from exc
    payload, mime, fmt = _encode(converted, icc)
    return payload, ImageInfo(mime, converted.width, converted.height, fmt)


# --- Telegram preview, colour --------------------------------------------------------------


def _sendable_as_is(data: bytes, info: ImageInfo) -> bool:
    return info.mime in (MIME_JPEG, MIME_PNG) and fits_telegram_photo(
        len(data), info.width, info.height
    )


def fits_telegram_photo(size_bytes: int, width: int, height: int) -> bool:
    """Whether ``sendPhoto`` accepts these numbers (PROTOCOLS §5)."""
    if size_bytes > TG_PHOTO_MAX_BYTES or width + height > TG_PHOTO_MAX_SIDE_SUM:
        return False
    return max(width, height) <= TG_PHOTO_MAX_RATIO * min(width, height)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for JPEG: transparent areas go onto white instead of black."""
    im = _upright(im)
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _wide_to_8bit(im)
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im)
    if not _has_alpha(im):
        return im if im.mode == "RGB" else im.convert("RGB")
    rgba = im.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _jpeg(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _preview(im: Image.Image) -> bytes:
    rgb = _fit(_flatten(im), PREVIEW_MAX_SIDE)
    while True:
        for quality in PREVIEW_QUALITIES:
            payload = _jpeg(rgb, quality)
            if len(payload) <= PREVIEW_TARGET_BYTES:
                return payload
        smaller = max(1, int(max(rgb.size) * 0.75))
        rgb = _fit(rgb, smaller)


def telegram_photo(data: bytes, info: ImageInfo, *, max_pixels: int = MAX_PIXELS) -> bytes | None:
    """None if ``data`` can go to ``sendPhoto`` as-is; otherwise a JPEG preview that fits.

    Only JPEG and PNG are sent as-is; other formats always get a JPEG preview. The preview is
    only scaled (long side ≤ 2560, bytes ≤ 9 MB), never padded or cropped. For ratio > 20
    scaling cannot help, so such images still get a preview and Telegram may refuse it;
    send the original as a document in that case.
    """
    if _sendable_as_is(data, info):
        return None
    im = _open_header(data, _INPUT_FORMATS, max_pixels)
    with im:
        _load_first_frame(im, max_pixels, _scale_for_side(im.size, PREVIEW_MAX_SIDE))
        return _preview(_reduced(im, PREVIEW_MAX_SIDE))


# --- async wrappers ------------------------------------------------------------------------

# Pillow releases the GIL while it decodes and resizes, but not everywhere (the JPEG encoder
# holds it chunk by chunk). Ten 4K previews in ten threads kept the event loop waiting for
# the GIL for up to a second; two threads leave it a fair share and still use both cores.
IMAGE_THREADS = 2
_IMAGE_LANE = ThreadPoolExecutor(max_workers=IMAGE_THREADS, thread_name_prefix="imaging")


INLINE_CHECK_BYTES = 64_000


async def _in_image_lane(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        _IMAGE_LANE, partial(fn, *args, **kwargs)
    )


async def aprobe(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    return await _in_image_lane(probe, data, max_pixels=max_pixels)


async def anormalise_input(
    data: bytes,
    *,
    max_side: int = 2048,
    first_frame: bool = False,
    max_pixels: int = MAX_PIXELS,
    probed: bool = False,
) -> tuple[bytes, ImageInfo]:
    return await _in_image_lane(
        normalise_input,
        data,
        max_side=max_side,
        first_frame=first_frame,
        max_pixels=max_pixels,
        probed=probed,
    )


async def avalidate_output(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    if len(data) <= INLINE_CHECK_BYTES and sniff_mime(data) == MIME_PNG:
        # a small PNG's check reads chunks, never pixels: quicker than the thread hop
        return validate_output(data, max_pixels=max_pixels)
    return await _in_image_lane(validate_output, data, max_pixels=max_pixels)


async def atelegram_photo(data: bytes, info: ImageInfo) -> bytes | None:
    if _sendable_as_is(data, info):  # the usual case: no pixels to touch, no thread to wait for
        return None
    return await _in_image_lane(telegram_photo, data, info)
