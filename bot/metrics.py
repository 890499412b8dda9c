"""The process's counters, bumped where things happen and read by `/metrics` (bot/ops.py).

Bumping one is a dict update on the event loop's thread: no lock, no I/O, no Prometheus
object on the job path. `prometheus_client` is used only when a scrape renders them
(`render`), through a collector that turns these plain numbers into metric families.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Final

PREFIX: Final = "nanobanana"
#: Upper bounds (seconds) of the upstream latency histogram: image calls take seconds to minutes.
LATENCY_BUCKETS: Final = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0)

_BOUNDS: Final = (*(repr(b) for b in LATENCY_BUCKETS), "+Inf")


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value


class Metrics:
    """Every number `/metrics` shows. One per process (`METRICS`); tests read differences."""

    def __init__(self) -> None:
        self.jobs: Counter[tuple[str, str]] = Counter()  # (status, dialect)
        self.upstream: Counter[tuple[str, str]] = Counter()  # (dialect, result)
        self.latency: dict[str, _Histogram] = {}  # by dialect
        self.retries: Counter[tuple[str, str]] = Counter()  # (dialect, reason)
        self.telegram_429 = 0
        self.images: Counter[str] = Counter()  # delivered, by model
        self.cost: dict[str, float] = {}  # USD, by model
        #: Jobs waiting for a slot, by queue; read when scraped (the owner of each queue
        #: registers it).
        self.queues: dict[str, Callable[[], int]] = {}
        self.bot_api_answered_at: float | None = None  # monotonic time of the last answer
        self.bot_api_failed_at: float | None = None  # of the last call that got no answer

    # -- where things happen -------------------------------------------------------------------

    def job_finished(self, status: str, dialect: str) -> None:
        self.jobs[status, dialect] += 1

    def upstream_call(self, dialect: str, result: str, seconds: float) -> None:
        """One request to an image endpoint: "ok" or the error kind, and how long it took."""
        self.upstream[dialect, result] += 1
        histogram = self.latency.get(dialect)
        if histogram is None:
            histogram = self.latency[dialect] = _Histogram()
        histogram.observe(seconds)

    def upstream_retry(self, dialect: str, reason: str) -> None:
        self.retries[dialect, reason] += 1

    def telegram_rate_limited(self) -> None:
        self.telegram_429 += 1

    def images_delivered(self, model: str, count: int) -> None:
        self.images[model] += count

    def upstream_cost(self, model: str, usd: float) -> None:
        self.cost[model] = self.cost.get(model, 0.0) + usd

    def bot_api_answered(self) -> None:
        self.bot_api_answered_at = time.monotonic()

    def bot_api_failed(self) -> None:
        self.bot_api_failed_at = time.monotonic()

    def watch_queue(self, name: str, depth: Callable[[], int]) -> None:
        self.queues[name] = depth

    # -- scrape --------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every number, and its content type."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self._m
        jobs = CounterMetricFamily(
            f"{PREFIX}_jobs", "Jobs finished, by status and dialect", labels=["status", "dialect"]
        )
        for (status, dialect), n in sorted(m.jobs.items()):
            jobs.add_metric([status, dialect], n)
        yield jobs
        calls = CounterMetricFamily(
            f"{PREFIX}_upstream_requests",
            'Requests to image endpoints, by dialect and result ("ok" or the error kind)',
            labels=["dialect", "result"],
        )
        for (dialect, result), n in sorted(m.upstream.items()):
            calls.add_metric([dialect, result], n)
        yield calls
        latency = HistogramMetricFamily(
            f"{PREFIX}_upstream_seconds",
            "Time of one request to an image endpoint",
            labels=["dialect"],
        )
        for dialect, histogram in sorted(m.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(_BOUNDS, histogram.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([dialect], buckets, histogram.total)
        yield latency
        retries = CounterMetricFamily(
            f"{PREFIX}_upstream_retries",
            "Requests sent again (same endpoint after a wait, or the next endpoint)",
            labels=["dialect", "reason"],
        )
        for (dialect, reason), n in sorted(m.retries.items()):
            retries.add_metric([dialect, reason], n)
        yield retries
        waiting = GaugeMetricFamily(
            f"{PREFIX}_jobs_waiting", "Jobs waiting for a slot, by queue", labels=["queue"]
        )
        for name, depth in sorted(m.queues.items()):
            waiting.add_metric([name], depth())
        yield waiting
        yield CounterMetricFamily(
            f"{PREFIX}_telegram_429", "429 Too Many Requests answers from the Bot API",
            value=m.telegram_429,
        )
        images = CounterMetricFamily(
            f"{PREFIX}_images_delivered", "Generated images delivered to chats", labels=["model"]
        )
        for model, n in sorted(m.images.items()):
            images.add_metric([model], n)
        yield images
        cost = CounterMetricFamily(
            f"{PREFIX}_upstream_cost_usd", "What stored images cost upstream", labels=["model"]
        )
        for model, usd in sorted(m.cost.items()):
            cost.add_metric([model], usd)
        yield cost
        if m.bot_api_answered_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_bot_api_last_answer_age_seconds",
                "Seconds since the Bot API last answered a call",
                value=time.monotonic() - m.bot_api_answered_at,
            )


METRICS: Final = Metrics()
