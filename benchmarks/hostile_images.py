"""Peak memory of the bot's image paths for the worst input of each kind it accepts.

Each case runs in a fresh Python process that imports ``bot.imaging`` from ``--code`` (default:
this checkout), then feeds one hostile file through what the bot does with it: an input goes
probe -> normalise_input (what take_user_image and the upload do), a result goes
validate_output -> telegram_photo (what _store_outputs and the sender do). The table shows
the process's peak RSS above its size after imports, and what the bot said.

    python -m benchmarks.hostile_images                 # this checkout
    git archive main bot | tar -x -C /tmp/main-code     # the code before, for comparison
    python -m benchmarks.hostile_images --code /tmp/main-code
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PIL import Image

BOMB = 8000  # 64 MP: exactly what the old 64 MP guard let through
BIG = 5000  # 25 MP: the most the new guard decodes (the biggest photo Telegram sends)

_CHILD = r"""
import json, resource, sys, time
from bot import imaging
def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path, role = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
imaging._ensure_heif()
base = rss_kb()
started = time.perf_counter()
try:
    if role == "input":
        info = imaging.probe(data)
        out, oinfo = imaging.normalise_input(data, max_side=2048, probed=True)
        verdict = f"used ({info.width}x{info.height} -> {oinfo.width}x{oinfo.height})"
    else:
        info = imaging.validate_output(data)
        imaging.telegram_photo(data, info)
        verdict = f"used ({info.width}x{info.height})"
except imaging.ImageInputError as exc:
    verdict = f"refused: {exc.code}"
except MemoryError:
    verdict = "MemoryError"
seconds = time.perf_counter() - started
print(json.dumps({"peak_mb": (rss_kb() - base) / 1024, "seconds": seconds, "verdict": verdict}))
"""


def _png_bomb(side: int) -> bytes:
    """An RGB PNG of zeros, compressed row by row (never held decoded here)."""
    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (3 * side)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _pillow(fmt: str, side: int, mode: str = "RGB", **params: object) -> Callable[[], bytes]:
    def make() -> bytes:
        buf = io.BytesIO()
        Image.new(mode, (side, side), (200, 30, 30) if mode == "RGB" else 7).save(
            buf, fmt, **params
        )
        return buf.getvalue()

    return make


def _heic(side: int) -> Callable[[], bytes]:
    def make() -> bytes:
        import pillow_heif

        pillow_heif.register_heif_opener()
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (200, 30, 30)).save(buf, "HEIF", quality=30)
        return buf.getvalue()

    return make


BOTH = ("input", "output")
CASES: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {}
for _side in (BOMB, BIG):
    _sz = f"{_side}x{_side}"
    CASES |= {
        f"PNG {_sz}": (partial(_png_bomb, _side), BOTH),
        f"JPEG baseline {_sz}": (_pillow("JPEG", _side, quality=50), BOTH),
        f"JPEG progressive {_sz}": (_pillow("JPEG", _side, quality=50, progressive=True), BOTH),
        f"WebP lossless {_sz}": (_pillow("WEBP", _side, lossless=True), BOTH),
        f"GIF {_sz}": (_pillow("GIF", _side, mode="P"), BOTH),
        f"TIFF deflate {_sz}": (_pillow("TIFF", _side, compression="tiff_deflate"), ("input",)),
        f"HEIC {_sz}": (_heic(_side), ("input",)),
    }
# WebP counts double (its decoder holds extra copies): the biggest square it still decodes.
CASES["WebP lossless 3500x3500"] = (_pillow("WEBP", 3500, lossless=True), BOTH)


def _files(cache: Path) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (make, _roles) in CASES.items():
        path = cache / (name.replace(" ", "_") + ".bin")
        if not path.exists():
            try:
                path.write_bytes(make())
            except Exception as exc:  # e.g. no HEIF encoder in this pillow-heif build
                print(f"skipping {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
        paths[name] = path
    return paths


def _run(code: Path, path: Path, role: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), role],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=600,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"peak_mb": float("nan"), "seconds": float("nan"), "verdict": f"crashed: {tail}"}
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hostile")
    args = parser.parse_args()
    files = _files(args.cache)
    print(f"code: {args.code}")
    print(f"| {'file':<28} | {'KB':>6} | {'as':<6} | {'peak MB':>8} | {'s':>5} | bot's answer")
    print(f"|{'-' * 30}|{'-' * 8}|{'-' * 8}|{'-' * 10}|{'-' * 7}|{'-' * 40}")
    for name, path in files.items():
        for role in CASES[name][1]:
            r = _run(args.code, path, role)
            print(
                f"| {name:<28} | {path.stat().st_size // 1024:>6} | {role:<6} "
                f"| {r['peak_mb']:>8.0f} | {r['seconds']:>5.2f} | {r['verdict']}"
            )


if __name__ == "__main__":
    main()
