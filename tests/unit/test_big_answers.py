"""Big upstream answers: base64 decoded by pybase64 (bot.providers.extract.decode_base64) and PNG
answers checked by their chunk CRCs instead of a pixel decode (bot.imaging.validate_output).

Each case runs on a whole string and on a span of a bigger text (a data URI among an answer's
words), which is decoded in pieces: the piece size is patched down to a few characters so small
payloads take the many-piece path; one variant uses the real 1 MiB pieces.
Every payload must be accepted or refused as the stdlib decoder of git 6c7f747 did:
`reference_decode` is that decoder, kept here verbatim. A refusal is the same BAD_RESPONSE with
the same reason; the library's own wording after the colon may differ.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator

import pytest
from PIL import Image

from bot import imaging
from bot.imaging import ImageInfo, ImageInputError
from bot.providers import extract
from bot.providers.base import InputImage
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import decode_base64, ref_from_url_or_data, split_data_uri

# --- base64 ---------------------------------------------------------------------------------

_NON_B64 = extract._NON_B64


def reference_decode(payload: str) -> bytes:
    """decode_base64 as it was before slicing (git 6c7f747): whitespace and missing padding
    tolerated, anything else refused."""
    raw = payload.encode("ascii", "replace")
    if _NON_B64.search(raw):
        raw = b"".join(raw.split())
        if _NON_B64.search(raw):
            raise extract.bad_response("invalid base64 in image data")
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise extract.bad_response("truncated base64 in image data")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise extract.bad_response(f"invalid base64 in image data: {exc}") from None


def outcome(fn: object, payload: str) -> tuple[str, object]:
    try:
        return "ok", fn(payload)  # type: ignore[operator]
    except ProviderError as exc:
        assert exc.kind is ProviderErrorKind.BAD_RESPONSE
        return "error", str(exc).split(":")[0]


Decode = Callable[[str], bytes]


@pytest.fixture(params=[None, 1 << 20, 8, 4], ids=["whole", "span-1MiB-pieces", "span-8", "span-4"])
def decode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Decode:
    if request.param is None:
        return decode_base64
    monkeypatch.setattr(extract, "B64_SLICE", request.param)

    def span(payload: str) -> bytes:
        return decode_base64(f"![x]({payload}) and more", 5, 5 + len(payload))

    return span


def payloads() -> Iterator[bytes]:
    rnd = random.Random(1234)
    for n in (*range(0, 20), 31, 32, 33, 100, 1000, 4099):
        yield rnd.randbytes(n)
    yield b"\x00" * 50
    yield b"\xff" * 50
    yield bytes(range(256))


def test_clean_base64_decodes_like_b64decode(decode: Decode) -> None:
    for data in payloads():
        text = base64.b64encode(data).decode()
        assert decode(text) == base64.b64decode(text) == data


def test_wrapped_and_spaced_base64_decodes_like_b64decode(decode: Decode) -> None:
    for data in payloads():
        wrapped = base64.encodebytes(data).decode()  # 76-char lines with \n
        assert decode(wrapped) == base64.b64decode(wrapped) == data
        crlf = wrapped.replace("\n", "\r\n")
        assert decode(crlf) == data
        text = base64.b64encode(data).decode()
        spaced = " ".join(text[i : i + 7] for i in range(0, len(text), 7))
        assert decode(f"\t{spaced} \n") == data


def test_missing_padding_is_tolerated(decode: Decode) -> None:
    for data in payloads():
        text = base64.b64encode(data).decode().rstrip("=")
        assert decode(text) == data


def test_a_span_of_the_payload_is_decoded() -> None:
    data = random.Random(5).randbytes(3000)
    text = base64.b64encode(data).decode()
    assert decode_base64(f"xx{text}yy", 2, 2 + len(text)) == data
    assert decode_base64(f"xx{text}", 2) == data


def test_a_big_payload() -> None:
    data = random.Random(7).randbytes(1_700_000)  # ~2.3 M characters: three 1 MiB pieces
    text = base64.b64encode(data).decode()
    assert len(text) > 2 * extract.B64_SLICE
    wrapped = base64.encodebytes(data).decode()
    middle = extract.B64_SLICE + 5  # inside the second piece of a span
    bad = text[:middle] + "*" + text[middle + 1 :]
    padded_inside = text[: extract.B64_SLICE - 2] + "==" + text[extract.B64_SLICE :]
    for decode in (decode_base64, lambda p: decode_base64(f"<{p}>", 1, len(p) + 1)):
        assert decode(text) == data
        assert decode(wrapped) == data
        with pytest.raises(ProviderError, match="invalid base64"):
            decode(bad)
        assert outcome(decode, padded_inside) == outcome(reference_decode, padded_inside)
        assert outcome(decode, padded_inside)[0] == "error"


INVALID = [
    "Q",  # one character is no byte
    "QUJDR",
    "QUJD*A==",
    "QUJD\x00A==",
    "QUJDRA==é",
    "QUJD RA=\u00a0=",  # a non-ASCII space
    "QUJD-_==",  # the URL-safe alphabet is not the standard one
    "=QUJD",
    "QQ==QQ==",  # padding inside the data
    "QUJDRA==QUJDRA==",
    "QUJDRA==QUJDRA==QUJDRA==",
    "QUJDRA=AQUJD",
    "QUJD\nRA==\nQUJD",
    "data:image/png;base64,QUJD",
]


@pytest.mark.parametrize("payload", INVALID)
def test_invalid_base64_is_refused_as_before(decode: Decode, payload: str) -> None:
    expected = outcome(reference_decode, payload)
    assert expected[0] == "error"
    assert outcome(decode, payload) == expected


@pytest.mark.parametrize(
    "payload",
    ["", "====", "QUJD", "QUJDRA", "QUJDRA=", "QUJDRA===", "QUJD====", " QUJD\n", "QU\r\nJD RA"],
)
def test_odd_but_accepted_forms_decode_as_before(decode: Decode, payload: str) -> None:
    assert outcome(decode, payload) == outcome(reference_decode, payload)


def test_data_uris_decode(decode: Decode) -> None:
    data = random.Random(3).randbytes(3000)
    text = base64.b64encode(data).decode()
    assert split_data_uri(f"data:image/png;base64,{text}") == (data, "image/png")
    assert split_data_uri(f"data:image/jpeg;name=x.jpg;BASE64,{text}") == (data, "image/jpeg")
    wrapped = base64.encodebytes(data).decode()
    assert split_data_uri(f"data:image/webp;base64,{wrapped}") == (data, "image/webp")
    assert split_data_uri(f"data:;base64,{text.rstrip('=')}") == (data, "application/octet-stream")
    ref = ref_from_url_or_data(f"  data:image/png;base64,{text}\n")
    assert (ref.data, ref.mime) == (data, "image/png")


def test_broken_data_uris_are_refused(decode: Decode) -> None:
    text = base64.b64encode(b"x" * 601).decode()
    assert text.endswith("==")
    with pytest.raises(ProviderError, match="invalid base64"):
        split_data_uri(f"data:image/png;base64,{text[:200]}!{text[201:]}")
    with pytest.raises(ProviderError, match="invalid base64"):
        split_data_uri(f"data:image/png;base64,{text}{text}")  # padding inside the data
    with pytest.raises(ProviderError, match="empty data URI"):
        split_data_uri("data:image/png;base64,")


def test_data_uri_of_an_input_image_round_trips() -> None:
    data = random.Random(9).randbytes(1001)
    uri = extract.data_uri(InputImage(data, "image/png"))
    assert uri == "data:image/png;base64," + base64.b64encode(data).decode()
    assert split_data_uri(uri) == (data, "image/png")


# --- PNG answers checked by chunk CRCs --------------------------------------------------------


def noisy_png(size: tuple[int, int] = (300, 200), seed: int = 5) -> bytes:
    """RGB noise compresses badly: the PNG gets several IDAT chunks."""
    im = Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def chunks(png: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, type, data length) of each chunk."""
    out = []
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        out.append((pos, png[pos + 4 : pos + 8], length))
        pos += 12 + length
    return out


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def expect_bad(data: bytes) -> None:
    with pytest.raises(ImageInputError) as caught:
        imaging.validate_output(data)
    assert caught.value.code == "not_image"


PNG = noisy_png()
IDATS = [c for c in chunks(PNG) if c[1] == b"IDAT"]
IEND = next(c for c in chunks(PNG) if c[1] == b"IEND")


def test_the_sample_png_has_several_idat_chunks() -> None:
    assert len(IDATS) >= 3
    assert IEND[0] + 12 == len(PNG)


def test_a_valid_png_passes() -> None:
    assert imaging.validate_output(PNG) == ImageInfo(imaging.MIME_PNG, 300, 200, "PNG")
    small = io.BytesIO()
    Image.new("P", (7, 3)).save(small, "PNG")
    assert imaging.validate_output(small.getvalue()) == ImageInfo("image/png", 7, 3, "PNG")


def test_a_valid_png_with_chunks_after_the_pixels_passes() -> None:
    text = chunk(b"tEXt", b"Comment\x00made by a relay")
    data = PNG[: IEND[0]] + text + PNG[IEND[0] :]
    assert imaging.validate_output(data).width == 300


def test_an_animated_png_passes() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert imaging.validate_output(buf.getvalue()) == ImageInfo("image/png", 16, 16, "PNG")


@pytest.mark.parametrize("which", [0, 1, -1])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_flipped_byte_in_idat_is_refused(which: int, where: str) -> None:
    pos, _, length = IDATS[which]
    at = pos + 8 + {"start": 0, "middle": length // 2, "end": length - 1}[where]
    expect_bad(flipped(PNG, at))


@pytest.mark.parametrize("which", [0, -1])
def test_a_flipped_crc_is_refused(which: int) -> None:
    pos, _, length = IDATS[which]
    expect_bad(flipped(PNG, pos + 8 + length + 2))


def test_a_flipped_byte_in_a_chunk_after_the_pixels_is_refused() -> None:
    text = chunk(b"tEXt", b"Comment\x00made by a relay")
    data = PNG[: IEND[0]] + text + PNG[IEND[0] :]
    expect_bad(flipped(data, IEND[0] + 10))


def test_a_flipped_byte_in_the_header_is_refused() -> None:
    expect_bad(flipped(PNG, 8 + 8 + 9))  # IHDR's bit depth / colour type


@pytest.mark.parametrize(
    "cut",
    [
        IDATS[0][0] + 100,  # inside the first IDAT
        IDATS[-1][0] + 8 + IDATS[-1][2] // 2,  # inside the last IDAT
        IDATS[-1][0] + 8 + IDATS[-1][2] + 2,  # inside the last IDAT's CRC
        IEND[0],  # everything but IEND
        IEND[0] + 6,  # half of IEND
        len(PNG) - 1,  # IEND without its last CRC byte
    ],
    ids=["first-idat", "last-idat", "last-crc", "no-iend", "half-iend", "iend-crc"],
)
def test_a_truncated_png_is_refused(cut: int) -> None:
    data = PNG[:cut]
    if cut == len(PNG) - 1:
        # Pillow stops at IEND's type and never reads its CRC: nothing is missing that
        # carries pixels, so this one passes (as it did with a full decode)
        assert imaging.validate_output(data).width == 300
        return
    expect_bad(data)


def test_a_png_missing_iend_is_refused() -> None:
    expect_bad(PNG[: IEND[0]])
    garbage_tail = PNG[: IEND[0]] + b"\x00" * 12  # a zero-length chunk of no known type
    expect_bad(garbage_tail)


def test_a_chunk_claiming_more_bytes_than_there_are_is_refused() -> None:
    pos, _, _ = IDATS[-1]
    expect_bad(PNG[:pos] + struct.pack(">I", 10**8) + PNG[pos + 4 :])


def test_the_pixel_guard_still_applies() -> None:
    with pytest.raises(ImageInputError) as caught:
        imaging.validate_output(PNG, max_pixels=300 * 200 - 1)
    assert caught.value.code == "too_large_pixels"


async def test_the_async_check_gives_the_same_answers() -> None:
    assert await imaging.avalidate_output(PNG) == ImageInfo("image/png", 300, 200, "PNG")
    pos, _, length = IDATS[1]
    with pytest.raises(ImageInputError) as caught:
        await imaging.avalidate_output(flipped(PNG, pos + 8 + length // 2))
    assert caught.value.code == "not_image"
