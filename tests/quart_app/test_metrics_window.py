"""TTFT percentiles and error rates over a window, from samples of the Prometheus metrics."""

from __future__ import annotations

import math

import pytest

from quart_app.metrics import Metrics
from quart_app.metrics_window import MetricsWindow
from quart_app.metrics_window import ProviderCounts
from quart_app.metrics_window import quantile
from quart_app.metrics_window import read_counts


def test_quantiles_interpolate_within_the_bucket_like_promql() -> None:
    # 10 calls <= 0.1 s, 10 more <= 0.5 s, 20 in all.
    buckets = {0.1: 10.0, 0.5: 20.0, math.inf: 20.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.25, buckets) == pytest.approx(0.05)
    assert quantile(0.75, buckets) == pytest.approx(0.3)
    assert quantile(0.95, {0.1: 0.0, 1.0: 0.0, math.inf: 4.0}) == 1.0  # beyond the last bound
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert quantile(0.5, {}) is None


def test_counts_are_read_per_provider_from_the_services_metrics() -> None:
    metrics = Metrics()
    ttft = metrics.ttft
    ttft.labels("a", "m1", "stream").observe(0.02)
    ttft.labels("a", "m2", "agent_stream").observe(0.3)
    ttft.labels("a", "m1", "json").observe(9.0)  # a JSON answer's time is not a first token
    metrics.upstream_errors.labels("a", "upstream_timeout", "before_first_byte").inc(2)
    metrics.upstream_errors.labels("b", "upstream_error", "mid_stream").inc()
    counts = read_counts(metrics.families())
    a, b = counts["a"], counts["b"]
    assert a.first_bytes == 3 and a.errors_before == 2 and a.errors_mid == 0
    assert a.buckets[0.025] == 1 and a.buckets[0.5] == 2 and a.buckets[math.inf] == 2
    assert b.errors_mid == 1 and b.first_bytes == 0


def test_the_window_is_the_difference_with_the_sample_a_window_ago() -> None:
    now = [0.0]
    current: dict[str, ProviderCounts] = {}
    window = MetricsWindow(lambda: current, window_s=60, sample_s=5, clock=lambda: now[0])

    def counts(fast: int, slow: int, errors: int) -> dict[str, ProviderCounts]:
        buckets = {0.1: float(fast), 1.0: float(fast + slow), math.inf: float(fast + slow)}
        return {"p": ProviderCounts(buckets, float(fast + slow), float(errors), 0.0)}

    window.sample()  # t=0: nothing yet
    current = counts(fast=10, slow=0, errors=0)
    for t in range(5, 35, 5):
        now[0] = float(t)
        window.sample()  # t=5..30: the 10 fast calls
    current = counts(fast=10, slow=10, errors=5)
    now[0] = 31.0
    early = window.stats()["p"]  # since t=0: all 20 calls
    assert early.streams == 20 and early.attempts == 25 and early.errors == 5
    assert early.error_rate == pytest.approx(0.2)
    assert early.ttft_p50_s == pytest.approx(0.1)
    now[0] = 64.0
    late = window.stats()["p"]  # since t=5: only the 10 slow calls and the 5 failures
    assert late.streams == 10 and late.attempts == 15 and late.errors == 5
    assert late.ttft_p50_s == pytest.approx(0.55)
    assert late.ttft_p95_s == pytest.approx(0.955)
    current = counts(fast=1, slow=0, errors=0)  # a restarted worker: counters went back
    assert window.stats()["p"].streams == 1
    current = {}
    assert window.stats() == {}


def test_no_call_means_no_numbers() -> None:
    window = MetricsWindow(lambda: {"p": ProviderCounts()}, window_s=60, sample_s=5)
    window.sample()
    stats = window.stats()["p"]
    assert (stats.ttft_p50_s, stats.ttft_p95_s, stats.error_rate) == (None, None, None)
