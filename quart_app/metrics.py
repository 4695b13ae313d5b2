"""Prometheus metrics: what is counted, with which labels, and how a scrape is rendered.

Cost on the hot path is a few counter and histogram updates per *request* (labelled
children are cached, so an update is a locked add, ~0.5-1 us), nothing per streamed chunk:
tokens and credits are counted once per call when it settles, time to first token once per
stream. Pool slots and queue lengths are not tracked per request at all: they are read from
the pool when Prometheus scrapes (``render``).

Labels never hold user ids, keys or request ids: routes are URL rules (``unmatched`` for
404s), providers are configured names (``byok`` for every caller's own upstream), models are
capped at ``MAX_MODELS`` distinct values per worker (then ``other``), error kinds are the
stable SNAKE codes of ``providers.errors``. So the number of series stays bounded.

Several hypercorn workers: each worker is its own process with its own counters, and a
scrape reaches one of them. Set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's own switch,
read when it is imported) to an empty directory before starting hypercorn: every worker then
writes its values to files there and any worker's ``/metrics`` aggregates all of them. Our
code learns the directory from the settings (``[server] metrics_multiprocess_dir``, which
``Settings.load`` fills from that variable). Pool
gauges are read at scrape time by the worker that answers: exact for one worker or with
``[coordination] redis_url`` (shared slots), per worker otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import ProcessCollector
from prometheus_client import disable_created_metrics
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead

__all__ = ["CONTENT_TYPE", "MAX_MODELS", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_MODELS = 64
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_TTFT = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_OVERHEAD = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

# ``*_created`` samples would double the series for a timestamp Prometheus does not need.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _Forward:
    """Exposes another registry's metrics in a throwaway exposition registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class _Snapshot:
    """Metric families computed just before a scrape (pool slots and queues)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class Metrics:
    """Every metric of one worker; created once per app, updated by hooks and observers."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """Create the metrics.

        Args:
            multiprocess_dir: The directory the workers share (``PROMETHEUS_MULTIPROC_DIR``,
                through the settings); None for one process.
        """
        self.content_type = CONTENT_TYPE
        """The exposition format's media type, for the scrape response."""
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self.multiprocess = multiprocess_dir is not None
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)  # RSS, CPU, open fds of this worker
        r = self.registry
        self.requests = Counter(
            "storywriter_http_requests",
            "HTTP requests by route, method and status (counted when the response ends).",
            ["route", "method", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "storywriter_http_request_duration_seconds",
            "Request duration until the last byte of the response (whole streams included).",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.rate_limited = Counter(
            "storywriter_rate_limit_refusals",
            "Requests refused with 429 by the service's own per-user limits.",
            ["route"],
            registry=r,
        )
        self.ttft = Histogram(
            "storywriter_time_to_first_token_seconds",
            "From the gateway receiving a call to the first relayed byte (or the JSON answer).",
            ["provider", "model", "mode"],
            buckets=_TTFT,
            registry=r,
        )
        self.overhead = Histogram(
            "storywriter_overhead_seconds",
            "The service's own time per call up to the first byte: everything but upstreams.",
            ["mode"],
            buckets=_OVERHEAD,
            registry=r,
        )
        self.tokens = Counter(
            "storywriter_tokens",
            "Tokens by provider, model and kind (prompt or completion), counted at settlement.",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.credits = Counter(
            "storywriter_credits_charged",
            "Credits charged to members by provider and model.",
            ["provider", "model"],
            registry=r,
        )
        self.completions = Counter(
            "storywriter_completions",
            "Finished calls by provider, model and ending (completed, upstream_error, ...).",
            ["provider", "model", "ending"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "storywriter_upstream_errors",
            "Upstream failures by provider, kind (error code) and phase.",
            ["provider", "kind", "phase"],
            registry=r,
        )
        self.continuations = Counter(
            "storywriter_stream_continuations",
            "Streams cut mid-answer that were continued (resumed) or could not be (failed).",
            ["provider", "outcome"],
            registry=r,
        )
        self.open_streams = Gauge(
            "storywriter_open_streams",
            "Streamed (SSE) responses being sent right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.websockets = Gauge(
            "storywriter_websocket_sessions",
            "WebSocket sessions open right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        self._models: set[str] = set()

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: a dict lookup instead of a locked one (~1.5 us)."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = metric.labels(*labels)
            if len(self._children) < 8192:  # bounded labels, but never grow without limit
                self._children[key] = found
        return found

    def model_label(self, model: str) -> str:
        """``model``, or ``other`` once ``MAX_MODELS`` distinct models were seen."""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request (the per-request hot path: two cached children)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            label = method if method in _METHODS else "OTHER"
            children = (
                self.requests.labels(route, label, str(status)),
                self.duration.labels(route),
            )
            if len(self._request_children) < 4096:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def families(self) -> Iterable[Metric]:
        """Every metric family: this worker's, or all workers' in multiprocess mode."""
        if self.multiprocess_dir is not None:  # the directory render() and close() use
            return MultiProcessCollector(None, str(self.multiprocess_dir)).collect()  # type: ignore[no-untyped-call,no-any-return]
        return self.registry.collect()

    def render(self, pool_status: Mapping[str, Any] | None) -> bytes:
        """The Prometheus text exposition, with pool gauges from ``pool_status``.

        Args:
            pool_status: ``ProviderPool.status()`` read just now, or None to omit it.
        """
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir is not None:
            MultiProcessCollector(registry, str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self.registry))
        if pool_status is not None:
            registry.register(_Snapshot(_pool_families(pool_status)))
        return generate_latest(registry)

    def close(self) -> None:
        """At worker exit: drop this process's live gauges from the shared directory."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]


def _pool_families(status: Mapping[str, Any]) -> list[Metric]:
    in_use = GaugeMetricFamily(
        "storywriter_pool_slots_in_use", "Provider slots held by requests.", labels=["provider"]
    )
    total = GaugeMetricFamily(
        "storywriter_pool_slots", "Provider slots configured.", labels=["provider"]
    )
    queue = GaugeMetricFamily(
        "storywriter_pool_queue_length", "Requests waiting for a slot.", labels=["provider"]
    )
    for provider in status.get("providers", []):
        name = str(provider.get("name", ""))
        in_use.add_metric([name], float(provider.get("slots_in_use", 0)))
        total.add_metric([name], float(provider.get("slots_total", 0)))
        queue.add_metric([name], float(provider.get("queue_length", 0)))
    busy = GaugeMetricFamily("storywriter_pool_busy", "1 when a new request would have to wait.")
    busy.add_metric([], 1.0 if status.get("busy") else 0.0)
    return [in_use, total, queue, busy]
