"""Optional self-measurement: event-loop lag and peak memory, written as JSON.

Off unless asked for (`BOT_DIAGNOSTICS_FILE`): then `serve()` runs a `LoopMonitor`, a task that
sleeps `interval` seconds and records how late it wakes up. A late wake-up means some callback
held the event loop for that long, so every chat waited that long: the worst lag is the worst
stall any user saw. The monitor keeps the maximum, a histogram and the few worst stalls, and
writes them (with the process's peak RSS) to the file every `write_every` seconds and on stop.
Cost: one wake-up per `interval` (100 per second at 10 ms), well under 1 % of one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Upper edges (ms) of the histogram buckets; the last bucket is open-ended.
BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
WORST_KEPT = 10
SECONDS_KEPT = 900  # per-second maxima of the last 15 minutes


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM…); None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class LoopMonitor:
    """Measures event-loop lag from inside the loop. `start()` in a running loop, `stop()`."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        interval: float = 0.010,
        write_every: float = 5.0,
    ) -> None:
        self.path = path
        self.interval = interval
        self.write_every = write_every
        self.samples = 0
        self.max_lag = 0.0
        self.total_lag = 0.0
        self.histogram = [0] * (len(BUCKETS_MS) + 1)
        self.worst: list[tuple[float, float]] = []  # (lag s, seconds since start)
        # The worst lag of each second: `per_second[i]` is second `first_second + i` after start.
        self.per_second: deque[float] = deque(maxlen=SECONDS_KEPT)
        self.first_second = 0
        self._started = 0.0
        self._started_wall = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._started_wall = time.time()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.write()

    def record(self, lag: float) -> None:
        lag = max(0.0, lag)
        self.samples += 1
        self.total_lag += lag
        self.max_lag = max(self.max_lag, lag)
        ms = lag * 1000
        bucket = next((i for i, edge in enumerate(BUCKETS_MS) if ms <= edge), len(BUCKETS_MS))
        self.histogram[bucket] += 1
        at = time.monotonic() - self._started
        second = int(at)
        while self.first_second + len(self.per_second) <= second:
            if len(self.per_second) == self.per_second.maxlen:
                self.first_second += 1
            self.per_second.append(0.0)
        slot = second - self.first_second
        self.per_second[slot] = max(self.per_second[slot], lag)
        if len(self.worst) < WORST_KEPT or lag > self.worst[-1][0]:
            self.worst.append((lag, at))
            self.worst.sort(reverse=True)
            del self.worst[WORST_KEPT:]

    def stats(self) -> dict[str, Any]:
        labels = [f"<={edge:g}ms" for edge in BUCKETS_MS] + [f">{BUCKETS_MS[-1]:g}ms"]
        return {
            "pid": os.getpid(),
            "started_monotonic": self._started,
            "started_unix": self._started_wall,
            "interval_ms": self.interval * 1000,
            "seconds": round(time.monotonic() - self._started, 3),
            "samples": self.samples,
            "max_lag_ms": round(self.max_lag * 1000, 3),
            "mean_lag_ms": round(self.total_lag / self.samples * 1000, 3) if self.samples else 0,
            "histogram": dict(zip(labels, self.histogram, strict=True)),
            "worst": [
                {"lag_ms": round(lag * 1000, 3), "at_s": round(at, 3)} for lag, at in self.worst
            ],
            "first_second": self.first_second,
            "per_second_max_ms": [round(v * 1000, 2) for v in self.per_second],
            "vm_hwm_kb": proc_status_kb("VmHWM"),
            "vm_rss_kb": proc_status_kb("VmRSS"),
        }

    def write(self) -> None:
        """Replace the file atomically with the current stats (never raises)."""
        if self.path is None:
            return
        try:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.stats(), indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write diagnostics to %s: %s", self.path, exc)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_write = loop.time() + self.write_every
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.record(now - before - self.interval)
            if now >= next_write:
                next_write = now + self.write_every
                self.write()
