"""bot.metrics: the plain counters render as the Prometheus text format, the histogram's
buckets cumulative and per dialect, queue depths read when scraped."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import LATENCY_BUCKETS, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_upstream_latency_buckets_are_cumulative_per_dialect() -> None:
    m = Metrics()
    for seconds in (0.3, 0.5, 7.0, 500.0):
        m.upstream_call("gemini", "ok", seconds)
    m.upstream_call("openai-chat", "rate_limited", 1.5)

    got = samples(m)

    def bucket(dialect: str, le: str) -> float:
        return got["nanobanana_upstream_seconds_bucket", (("dialect", dialect), ("le", le))]

    assert [bucket("gemini", le) for le in ("0.5", "1.0", "5.0", "10.0", "240.0", "+Inf")] == [
        2,
        2,
        2,
        3,
        3,
        4,
    ]
    assert got["nanobanana_upstream_seconds_count", (("dialect", "gemini"),)] == 4
    assert got["nanobanana_upstream_seconds_sum", (("dialect", "gemini"),)] == 507.8
    assert bucket("openai-chat", "1.0") == 0 and bucket("openai-chat", "2.5") == 1
    assert len([k for k in got if k[0] == "nanobanana_upstream_seconds_bucket"]) == 2 * (
        len(LATENCY_BUCKETS) + 1
    )
    requests = "nanobanana_upstream_requests_total"
    assert got[requests, (("dialect", "gemini"), ("result", "ok"))] == 4
    assert got[requests, (("dialect", "openai-chat"), ("result", "rate_limited"))] == 1


def test_counters_and_gauges() -> None:
    m = Metrics()
    waiting = [3]
    m.watch_queue("jobs", lambda: waiting[0])
    m.job_finished("succeeded", "gemini")
    m.job_finished("succeeded", "gemini")
    m.job_finished("failed", "openai-images")
    m.upstream_retry("gemini", "server")
    m.telegram_rate_limited()
    m.images_delivered("gemini-3-pro-image", 2)
    m.upstream_cost("gemini-3-pro-image", 0.134)
    m.upstream_cost("gemini-3-pro-image", 0.134)

    got = samples(m)
    waiting[0] = 0
    later = samples(m)

    jobs = "nanobanana_jobs_total"
    assert got[jobs, (("dialect", "gemini"), ("status", "succeeded"))] == 2
    assert got[jobs, (("dialect", "openai-images"), ("status", "failed"))] == 1
    assert (jobs, (("dialect", "gemini"), ("status", "failed"))) not in got
    assert got["nanobanana_upstream_retries_total", (("dialect", "gemini"), ("reason", "server"))]
    assert got["nanobanana_telegram_429_total", ()] == 1
    assert got["nanobanana_images_delivered_total", (("model", "gemini-3-pro-image"),)] == 2
    assert got["nanobanana_upstream_cost_usd_total", (("model", "gemini-3-pro-image"),)] == 0.268
    assert got["nanobanana_jobs_waiting", (("queue", "jobs"),)] == 3
    assert later["nanobanana_jobs_waiting", (("queue", "jobs"),)] == 0
    assert not any(k[0].startswith("nanobanana_bot_api") for k in got)  # no answer yet
    assert got["process_resident_memory_bytes", ()] > 0
    m.bot_api_answered()
    assert samples(m)["nanobanana_bot_api_last_answer_age_seconds", ()] >= 0
