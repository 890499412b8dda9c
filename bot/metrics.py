"""The process's counters, bumped where things happen and read by `/metrics` (bot/ops.py).

Bumping one is a dict update on the event loop's thread: no lock, no I/O, no Prometheus
object on the job path. `prometheus_client` is used only when a scrape renders them
(`render`), through a collector that turns these plain numbers into metric families.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
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
        from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        ProcessCollector(registry=registry)  # process_resident_memory_bytes, CPU seconds, fds
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        m = self._m
        yield _counter("jobs", "Jobs finished", ["status", "dialect"], m.jobs)
        yield _counter(
            "upstream_requests",
            'Requests to image endpoints, by result ("ok" or the error kind)',
            ["dialect", "result"],
            m.upstream,
        )
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
        yield _counter(
            "upstream_retries",
            "Requests sent again (same endpoint after a wait, or the next endpoint)",
            ["dialect", "reason"],
            m.retries,
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_jobs_waiting", "Jobs waiting for a slot, by queue", labels=["queue"]
        )
        for name, depth in sorted(m.queues.items()):
            waiting.add_metric([name], depth())
        yield waiting
        yield _counter(
            "telegram_429",
            "429 Too Many Requests answers from the Bot API",
            [],
            {(): m.telegram_429},
        )
        images = {(model,): n for model, n in m.images.items()}
        yield _counter("images_delivered", "Generated images delivered to chats", ["model"], images)
        cost = {(model,): usd for model, usd in m.cost.items()}
        yield _counter("upstream_cost_usd", "What stored images cost upstream", ["model"], cost)
        if m.bot_api_answered_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_bot_api_last_answer_age_seconds",
                "Seconds since the Bot API last answered a call",
                value=time.monotonic() - m.bot_api_answered_at,
            )


def _counter(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> Any:
    """A counter family of `values`, keyed by their label values (a tuple as long as `labels`)."""
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


METRICS: Final = Metrics()
