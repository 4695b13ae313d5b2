"""TTFT percentiles and error rates per provider over the last minutes, from the metrics.

The service already counts every call in Prometheus histograms and counters
(``quart_app.metrics``); nothing new is recorded per request for the console. Instead the
cumulative values are sampled every few seconds, and a window's numbers are the difference
between now and the sample taken a window ago: time to first token from the bucket
deltas (interpolated within a bucket, as PromQL's ``histogram_quantile`` does), the error
rate from the failure counters over the attempts. With ``PROMETHEUS_MULTIPROC_DIR`` the
values are every worker's; a counter that went backwards (a worker restarted) restarts the
window from zero.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from prometheus_client.metrics_core import Metric

__all__ = ["MetricsWindow", "ProviderCounts", "WindowStats", "quantile", "read_counts"]

_TTFT = "storywriter_time_to_first_token_seconds"
_ERRORS = "storywriter_upstream_errors"
#: Streamed calls: their first byte is the first token. A JSON call's is the whole answer.
_STREAMED = frozenset({"stream", "agent_stream"})


@dataclass(slots=True)
class ProviderCounts:
    """Cumulative counts of one provider, as the metrics hold them."""

    buckets: dict[float, float] = field(default_factory=dict)
    """Streamed calls' time to first token: upper bound -> calls at most that slow."""
    first_bytes: float = 0.0
    """Calls (streamed or not) that got their first byte."""
    errors_before: float = 0.0
    """Attempts that failed before the first byte (failed-over ones included)."""
    errors_mid: float = 0.0
    """Streams that failed after it."""

    def minus(self, base: ProviderCounts) -> ProviderCounts | None:
        """What happened since ``base``, or None when a counter went backwards."""
        delta = ProviderCounts(
            {le: count - base.buckets.get(le, 0.0) for le, count in self.buckets.items()},
            self.first_bytes - base.first_bytes,
            self.errors_before - base.errors_before,
            self.errors_mid - base.errors_mid,
        )
        values = [*delta.buckets.values(), delta.first_bytes, delta.errors_before, delta.errors_mid]
        return delta if min(values, default=0.0) >= 0 else None


Snapshot = dict[str, ProviderCounts]


@dataclass(frozen=True, slots=True)
class WindowStats:
    """One provider over the window."""

    ttft_p50_s: float | None
    ttft_p95_s: float | None
    streams: int
    """Streamed calls that got their first token."""
    attempts: int
    """Calls that got a first byte plus attempts that failed before it."""
    errors: int

    @property
    def error_rate(self) -> float | None:
        """Failed attempts and streams over attempts (None without any)."""
        return min(1.0, self.errors / self.attempts) if self.attempts else None


def read_counts(families: Iterable[Metric]) -> Snapshot:
    """The per-provider counts in a collection of metric families."""
    counts: Snapshot = {}
    for family in families:
        if family.name == _TTFT:
            for sample in family.samples:
                provider = counts.setdefault(sample.labels["provider"], ProviderCounts())
                if sample.name.endswith("_count"):
                    provider.first_bytes += sample.value
                elif sample.name.endswith("_bucket") and sample.labels["mode"] in _STREAMED:
                    le = float(sample.labels["le"])
                    provider.buckets[le] = provider.buckets.get(le, 0.0) + sample.value
        elif family.name == _ERRORS:
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                provider = counts.setdefault(sample.labels["provider"], ProviderCounts())
                if sample.labels["phase"] == "mid_stream":
                    provider.errors_mid += sample.value
                else:
                    provider.errors_before += sample.value
    return counts


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a histogram's cumulative buckets, PromQL's way.

    Linear within the bucket it falls in (from the previous bound, or 0); in the ``+Inf``
    bucket, the largest finite bound. None for an empty histogram.
    """
    bounds = sorted(buckets.items())
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def _stats(delta: ProviderCounts) -> WindowStats:
    streamed = max(delta.buckets.values(), default=0.0)  # the +Inf bucket counts them all
    return WindowStats(
        ttft_p50_s=quantile(0.5, delta.buckets),
        ttft_p95_s=quantile(0.95, delta.buckets),
        streams=round(streamed),
        attempts=round(delta.first_bytes + delta.errors_before),
        errors=round(delta.errors_before + delta.errors_mid),
    )


class MetricsWindow:
    """Samples of the cumulative counts, and each provider's numbers over the last window."""

    def __init__(
        self,
        read: Callable[[], Snapshot],
        *,
        window_s: float,
        sample_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.sample_s = sample_s
        self._read = read
        self._clock = clock
        self._samples: deque[tuple[float, Snapshot]] = deque(
            maxlen=math.ceil(window_s / sample_s) + 2
        )

    def sample(self) -> None:
        """Keep the counts of now (the background task calls it every ``sample_s``)."""
        self._samples.append((self._clock(), self._read()))

    def stats(self) -> dict[str, WindowStats]:
        """Per provider: what happened between a window ago (or the first sample) and now."""
        now = self._clock()
        current = self._read()
        base: Snapshot = {}
        for taken_at, sampled in self._samples:
            if taken_at >= now - self.window_s:
                base = sampled
                break
        out: dict[str, WindowStats] = {}
        for provider, counts in current.items():
            delta = counts.minus(base.get(provider, ProviderCounts())) or counts
            out[provider] = _stats(delta)
        return out

    async def run(self) -> None:
        """Sample now and every ``sample_s`` until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(self.sample_s)
