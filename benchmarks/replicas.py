"""The bot as real processes in three set-ups, on the loopback fakes:

    python -m benchmarks.replicas [--chats 10 100] [--latency 2.0] [--warmup 3]
                                  [--only NAME ...] [--limiter-off] [--json FILE]

* sqlite-polling: one `python -m bot`, the default SQLite file under its DATA_DIR, long polling;
* pg-webhook-1: one `python -m bot` on PostgreSQL in webhook mode (the fake POSTs to it);
* pg-webhook-2: two on one PostgreSQL database and one DATA_DIR, webhook mode, the same secret,
  behind `tests.fakes.balancer.FakeBalancer` (round robin).

PostgreSQL rows need TEST_DATABASE_URL (`eval "$(.ci/postgres start)"`): a new database per row,
dropped after it. Per (set-up, K): fresh fakes and DATA_DIR, the process(es) started and waited
for (polling: a getUpdates; webhook: /readyz 200 on each replica, one setWebhook per replica),
`--warmup` jobs in chats of their own (upstream latency 0), then K private chats of K users send
one prompt each at once, upstream latency L. The limiter keeps its default (on) and the fake
enforces Telegram's flood limits; `--limiter-off`: TELEGRAM_RATE_LIMITER=false, no fake limits.
Printed per row: wall (first text queued -> last photo answered), overhead p50/p95 (text queued
-> its sendPhoto arriving at the fake, minus L), Bot API calls per image (all but getUpdates,
until 1 s after the last photo, over K), upstream requests of the measured chats (K: one each),
jobs per replica (`jobs.owner`, replicas in start order). Numbers only; no time is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.fakes import TimedImageAPI, answer_image
from benchmarks.run import API_KEY, MODEL, PROMPT, ROOT, _chat_of, machine, pct
from tests import postgres
from tests.fakes.balancer import FakeBalancer
from tests.fakes.ports import free_port
from tests.fakes.telegram_api import FakeTelegram

SETUPS: dict[str, tuple[bool, int]] = {  # name -> (PostgreSQL + webhook, replicas)
    "sqlite-polling": (False, 1),
    "pg-webhook-1": (True, 1),
    "pg-webhook-2": (True, 2),
}
SECRET = "bench_Replicas-1"
WARM_BASE, CHAT_BASE = 900_000, 1_000_000
_JOB = re.compile(r"job-(\d+)")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")  # a log line's time


@dataclass
class Row:
    setup: str
    chats: int
    limiter: bool
    done: int = 0
    wall_s: float | None = None
    overhead_p50_ms: float | None = None
    overhead_p95_ms: float | None = None
    calls_per_image: float | None = None
    calls: dict[str, int] = field(default_factory=dict)
    upstream: int = 0
    jobs_per_replica: list[int] = field(default_factory=list)
    owners_all: list[list[Any]] = field(default_factory=list)  # the unfiltered GROUP BY owner
    forwarded: list[int] = field(default_factory=list)  # requests the balancer passed on
    exit_codes: list[int | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        jobs = " · ".join(map(str, self.jobs_per_replica)) if len(self.jobs_per_replica) > 1 else "—"  # fmt: skip
        return (self.setup, str(self.chats), f"{self.done}/{self.chats}", _fmt(self.wall_s, 2),
                _fmt(self.overhead_p50_ms), _fmt(self.overhead_p95_ms),
                _fmt(self.calls_per_image, 2), str(self.upstream), jobs,
                " · ".join(map(str, self.forwarded)) or "—")  # fmt: skip


class Proc:
    """One `python -m bot`, its output read all along (a full pipe would block it)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = asyncio.create_task(proc.communicate())

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = await asyncio.wait_for(asyncio.shield(self.output), 30)
        except TimeoutError:
            self.proc.kill()
            out, err = await self.output
        return (out + err).decode(errors="replace")


def _env(tg: FakeTelegram, api: TimedImageAPI, data: Path, limiter: bool, **extra: str) -> dict[str, str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1", TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root,
        IMAGE_API_DIALECT="openai-chat", IMAGE_API_BASE_URL=f"{api.root}/v1",
        IMAGE_API_KEY=API_KEY, IMAGE_MODEL=MODEL, DATA_DIR=str(data), LOG_LEVEL="WARNING", **extra,
    )  # fmt: skip
    if not limiter:
        env["TELEGRAM_RATE_LIMITER"] = "false"
    return env


async def _spawn(env: dict[str, str], cwd: Path) -> Proc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return Proc(proc)


async def _until(
    check: Callable[[], bool | Awaitable[bool]], procs: list[Proc], what: str, seconds: float = 90
) -> bool:
    """Polls `check` until it holds (True); False after `seconds`. A bot exiting is an error."""
    deadline = time.monotonic() + seconds
    while True:
        held = check()
        if held if isinstance(held, bool) else await held:
            return True
        if any(p.proc.returncode is not None for p in procs):
            raise RuntimeError(f"a bot exited (codes {[p.proc.returncode for p in procs]}): {what}")
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def _ready(http: aiohttp.ClientSession, port: int) -> bool:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    return False


def _photos(tg: FakeTelegram, chats: set[int], since: int = 0) -> dict[int, list[Any]]:
    """chat -> its answered, successful sendPhoto calls (from calls[since:])."""
    out: dict[int, list[Any]] = {}
    for c in tg.calls[since:]:
        if c.method == "sendPhoto" and c.answered is not None and c.ok and _chat_of(c) in chats:
            out.setdefault(_chat_of(c) or 0, []).append(c)
    return out


def _send(tg: FakeTelegram, chats: list[int]) -> dict[int, float]:
    sent: dict[int, float] = {}
    for chat in chats:
        sent[chat] = time.monotonic()
        tg.send_text(chat, f"job-{chat} {PROMPT}", user=tg.user(chat, f"U{chat}"))
    return sent


async def run_row(setup: str, k: int, args: argparse.Namespace, tmp: Path) -> Row:
    webhook, replicas = SETUPS[setup]
    row = Row(setup, k, not args.limiter_off)
    tg, api = FakeTelegram(), TimedImageAPI(answer_image("flat"), api_key=API_KEY)
    tg.photo_thumbnails = False
    tg.flood_limit = row.limiter
    await tg.start()
    await api.start()
    balancer: FakeBalancer | None = None
    database, url = None, ""
    data = tmp / "data"
    data.mkdir()
    procs: list[Proc] = []
    try:
        if webhook:
            database = await asyncio.to_thread(postgres.create)
            url = postgres.url_of(database)
        ports = [free_port() for _ in range(replicas)]
        hook = f"http://127.0.0.1:{ports[0]}/hook"
        if replicas > 1:
            balancer = FakeBalancer([f"http://127.0.0.1:{p}" for p in ports], retry_down_after=60)
            hook = f"{await balancer.start()}/hook"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for port in ports:  # one after the other: the first one migrates the new database
                extra = {}
                if webhook:
                    extra = dict(
                        DATABASE_URL=url, TELEGRAM_WEBHOOK_URL=hook,
                        TELEGRAM_WEBHOOK_SECRET=SECRET, WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                    )  # fmt: skip
                procs.append(await _spawn(_env(tg, api, data, row.limiter, **extra), tmp))
                if webhook and not await _until(partial(_ready, http, port), procs, "readyz"):
                    raise RuntimeError(f"no /readyz 200 on port {port}")
        if webhook:
            ready = await _until(
                lambda: sum(c.ok for c in tg.calls_of("setWebhook")) >= replicas, procs, "hook"
            )
        else:
            ready = await _until(lambda: bool(tg.calls_of("getUpdates")), procs, "polling")
        if not ready:
            raise RuntimeError("no setWebhook seen" if webhook else "no getUpdates seen")
        # warm-up: first-use costs are paid per process, not per measured job
        warm = [WARM_BASE + i for i in range(args.warmup)]
        api.latency = 0.0
        _send(tg, warm)
        if not await _until(lambda: len(_photos(tg, set(warm))) == len(warm), procs, "warm-up"):
            if not _photos(tg, set(warm)):
                raise RuntimeError(f"warm-up: none of {len(warm)} photos in 90 s")
            row.warnings.append(f"warm-up: {len(_photos(tg, set(warm)))}/{len(warm)} photos")
        await asyncio.sleep(0.5)
        api.latency = args.latency
        chats = [CHAT_BASE + i for i in range(k)]
        calls0, requests0 = len(tg.calls), len(api.requests)
        t0 = time.monotonic()
        sent = _send(tg, chats)
        limit = max(60.0, 10 * (args.latency + k / 30))
        await _until(lambda: len(_photos(tg, set(chats), calls0)) == k, procs, "photos", limit)
        await asyncio.sleep(1.0)  # trailing calls (status removal, drafts) land in the count
        _measure(row, tg, api, chats, sent, t0, calls0, requests0, args.latency)
        if database:
            measured = "SELECT owner, count(*) FROM jobs WHERE chat_id >= ? GROUP BY owner"
            owners = dict(await asyncio.to_thread(postgres.fetch, url, measured, CHAT_BASE))
            order = "SELECT id FROM replicas ORDER BY started_at"
            ids = [r[0] for r in await asyncio.to_thread(postgres.fetch, url, order)]
            row.jobs_per_replica = [owners.pop(i, 0) for i in ids] + list(owners.values())
            every = "SELECT owner, count(*) FROM jobs GROUP BY owner"
            row.owners_all = [list(r) for r in await asyncio.to_thread(postgres.fetch, url, every)]
        if balancer is not None:
            row.forwarded = [balancer.forwarded[b] for b in balancer.backends]
    except Exception as exc:  # report and go on: a benchmark, not a test
        row.warnings.append(f"row failed: {exc!r}")
    finally:
        for i, p in enumerate(procs):
            text = await p.stop()
            row.exit_codes.append(p.proc.returncode)
            row.logs += [f"[replica {i + 1}] {line}" for line in _log_summary(text)]
        if balancer is not None:
            await balancer.stop()
        await api.stop()
        await tg.stop()
        if database:
            await asyncio.to_thread(postgres.drop, database)
    if any(code != 0 for code in row.exit_codes):
        row.warnings.append(f"exit codes {row.exit_codes}")
    return row


def _log_summary(text: str, most: int = 25) -> list[str]:
    """The log's records, exception lines and frames in bot/, each once with its count."""
    seen: Counter[str] = Counter()
    for line in text.splitlines():
        keep = line.strip() and not line.startswith((" ", "Traceback", "The above", "During"))
        if keep or f"{ROOT}/bot/" in line:
            seen[_STAMP.sub("", line.strip())[:300]] += 1
    return [f"{line} (×{n})" if n > 1 else line for line, n in list(seen.items())[:most]]


def _measure(
    row: Row, tg: FakeTelegram, api: TimedImageAPI, chats: list[int], sent: dict[int, float],
    t0: float, calls0: int, requests0: int, latency: float,
) -> None:  # fmt: skip
    photos = _photos(tg, set(chats), calls0)
    row.done = len(photos)
    if row.done < len(chats):
        row.warnings.append(f"only {row.done}/{len(chats)} chats got their photo")
    twice = [c for c, calls in photos.items() if len(calls) > 1]
    if twice:
        row.warnings.append(f"{len(twice)} chats got more than one photo, e.g. {twice[:3]}")
    overhead = [(calls[0].at - sent[c] - latency) * 1000 for c, calls in photos.items()]
    row.overhead_p50_ms = _round(pct(overhead, 0.5))
    row.overhead_p95_ms = _round(pct(overhead, 0.95))
    if photos and row.done == len(chats):
        row.wall_s = _round(max(calls[0].answered for calls in photos.values()) - t0, 3)
    methods = Counter(c.method for c in tg.calls[calls0:] if c.method != "getUpdates")
    row.calls = dict(sorted(methods.items()))
    row.calls_per_image = round(sum(methods.values()) / len(chats), 2)
    wanted = set(chats)
    asked: Counter[int] = Counter()
    for r in api.requests[requests0:]:
        found = _JOB.search(json.dumps(r.json))
        if found and int(found.group(1)) in wanted:
            asked[int(found.group(1))] += 1
    row.upstream = sum(asked.values())
    other = len(api.requests) - requests0 - row.upstream
    if row.upstream != len(chats) or any(n != 1 for n in asked.values()) or other:
        again = sum(1 for n in asked.values() if n > 1)
        row.warnings.append(
            f"exactly-once: {row.upstream} upstream requests for {len(chats)} chats "
            f"({len(asked)} chats asked, {again} more than once, {other} other requests)"
        )


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def render(rows: list[Row]) -> str:
    head = ("set-up", "K", "done", "wall s", "overhead p50 ms", "p95 ms", "calls/image",
            "upstream", "jobs per replica", "balancer")  # fmt: skip
    body = [r.cells() for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
             for line in [head, *body]]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        for w in r.warnings:
            lines.append(f"WARNING {r.setup} K={r.chats}: {w}")
        if r.calls:
            lines.append(f"  {r.setup} K={r.chats} calls: {r.calls}")
        lines += [f"  {r.setup} K={r.chats} log: {line}" for line in r.logs]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


async def run_all(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for setup in [s for s in SETUPS if not args.only or s in args.only]:
        if SETUPS[setup][0] and not os.environ.get("TEST_DATABASE_URL"):
            print(f"{setup}: skipped, TEST_DATABASE_URL is not set (.ci/postgres start)")
            continue
        for k in args.chats:
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"bench-{setup}-{k}-") as tmp:
                row = await run_row(setup, k, args, Path(tmp))
            rows.append(row)
            print(
                f"[{time.monotonic() - started:5.1f} s] {setup} K={k}: {row.done}/{k} done, "
                f"wall {row.wall_s} s, p50 {row.overhead_p50_ms} ms, {len(row.warnings)} warnings",
                file=sys.stderr, flush=True,
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replicas", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--chats", type=int, nargs="+", default=[10, 100], help="values of K")
    parser.add_argument("--latency", type=float, default=2.0, help="upstream latency L (s)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up jobs per row")
    parser.add_argument("--only", nargs="+", choices=list(SETUPS), help="run only these set-ups")
    parser.add_argument("--limiter-off", action="store_true", help="TELEGRAM_RATE_LIMITER=false")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} CPUs; Python {info['python']}; {info['os']}. "
          f"L = {args.latency} s, limiter {'off' if args.limiter_off else 'on'}, "
          f"{args.warmup} warm-up jobs per row.", flush=True)  # fmt: skip
    rows = asyncio.run(run_all(args))
    print(render(rows))
    if args.json:
        out: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
        out["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
