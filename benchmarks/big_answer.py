"""Peak memory of the bot's HTTP client when a relay streams a huge answer (the answer cap).

    python -m benchmarks.big_answer                 # a 300 MB answer, and a 60 MB one (under the cap)
    python -m benchmarks.big_answer --sizes 300 --bot-src /tmp/old   # the same for another tree

The fake image API (the suite's, `stream_answer_bytes`: one endless data URI, chunked, no
Content-Length) runs in one process; a second, fresh process imports `bot` (from `--bot-src`
when given, to measure an older checkout), makes one openai-chat call with the real provider
and prints its peak RSS (`VmHWM`) before and after the call. Numbers only, nothing asserted.
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


async def _serve(size: int) -> None:
    from tests.fakes.image_api import FakeImageAPI

    api = FakeImageAPI(api_key="sk-bench")
    api.stream_answer_bytes = size
    print(await api.start(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await api.stop()


async def _client(root: str) -> None:
    import httpx

    from bot.providers.base import Endpoint, ImageRequest
    from bot.providers.errors import ProviderError
    from bot.providers.openai_chat import OpenAIChatProvider

    endpoint = Endpoint(
        name="bench", dialect="openai-chat", base_url=f"{root}/v1", api_key="sk-bench",
        timeout=300.0,
    )
    async with httpx.AsyncClient(trust_env=False) as http:
        before = _kb("VmHWM")
        started = time.monotonic()
        try:
            await OpenAIChatProvider(endpoint, http).generate(
                ImageRequest(prompt="x", model="gemini-2.5-flash-image")
            )
            outcome = "accepted"
        except ProviderError as exc:
            outcome = f"{exc.kind.value}: {exc.detail[:70]}"
        seconds = time.monotonic() - started
    print(f"{before} {_kb('VmHWM')} {seconds:.1f} {outcome}", flush=True)


async def _measure(size_mb: int, bot_src: str | None) -> str:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.big_answer", "--serve", str(size_mb * 1_000_000),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None and server.stdin is not None
    root = (await server.stdout.readline()).decode().strip()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (bot_src, str(ROOT)) if p)
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.big_answer", "--client", root,
        cwd=bot_src or ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    server.stdin.close()
    await server.wait()
    before, after, seconds, outcome = out.decode().strip().split(" ", 3)
    grew = (int(after) - int(before)) / 1024
    return (
        f"{size_mb:>5} MB answer | peak RSS {int(before) / 1024:7.1f} -> {int(after) / 1024:7.1f} MB"
        f" (+{grew:.1f} MB) | {seconds} s | {outcome}"
    )


async def _main(sizes: list[int], bot_src: str | None) -> None:
    where = bot_src or "this tree"
    print(f"bot from {where}")
    for size in sizes:
        print(await _measure(size, bot_src), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300,60", help="answer sizes in MB, comma-separated")
    parser.add_argument("--bot-src", help="a directory holding another `bot` package to measure")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
    elif args.client is not None:
        asyncio.run(_client(args.client))
    else:
        bot_src = str(Path(args.bot_src).resolve()) if args.bot_src else None
        asyncio.run(_main([int(s) for s in args.sizes.split(",")], bot_src))


if __name__ == "__main__":
    main()
