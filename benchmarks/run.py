"""What the bot costs per image, and how it scales with chats.

    python -m benchmarks.run [--quick] [--latency 5] [--out benchmarks/results.json]
                             [--only NAME...] [--keep]

Starts the real bot (`python -m bot`, a subprocess) against the fake Telegram Bot API and the
fake image API (aiohttp servers on 127.0.0.1, in this process), drives it like users would,
and prints one table: metric | target | measured | ok?. Nothing leaves 127.0.0.1. Not a test:
it never fails the suite; it reports. Results also go to `benchmarks/results.json`
(`python -m benchmarks.compare A.json B.json` shows two runs side by side). About 6 minutes on
2 cores; --quick about 3 (fewer samples, K = 1, 100, 500, no real-size 500-chat run).

Scenarios (each with fresh fakes, a fresh bot process and a temp DATA_DIR; three warm-up jobs
first, so per-process first-use costs are not counted per job):

* overhead-1k / overhead-4k: photo + caption edits arriving at a steady pace in fresh chats,
  upstream latency 2.5 s (so the "Drawing… N s" status message appears and must be removed),
  answers of 1024x1024 PNG (~1.4 MB) or 4096x4096 PNG (~16.5 MB). Per job: update delivered
  -> upstream request arrives, plus upstream answer ready -> photo upload starts. Then the
  same jobs through `benchmarks/floor.py` (only the HTTP calls the work needs) on the same fakes.
* burst-4k: 10 chats ask for a 4K image at the same moment: worst loop stall, RSS per job.
* chats-K-off / chats-K-on: K chats (1, 10, 100, 500) each send a prompt at once, upstream
  latency L, flat 1024x1024 answers (4 KB); chats-500-off-big: the same with 1.4 MB answers.
  "off": the fake enforces no flood limits and the bot is told to switch its rate limiter off
  (TELEGRAM_RATE_LIMITER=off); "on": the fake enforces Telegram's limits (30 messages/s per
  bot, 1/s per chat with a burst of 3, 20/min per group) and the bot runs its limiter.
* chats-10-def / chats-100-def: K chats at once with the settings a user gets (the default caps,
  the limiter on, the fake enforcing Telegram's limits): wall against 1.1 L + K/30 s, and the
  Bot API calls per image, status messages included.
* real-100: the same with real-looking upstreams: each call takes 5-15 s (drawn evenly, seeded),
  answers of a 1K image's size (~1.4 MB).
* capacity-16: 100 chats at once with the default settings against an upstream that takes 16
  requests at a time (429 with Retry-After beyond that), latency L: wall time against the
  ideal schedule ceil(100/16) x L, the 429s the bot drew, and the requests in flight over time.
* storage: `benchmarks/storage.py` in its own process.

Measurement points: the fake Telegram notes when a getUpdates answer carries each update and
when each call arrives and is answered; the fake image API notes when each request arrives
and when its answer is ready. The bot reports its event-loop lag through BOT_DIAGNOSTICS_FILE
(`bot/diagnostics.py`); peak RSS is VmHWM from /proc/<pid>/status, CPU time from
/proc/<pid>/stat. CLOCK_MONOTONIC is shared by all processes, so the timestamps compare
directly. The fakes' own loop lag is recorded too (`fakes_loop_max_ms` in the results): on a
small machine they compete with the bot for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.fakes import AnswerImage, TimedImageAPI, answer_image, user_photo
from bot.diagnostics import LoopMonitor, proc_status_kb
from bot.telegram.ratelimit import MESSAGE_METHODS  # what Telegram counts as messages
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-bench"
MODEL = "gemini-2.5-flash-image"
FLOOD_PER_SECOND = 30
WARM_UP_JOBS = 3  # before every measured run, each in a chat of its own
SETUP_METHODS = frozenset(
    {"getMe", "getUpdates", "deleteWebhook", "setMyCommands", "getMyCommands", "close", "logOut"}
)
PROMPT = "a red panda reading a newspaper in a café, watercolor"
CAPTION = "make the sky purple and add a tiny hot-air balloon"


@dataclass
class Scenario:
    name: str
    answer: str  # "1k" | "4k"
    jobs: int
    latency: float
    gap: float = 0.0  # seconds between job arrivals; 0 = all at once
    photo: bool = False  # photo + caption (edit) instead of a text prompt
    flood: bool = False  # the fake enforces Telegram's flood limits; the bot's limiter is on
    floor: bool = False  # also run the floor on the same fakes
    timeout: float = 120.0
    caps: bool = (
        False  # keep the default fair-use caps (MAX_CONCURRENT_JOBS, ...) instead of lifting them
    )
    capacity: int | None = None  # the upstream answers 429 beyond this many requests in flight
    spread: tuple[float, float] | None = None  # each upstream call takes a latency drawn from this


@dataclass
class Phase:
    """One run of one program (the bot or the floor) through a scenario."""

    who: str
    jobs: int = 0
    done: int = 0
    wall: float | None = None  # first update queued -> last result answered
    overhead_ms: list[float] = field(default_factory=list)
    pre_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # per method, for the job chats
    too_many: int = 0  # 429 answers drawn
    too_many_unretried: int = 0  # 429s not followed by a success of the same call
    errors: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    idle_rss_mb: float | None = None
    loop_max_ms: float | None = None  # worst loop stall in the measured window
    loop_max_ms_all: float | None = None  # including start-up
    fakes_loop_max_ms: float | None = None
    upstream_parallel: int = 0  # most upstream requests in flight at once
    cpu_ms_per_job: float | None = None  # the program's CPU time (all threads) / jobs
    upstream_429: int = 0  # requests the upstream refused for its capacity
    in_flight_max: int = 0  # most requests the upstream worked on at once
    # (seconds since the first job, requests in flight at the upstream), a few samples
    in_flight_samples: list[tuple[float, int]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    osname = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = f"{line.split('=', 1)[1].strip(chr(34))} (kernel {platform.release()})"
    mem = proc_meminfo_mb()
    versions = {}
    for dist in ("python-telegram-bot", "httpx", "SQLAlchemy", "aiosqlite", "Pillow", "aiohttp"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[dist] = version(dist)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "python": platform.python_version(),
        "os": osname,
        "packages": versions,
    }


def proc_meminfo_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


# ---------------------------------------------------------------------------------------------


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, as a user stops the bot; killed if it has not exited within 20 s."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Runner:
    def __init__(self, scenario: Scenario, tmp: Path) -> None:
        self.sc = scenario
        self.tmp = tmp
        self.photo = user_photo() if scenario.photo else b""

    async def run(self) -> dict[str, Any]:
        answer = answer_image(self.sc.answer)
        tg = FakeTelegram()
        tg.photo_thumbnails = False
        api = TimedImageAPI(answer, api_key=API_KEY)
        await tg.start()
        await api.start()
        api.latency = self.sc.latency
        api.capacity = self.sc.capacity
        tg.flood_limit = self.sc.flood
        try:
            phases = [await self.phase(tg, api, answer, "bot", chat_base=1_000_000)]
            if self.sc.floor:
                phases.append(await self.phase(tg, api, answer, "floor", chat_base=2_000_000))
        finally:
            await api.stop()
            await tg.stop()
        return {"scenario": asdict(self.sc), "answer_bytes": answer.size, "phases": phases}

    def _env(self, tg: FakeTelegram, api: TimedImageAPI, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.root,
            IMAGE_API_DIALECT="openai-chat",
            IMAGE_API_BASE_URL=f"{api.root}/v1",
            IMAGE_API_KEY=API_KEY,
            IMAGE_MODEL=MODEL,
            DATA_DIR=str(data),
            LOG_LEVEL="WARNING",
            BOT_DIAGNOSTICS_FILE=str(data / "diagnostics.json"),
            TELEGRAM_RATE_LIMITER="on" if self.sc.flood else "off",
        )
        if not self.sc.caps:
            # Caps on upstream calls in flight are for the relay's sake (the endpoint's adaptive
            # limit, the jobs' safety net); the fake takes any number, and here we measure the
            # bot, not the caps: a fixed 1000 per endpoint.
            env.update(
                MAX_CONCURRENT_JOBS="1000",
                IMAGE_API_MIN_CONCURRENCY="1000",
                IMAGE_API_MAX_CONCURRENCY="1000",
            )
        return env

    async def phase(
        self, tg: FakeTelegram, api: TimedImageAPI, answer: AnswerImage, who: str, chat_base: int
    ) -> dict[str, Any]:
        sc = self.sc
        data = self.tmp / f"{who}-data"
        data.mkdir()
        log = (self.tmp / f"{who}.log").open("wb")  # closed below
        if who == "bot":
            cmd = [sys.executable, "-m", "bot"]
        else:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.floor",
                tg.root,
                tg.token,
                f"{api.root}/v1",
                API_KEY,
                MODEL,
            ]
        polls_before = len(tg.calls_of("getUpdates"))
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=self._env(tg, api, data), cwd=str(data), stdout=log, stderr=log
        )
        result = Phase(who=who, jobs=sc.jobs)
        fakes_monitor = LoopMonitor(None)
        try:
            await self._wait_ready(tg, proc, polls_before)
            # Warm-up jobs (no upstream latency): first-use costs (imports, connections)
            # are paid once per process, not per job.
            api.latency = 0.0
            warm = [chat_base - 1 - i for i in range(WARM_UP_JOBS)]
            await self._jobs(tg, warm, gap=0.0)
            await self._wait_done(tg, warm, answer, limit=60)
            await asyncio.sleep(0.5)
            api.latency = sc.latency
            api.latency_spread = sc.spread
            result.idle_rss_mb = _mb(proc_status_kb("VmRSS", proc.pid))
            chats = [chat_base + i for i in range(sc.jobs)]
            refused0, log0 = api.over_capacity, len(api.in_flight_log)
            t0, t_end = await self._measured(result, proc, tg, tg, answer, chats, fakes_monitor)
            result.upstream_429 = api.over_capacity - refused0
            window = api.in_flight_log[log0:]
            result.in_flight_max = max((count for _, count in window), default=0)
            result.in_flight_samples = _samples(window, t0, sc.latency / 2)
            self._measure(result, tg, api, chats)
        finally:
            await _stop(proc)
            log.close()
        if who == "bot":
            self._loop_stats(result, data / "diagnostics.json", t0, t_end)
        tail = (self.tmp / f"{who}.log").read_text(errors="replace").strip().splitlines()
        bad = [line[:300] for line in tail if "ERROR" in line or "Traceback" in line]
        result.errors += bad[:10]
        return asdict(result)

    async def _measured(
        self,
        result: Phase,
        proc: asyncio.subprocess.Process,
        tg: FakeTelegram,
        view: Any,
        answer: AnswerImage,
        chats: list[int],
        fakes_monitor: LoopMonitor,
    ) -> tuple[float, float]:
        """The measured jobs: sent, waited for (their results as `view` shows the calls), and
        the process's CPU, peak RSS, wall time and the fakes' lag noted. Returns (start, end)."""
        sc = self.sc
        fakes_monitor.start()
        cpu0 = _cpu_seconds(proc.pid)
        t0 = time.monotonic()
        await self._jobs(tg, chats, gap=sc.gap)
        ends = await self._wait_done(view, chats, answer, limit=sc.timeout)
        t_end = max(ends.values()) if ends else time.monotonic()
        await asyncio.sleep(1.0)  # trailing calls (status removal) land in the count
        cpu1 = _cpu_seconds(proc.pid)
        if cpu0 is not None and cpu1 is not None:
            result.cpu_ms_per_job = round((cpu1 - cpu0) * 1000 / sc.jobs, 2)
        await fakes_monitor.stop()
        result.fakes_loop_max_ms = round(fakes_monitor.max_lag * 1000, 1)
        result.peak_rss_mb = _mb(proc_status_kb("VmHWM", proc.pid))
        result.done = len(ends)
        if len(ends) == len(chats):
            result.wall = round(t_end - t0, 3)
        return t0, t_end

    async def _wait_ready(
        self, tg: FakeTelegram, proc: asyncio.subprocess.Process, polls_before: int
    ) -> None:
        deadline = time.monotonic() + 60
        while len(tg.calls_of("getUpdates")) <= polls_before:
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the program did not start (exit {proc.returncode})")
            await asyncio.sleep(0.05)

    async def _jobs(self, tg: FakeTelegram, chats: list[int], gap: float) -> None:
        start = time.monotonic()
        for i, chat in enumerate(chats):
            if gap:
                delay = start + i * gap - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            user = tg.user(chat, first_name=f"U{chat}")
            if self.sc.photo:
                tg.send_photo(chat, self.photo, caption=f"job-{chat} {CAPTION}", user=user)
            else:
                tg.send_text(chat, f"job-{chat} {PROMPT}", user=user)

    async def _wait_done(
        self, tg: FakeTelegram, chats: list[int], answer: AnswerImage, limit: float
    ) -> dict[int, float]:
        """chat -> when its result was answered (4K: the original file after the preview)."""
        final = "sendDocument" if answer.size > 10_000_000 else "sendPhoto"
        wanted = set(chats)
        ends: dict[int, float] = {}
        scanned = 0
        deadline = time.monotonic() + limit
        while len(ends) < len(wanted) and time.monotonic() < deadline:
            calls = tg.calls
            # calls are appended on arrival; answered in any order: rescan from the first open
            i = scanned
            while i < len(calls):
                c = calls[i]
                if c.answered is None:
                    break
                chat = _chat_of(c)
                if c.method == final and c.ok and chat in wanted:
                    ends.setdefault(chat, c.answered)
                i += 1
            scanned = i
            for c in calls[scanned:]:
                chat = _chat_of(c)
                if c.answered is not None and c.method == final and c.ok and chat in wanted:
                    ends.setdefault(chat, c.answered)
            await asyncio.sleep(0.05)
        return ends

    def _measure(
        self, result: Phase, tg: FakeTelegram, api: TimedImageAPI, chats: list[int]
    ) -> None:
        wanted = set(chats)
        by_chat: dict[int, list[Any]] = {c: [] for c in chats}
        methods: Counter[str] = Counter()
        for c in tg.calls:
            chat = _chat_of(c)
            if chat in wanted:
                by_chat[chat].append(c)
                methods[c.method] += 1
            elif c.method == "getFile":
                methods["getFile"] += 0  # counted below per photo job
        if self.sc.photo:
            methods["getFile"] = len(chats)  # one per photo job (getFile has no chat_id)
        result.calls = dict(sorted(methods.items()))
        for calls in by_chat.values():
            for i, c in enumerate(calls):
                if c.response and c.response.get("error_code") == 429:
                    result.too_many += 1
                    if not any(d.method == c.method and d.ok for d in calls[i + 1 :]):
                        result.too_many_unretried += 1
        spans = sorted((t.arrived, t.answered or t.arrived) for t in api.jobs.values())
        result.upstream_parallel = _max_overlap(spans)
        for chat in chats:
            times = api.jobs.get(chat)
            delivered = next((t for (cid, _), t in tg.delivered_at.items() if cid == chat), None)
            if times is None or times.answered is None or delivered is None:
                continue
            upload = next(
                (c.at for c in by_chat[chat] if c.method == "sendPhoto" and c.at >= times.answered),
                None,
            )
            if upload is None:
                continue
            pre = (times.arrived - delivered) * 1000
            post = (upload - times.answered) * 1000
            result.pre_ms.append(round(pre, 2))
            result.post_ms.append(round(post, 2))
            result.overhead_ms.append(round(pre + post, 2))

    def _loop_stats(self, result: Phase, path: Path, t0: float, t_end: float) -> None:
        try:
            diag = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # the bot has no diagnostics hook
        result.loop_max_ms_all = diag.get("max_lag_ms")
        start = diag.get("started_monotonic", 0.0)
        first = diag.get("first_second", 0)
        per_second = diag.get("per_second_max_ms") or []
        # Whole seconds inside [t0, t_end], plus the exactly timed worst stalls inside it: a
        # second that began before t0 may hold a start-up stall (the import-time GC pass).
        lo, hi = math.ceil(t0 - start) - first, int(t_end - start) - first
        window = per_second[max(0, lo) : max(0, hi + 1)]
        window += [
            w["lag_ms"] for w in diag.get("worst", []) if t0 - start <= w["at_s"] <= t_end - start
        ]
        result.loop_max_ms = max(window) if window else None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _chats(k: int) -> str:
    return "1 chat" if k == 1 else f"{k} chats"


def _chat_of(call: Any) -> int | None:
    value = call.params.get("chat_id")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def _samples(log: list[tuple[float, int]], t0: float, step: float) -> list[tuple[float, int]]:
    """The requests in flight every `step` seconds from t0 (the count of the last change)."""
    out: list[tuple[float, int]] = []
    at, current = t0, 0
    for when, count in log:
        while when > at:
            out.append((round(at - t0, 2), current))
            at += step
        current = count
    out.append((round(at - t0, 2), current))
    return out


def _mb(kb: int | None) -> float | None:
    return round(kb / 1024, 1) if kb is not None else None


# ---------------------------------------------------------------------------------------------


def scenarios(quick: bool, latency: float) -> list[Scenario]:
    n1k, n4k = (40, 8) if quick else (160, 24)
    out = [
        Scenario("overhead-1k", "1k", n1k, 2.5, gap=0.25, photo=True, floor=True),
        Scenario("overhead-4k", "4k", n4k, 2.5, gap=1.5, photo=True, floor=True),
        Scenario("burst-4k", "4k", 10, latency, timeout=120),
    ]
    for flood in (False, True):
        for k in (1, 100, 500) if quick else (1, 10, 100, 500):
            bound = latency + k / FLOOD_PER_SECOND
            out.append(
                Scenario(
                    f"chats-{k}-{'on' if flood else 'off'}",
                    "flat",
                    k,
                    latency,
                    flood=flood,
                    timeout=max(60.0, 6 * bound),
                )
            )
    if not quick:  # the same 500 chats with answers of a real 1K image's size (~1.4 MB each)
        out.append(Scenario("chats-500-off-big", "1k", 500, latency, timeout=180))
    # the settings a user gets (caps, limiter on against a fake enforcing Telegram's limits),
    # next to the limits-lifted rows above, whatever --defaults says
    for k in (10, 100):
        bound = 1.1 * latency + k / FLOOD_PER_SECOND
        out.append(
            Scenario(
                f"chats-{k}-def", "flat", k, latency, flood=True, caps=True, timeout=10 * bound
            )
        )
    # the settings a user gets with real-looking upstreams: 5-15 s, answers of a 1K image's size
    out.append(
        Scenario(
            "real-100", "1k", 100, 10.0, flood=True, caps=True, spread=(5.0, 15.0), timeout=120
        )
    )
    # the adaptive limit's row: default settings always
    out.append(
        Scenario("capacity-16", "flat", 100, latency, caps=True, capacity=16, timeout=40 * latency)
    )
    return out


def run_storage(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chats, jobs in ((1, 60), (500, 2 if quick else 3)):
        args = ["--chats", str(chats), "--jobs", str(jobs)]
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.storage", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
        )
        key = "sequential" if chats == 1 else "concurrent"
        try:
            out[key] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out[key] = {"error": proc.stderr[-500:]}
    return out


# ---------------------------------------------------------------------------------------------


def table(results: dict[str, Any], latency: float) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    sc = {r["scenario"]["name"]: r for r in results["scenarios"]}

    def phase(name: str, who: str = "bot") -> dict[str, Any] | None:
        r = sc.get(name)
        return next((p for p in r["phases"] if p["who"] == who), None) if r else None

    def ok(flag: bool | None) -> str:
        return "—" if flag is None else ("yes" if flag else "NO")

    def fmt(v: float | None, unit: str = "", nd: int = 1) -> str:
        return "n/a" if v is None else f"{v:.{nd}f}{unit}"

    for kind, label in (("1k", "1024² PNG"), ("4k", "4K PNG")):
        bot, floor = phase(f"overhead-{kind}"), phase(f"overhead-{kind}", "floor")
        if bot is None:
            continue
        b50, b99 = pct(bot["overhead_ms"], 0.5), pct(bot["overhead_ms"], 0.99)
        f50 = pct(floor["overhead_ms"], 0.5) if floor else None
        f99 = pct(floor["overhead_ms"], 0.99) if floor else None
        n = len(bot["overhead_ms"])
        if kind == "1k":
            rows.append(
                (
                    f"overhead p50, {label} (n={n})",
                    "≤ 10 ms",
                    fmt(b50, " ms"),
                    ok(b50 <= 10 if b50 is not None else None),
                )
            )
            rows.append(
                (
                    f"overhead p99, {label}",
                    "≤ 50 ms",
                    fmt(b99, " ms"),
                    ok(b99 <= 50 if b99 is not None else None),
                )
            )
        else:
            rows.append(
                (
                    f"overhead p50 / p99, {label} (n={n})",
                    "—",
                    f"{fmt(b50, ' ms')} / {fmt(b99, ' ms')}",
                    "—",
                )
            )
        rows.append(
            (f"  floor p50 / p99, {label}", "—", f"{fmt(f50, ' ms')} / {fmt(f99, ' ms')}", "—")
        )
        parts = [
            f"{fmt(pct(p['pre_ms'], 0.5), ' ms')} + {fmt(pct(p['post_ms'], 0.5), ' ms')}"
            for p in (bot, floor)
            if p is not None
        ]
        rows.append(
            (
                f"  p50 update→upstream + answer→upload, bot · floor, {label}",
                "—",
                " · ".join(parts),
                "—",
            )
        )
        r50 = b50 / f50 if b50 is not None and f50 else None
        r99 = b99 / f99 if b99 is not None and f99 else None
        rows.append(
            (
                f"  CPU per image, bot · floor, {label}",
                "—",
                f"{fmt(bot.get('cpu_ms_per_job'), ' ms')} · "
                f"{fmt(floor.get('cpu_ms_per_job') if floor else None, ' ms')}",
                "—",
            )
        )
        rows.append(
            (
                f"  bot / floor p50 · p99, {label}",
                "≤ 1.3×",
                f"{fmt(r50, '×', 2)} · {fmt(r99, '×', 2)}",
                ok(None if r50 is None else (r50 <= 1.3 and (r99 or 0) <= 1.3)),
            )
        )
    one = phase("chats-1-off") or phase("chats-1-on")
    many = phase("chats-500-off")
    if one:
        calls = {m: n for m, n in one["calls"].items() if m not in SETUP_METHODS}
        total = sum(calls.values())
        msgs = sum(n for m, n in calls.items() if m in MESSAGE_METHODS)
        detail = ", ".join(f"{m} {n}" for m, n in sorted(calls.items()))
        rows.append(
            (
                f"Bot API calls per image, all (L = {latency:g} s)",
                "≤ 3",
                f"{total} ({detail})",
                ok(total <= 3),
            )
        )
        rows.append(
            ("  of which messages (what the 30/s limit counts)", "≤ 3", str(msgs), ok(msgs <= 3))
        )
    if many and many["done"]:
        calls = {m: n for m, n in many["calls"].items() if m not in SETUP_METHODS}
        per = sum(calls.values()) / many["jobs"]
        per_msg = sum(n for m, n in calls.items() if m in MESSAGE_METHODS) / many["jobs"]
        rows.append(
            (
                "  at 500 chats: all calls; messages per image",
                "≤ 3",
                f"{per:.2f}; {per_msg:.2f}",
                ok(per_msg <= 3),
            )
        )
    for k in (1, 10, 100, 500):
        p = phase(f"chats-{k}-off")
        if p is None:
            continue
        target = latency + 2
        wall = p["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{p['done']}/{p['jobs']} done"
        cpu = p.get("cpu_ms_per_job")
        rows.append(
            (
                f"{_chats(k)} at once, limiter off: wall",
                f"≤ L+2 = {target:g} s",
                shown + (f"; bot CPU {cpu:.1f} ms/image" if cpu is not None else ""),
                ok(wall is not None and wall <= target),
            )
        )
    for k in (1, 10, 100, 500):
        p = phase(f"chats-{k}-on")
        if p is None:
            continue
        bound = latency + k / FLOOD_PER_SECOND
        wall = p["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{p['done']}/{p['jobs']} done"
        extra = f"; 429s {p['too_many']} (unretried {p['too_many_unretried']})"
        rows.append(
            (
                f"{_chats(k)} at once, limiter on: wall",
                f"≤ 1.05 × {bound:.2f} s",
                shown + extra,
                ok(wall is not None and wall <= 1.05 * bound and not p["too_many_unretried"]),
            )
        )
    for k in (10, 100):
        p = phase(f"chats-{k}-def")
        if p is None:
            continue
        bound = 1.1 * latency + k / FLOOD_PER_SECOND
        wall = p["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{p['done']}/{p['jobs']} done"
        calls = {m: n for m, n in p["calls"].items() if m not in SETUP_METHODS}
        per = sum(calls.values()) / p["jobs"]
        per_msg = sum(n for m, n in calls.items() if m in MESSAGE_METHODS) / p["jobs"]
        rows.append(
            (
                f"{_chats(k)} at once, default settings: wall",
                f"≤ 1.1 L + K/30 = {bound:.2f} s",
                shown,
                ok(wall is not None and wall <= bound),
            )
        )
        rows.append(
            (
                "  Bot API calls per image: all; messages",
                "≤ 3",
                f"{per:.2f}; {per_msg:.2f}",
                ok(per <= 3),
            )
        )
    real = phase("real-100")
    if real is not None:
        bound = 1.1 * 15.0 + real["jobs"] / FLOOD_PER_SECOND
        wall = real["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{real['done']}/{real['jobs']} done"
        calls = {m: n for m, n in real["calls"].items() if m not in SETUP_METHODS}
        per = sum(calls.values()) / real["jobs"]
        rows.append(
            (
                "100 chats, upstream 5-15 s, 1.4 MB answers, defaults: wall",
                f"≤ 1.1 × 15 + K/30 = {bound:.1f} s",
                shown
                + f"; overhead p50 {fmt(pct(real['overhead_ms'], 0.5), ' ms')}"
                + f"; calls/image {per:.2f}; peak RSS {fmt(real['peak_rss_mb'], ' MB', 0)}",
                ok(wall is not None and wall <= bound),
            )
        )
    cap = phase("capacity-16")
    if cap is not None:
        n, capacity = cap["jobs"], sc["capacity-16"]["scenario"]["capacity"]
        ideal = math.ceil(n / capacity) * latency
        wall = cap["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{cap['done']}/{n} done"
        ratio = f" = {wall / ideal:.2f}× ideal" if wall is not None else ""
        rows.append(
            (
                f"{n} chats at once, upstream capacity {capacity}, defaults: wall",
                f"≤ 1.1 × {ideal:g} s (ideal)",
                shown + ratio,
                ok(wall is not None and wall <= 1.1 * ideal),
            )
        )
        samples = cap["in_flight_samples"]
        most = cap["in_flight_max"]
        every = max(1, len(samples) // 8)
        rows.append(
            (
                "  429s drawn; upstream in flight: max, every L/2",
                "—",
                f"{cap['upstream_429']}; {most}; " + " ".join(str(c) for _, c in samples[::every]),
                "—",
            )
        )
    stalls = [(n, phase(n)) for n in ("overhead-4k", "burst-4k")]
    for name, p in stalls:
        if p is not None:
            v = p["loop_max_ms"]
            rows.append(
                (
                    f"worst event-loop stall, {name}",
                    "≤ 50 ms",
                    fmt(v, " ms"),
                    ok(v <= 50 if v is not None else None),
                )
            )
    others = [
        (n, phase(n)) for n in ("overhead-1k", *(f"chats-{k}-off" for k in (1, 10, 100, 500)))
    ]
    shown = [(n, p["loop_max_ms"]) for n, p in others if p and p["loop_max_ms"] is not None]
    if shown:
        rows.append(
            (
                "  worst stall without 4K: " + " · ".join(n for n, _ in shown),
                "—",
                " · ".join(fmt(v, " ms") for _, v in shown),
                "—",
            )
        )
    worst_any = [
        (p["loop_max_ms"], n)
        for n in sc
        for p in sc[n]["phases"]
        if p["who"] == "bot" and p["loop_max_ms"] is not None
    ]
    if worst_any:
        v, n = max(worst_any)
        rows.append(
            ("worst event-loop stall, any scenario", "≤ 50 ms", f"{v:.1f} ms ({n})", ok(v <= 50))
        )
    for k in (1, 10, 100, 500):
        p = phase(f"chats-{k}-off")
        if p is not None:
            v = p["peak_rss_mb"]
            target = "≤ 200 MB" if k == 500 else "—"
            rows.append(
                (
                    f"peak RSS, {_chats(k)} (flat 1024² answers)",
                    target,
                    fmt(v, " MB"),
                    ok(v <= 200 if v is not None else None) if k == 500 else "—",
                )
            )
    big = phase("chats-500-off-big")
    if big is not None:
        wall = big["wall"]
        shown = fmt(wall, " s", 2) if wall is not None else f"{big['done']}/{big['jobs']} done"
        rows.append(
            (
                "500 chats, 1.4 MB answers, limiter off: wall; peak RSS",
                "—",
                f"{shown}; {fmt(big['peak_rss_mb'], ' MB')}",
                "—",
            )
        )
    burst, one4k = phase("burst-4k"), phase("overhead-4k")
    if burst and burst["peak_rss_mb"] and burst["idle_rss_mb"]:
        per = (burst["peak_rss_mb"] - burst["idle_rss_mb"]) / burst["jobs"]
        rows.append(
            (
                "peak RSS, 10 × 4K at once; per 4K job in flight",
                "—",
                f"{burst['peak_rss_mb']:.0f} MB; {per:.0f} MB/job",
                "—",
            )
        )
    if one4k and one4k["peak_rss_mb"]:
        rows.append(
            ("peak RSS, 4K jobs at a steady pace", "—", fmt(one4k["peak_rss_mb"], " MB"), "—")
        )
    st = results.get("storage", {})
    conc, seq = st.get("concurrent", {}), st.get("sequential", {})
    if "jobs_per_second" in conc:
        jps = conc["jobs_per_second"]
        errs = sum(conc.get("errors", {}).values())
        rows.append(
            (
                f"storage: jobs/s, {conc['chats']} chats writing at once",
                "≥ 100 jobs/s",
                f"{jps:.0f} jobs/s ({errs} errors)",
                ok(jps >= 100 and not errs),
            )
        )
    if "jobs_per_second" in seq:
        rows.append(
            (
                "  one chat alone: jobs/s; p50 per job",
                "—",
                f"{seq['jobs_per_second']:.0f} jobs/s; {seq['job_ms_p50']:.1f} ms",
                "—",
            )
        )
    return rows


def render(rows: list[tuple[str, str, str, str]], info: dict[str, Any]) -> str:
    head = ("metric", "target", "measured", "ok?")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    lines.append("")
    lines.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_mb']} MB RAM; "
        f"{info['os']}; Python {info['python']}; {pk}."
    )
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "latency": args.latency,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "scenarios": [],
    }
    chosen = [
        s
        for s in scenarios(args.quick, args.latency)
        if not args.only or any(o in s.name for o in args.only)
    ]
    if args.defaults:  # the settings a user gets: queues behind the caps take longer
        chosen = [s if s.caps else replace(s, caps=True, timeout=s.timeout * 10) for s in chosen]
    for sc in chosen:
        t = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"bench-{sc.name}-") as tmp:
            try:
                res = await Runner(sc, Path(tmp)).run()
            except Exception as exc:  # report and go on: a benchmark, not a test
                res = {"scenario": asdict(sc), "error": repr(exc), "phases": []}
            if args.keep:
                kept = Path(tempfile.mkdtemp(prefix=f"bench-kept-{sc.name}-"))
                for name in ("bot.log", "floor.log"):
                    with contextlib.suppress(OSError):
                        os.replace(os.path.join(tmp, name), kept / name)
                print(f"logs kept in {kept}", file=sys.stderr)
        results["scenarios"].append(res)
        summary = "; ".join(
            f"{p['who']}: {p['done']}/{p['jobs']} done, wall {p['wall']}, "
            f"p50 {pct(p['overhead_ms'], 0.5)}, loop {p['loop_max_ms']} ms, "
            f"rss {p['peak_rss_mb']} MB, fakes lag {p['fakes_loop_max_ms']} ms"
            for p in res["phases"]
        ) or res.get("error", "")
        print(f"[{time.monotonic() - t:6.1f} s] {sc.name}: {summary}", file=sys.stderr, flush=True)
    if not args.only or "storage" in args.only:
        t = time.monotonic()
        results["storage"] = await asyncio.to_thread(run_storage, args.quick)
        print(f"[{time.monotonic() - t:6.1f} s] storage: {results['storage']}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples: about 2-3 minutes")
    parser.add_argument("--latency", type=float, default=5.0, help="upstream latency L (s)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--only", nargs="*", help="run only scenarios whose name contains these")
    parser.add_argument("--keep", action="store_true", help="keep the programs' logs")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="keep the default settings (adaptive per-endpoint limit, MAX_CONCURRENT_JOBS=256)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = asyncio.run(run_all(args))
    rows = table(results, args.latency)
    results["table"] = [
        dict(zip(("metric", "target", "measured", "ok"), r, strict=True)) for r in rows
    ]
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(render(rows, results["machine"]))
    print(f"\n{results['seconds']:.0f} s; details in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
