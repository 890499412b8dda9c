"""Peak memory of the bot's HTTP client with huge answers (the answer cap), or a burst of big ones.

    python -m benchmarks.big_answer                 # a 300 MB answer, and a 60 MB one (under the cap)
    python -m benchmarks.big_answer --sizes 300 --bot-src /tmp/old   # the same for another tree
    python -m benchmarks.big_answer --burst 500     # 500 answers of a 1K image (~1.4 MB) at once

The fake image API (the suite's, `stream_answer_bytes`: one endless data URI, chunked, no
Content-Length; with --burst the benchmarks' `TimedImageAPI` answering every request with a
realistic 1K PNG after one second) runs in one process; a second, fresh process imports `bot`
(from `--bot-src` when given, to measure an older checkout), makes the openai-chat calls with
the real provider (all at once with --burst) and prints its peak RSS (`VmHWM`) before and
after. Only the provider's path is measured (answers read, parsed, decoded), not storing or
sending. Numbers only, nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


BURST_LATENCY = 1.0  # seconds before the fake answers: every request of a burst is in by then


async def _serve(size: int) -> None:
    from tests.fakes.image_api import FakeImageAPI

    if size:
        api = FakeImageAPI(api_key="sk-bench")
        api.stream_answer_bytes = size
    else:
        from benchmarks.fakes import TimedImageAPI, answer_image

        api = TimedImageAPI(answer_image("1k"), api_key="sk-bench")
        api.latency = BURST_LATENCY
    print(await api.start(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await api.stop()


async def _client(root: str, calls: int) -> None:
    import httpx

    from bot.providers.base import Endpoint, ImageRequest
    from bot.providers.errors import ProviderError
    from bot.providers.openai_chat import OpenAIChatProvider

    endpoint = Endpoint(
        name="bench",
        dialect="openai-chat",
        base_url=f"{root}/v1",
        api_key="sk-bench",
        timeout=300.0,
    )
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as http:
        provider = OpenAIChatProvider(endpoint, http)
        request = ImageRequest(prompt="x", model="gemini-2.5-flash-image")

        async def one() -> int:  # the images let go at once, as the bot does once they are files
            return len((await provider.generate(request)).images)

        before = _kb("VmHWM")
        started = time.monotonic()
        outcomes = await asyncio.gather(*(one() for _ in range(calls)), return_exceptions=True)
        seconds = time.monotonic() - started
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if not failed:
        outcome = "accepted" if calls == 1 else f"{calls} accepted"
    elif isinstance(failed[0], ProviderError):
        outcome = f"{len(failed)}/{calls} refused, {failed[0].kind.value}: {failed[0].detail[:70]}"
    else:
        outcome = f"{len(failed)}/{calls} failed: {failed[0]!r}"[:120]
    print(f"{before} {_kb('VmHWM')} {seconds:.1f} {outcome}", flush=True)


async def _measure(size_mb: int, bot_src: str | None, calls: int = 1) -> str:
    """One call of a `size_mb` answer, or (size 0) `calls` calls of a 1K image's answer at once."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.big_answer",
        "--serve",
        str(size_mb * 1_000_000),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None and server.stdin is not None
    root = (await server.stdout.readline()).decode().strip()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (bot_src, str(ROOT)) if p)
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.big_answer",
        "--client",
        root,
        "--calls",
        str(calls),
        cwd=bot_src or ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    server.stdin.close()
    await server.wait()
    before, after, seconds, outcome = out.decode().strip().split(" ", 3)
    grew = (int(after) - int(before)) / 1024
    what = f"{size_mb:>5} MB answer" if size_mb else f"{calls} x 1K answers at once"
    return (
        f"{what} | peak RSS {int(before) / 1024:7.1f} -> {int(after) / 1024:7.1f} MB"
        f" (+{grew:.1f} MB) | {seconds} s | {outcome}"
    )


async def _main(sizes: list[int], bot_src: str | None, burst: int | None) -> None:
    where = bot_src or "this tree"
    print(f"bot from {where}")
    if burst:
        print(await _measure(0, bot_src, burst), flush=True)
        return
    for size in sizes:
        print(await _measure(size, bot_src), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300,60", help="answer sizes in MB, comma-separated")
    parser.add_argument("--bot-src", help="a directory holding another `bot` package to measure")
    parser.add_argument("--burst", type=int, help="this many 1K answers at once instead of --sizes")
    parser.add_argument("--calls", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
    elif args.client is not None:
        asyncio.run(_client(args.client, args.calls))
    else:
        bot_src = str(Path(args.bot_src).resolve()) if args.bot_src else None
        asyncio.run(_main([int(s) for s in args.sizes.split(",")], bot_src, args.burst))


if __name__ == "__main__":
    main()
