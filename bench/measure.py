"""One measurement: the load generator against one side, with every process's CPU counted.

Why a module of its own: the runner (``bench.run``) measures the direct upstream and each
configuration of the service the same way, and the numbers only compare when they are taken
the same way: the load generator pinned beside the upstream, the service's CPU read from
``/proc`` (so a figure holds even when other processes steal the core), core 0's load (when it
nears 100 % the limit is the upstream's or the load generator's, not the service's) and the
share of core 1 other processes took (how noisy the measurement was).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Final

from bench.loadgen import LoadResult
from bench.stack import ROOT
from bench.stack import Stack
from bench.stack import cpu_seconds
from bench.stack import rss_kib

__all__ = ["DIRECT", "MIB", "Measure", "measure", "percentile", "percentiles"]

MIB: Final = 1024
DIRECT: Final = "direct"
"""The side that is the scripted upstream itself, not a configuration of the service."""


@dataclass(slots=True)
class Measure:
    """One side (direct, or one configuration of the service) of one repetition."""

    side: str
    result: LoadResult
    wall_s: float
    service_cpu_s: float = 0.0
    core0_load: float = 0.0
    core1_foreign: float = 0.0
    peak_rss_kib: int = 0

    @property
    def is_service(self) -> bool:
        """Whether this side is the service (its CPU and memory were measured)."""
        return self.side != DIRECT

    def summary(self) -> dict[str, Any]:
        """Percentiles and rates for the JSON (not the samples)."""
        r = self.result
        return {
            "side": self.side,
            "ok": r.ok,
            "failures": r.failures,
            "rps": r.rps,
            "latency_ms": percentiles(r.latency_ms),
            "ttft_ms": percentiles(r.ttft_ms),
            "agent_gap_ms": percentiles(r.agent_gap_ms),
            "reads_per_answer": r.reads / r.ok if r.ok else None,
            "split_reads": r.split_reads,
            "service_cpu_s": self.service_cpu_s,
            "service_cpu_us_per_answer": (self.service_cpu_s / r.ok * 1e6) if r.ok else None,
            "core0_load": self.core0_load,
            "core1_foreign": self.core1_foreign,
            "peak_rss_mib": self.peak_rss_kib / MIB if self.peak_rss_kib else None,
            "loadgen_cpu_s": r.cpu_s,
            "wall_s": self.wall_s,
        }

    def brief(self) -> str:
        """One line for the console while a run goes on."""
        r = self.result
        lat = sorted(r.latency_ms)
        parts = [
            f"{r.rps:,.0f}/s",
            f"p50 {percentile(lat, 50):.2f} ms",
            f"p99 {percentile(lat, 99):.2f} ms",
        ]
        if r.failures:
            parts.append(f"FAILURES {r.failures}")
        if self.is_service and r.ok:
            parts.append(f"{self.service_cpu_s / r.ok * 1e6:,.0f} us CPU/answer")
            parts.append(f"core1 foreign {self.core1_foreign:.0%}")
        parts.append(f"core0 {self.core0_load:.0%}")
        return ", ".join(parts)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in 0..100)."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
    return values[index]


def percentiles(samples: list[float]) -> dict[str, float] | None:
    """p50, p90, p99, p99.9, max and n of ``samples`` (None when there are none)."""
    if not samples:
        return None
    values = sorted(samples)
    out = {f"p{q:g}": percentile(values, q) for q in (50, 90, 99, 99.9)}
    out["max"] = values[-1]
    out["n"] = float(len(values))
    return out


def _core_busy(core: int) -> int:
    """Busy jiffies of one CPU from /proc/stat (everything but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            return sum(values) - values[3] - values[4]
    return 0


class _RssSampler:
    """The service worker's peak RSS while a load runs."""

    def __init__(self, pid: int, period_s: float = 0.2) -> None:
        self.pid = pid
        self.period_s = period_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> _RssSampler:
        with contextlib.suppress(OSError):
            self.peak = rss_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _service_cpu(stack: Stack) -> float:
    return sum(cpu_seconds(pid) for pid in stack.service_pids)


def measure(stack: Stack, side: str, args: list[str], timeout_s: float) -> Measure:
    """Run the load generator (pinned beside the upstream) with ``args`` against ``side``.

    ``stack`` is the configuration measured (for the direct side: any stack, for its upstream).
    """
    command = [sys.executable, "-m", "bench.loadgen", "--samples", *args]
    if stack.options.upstream_core:
        command = ["taskset", "-c", stack.options.upstream_core, *command]
    assert stack.upstream is not None
    upstream_pid = stack.upstream.pid
    s0, u0 = _service_cpu(stack), cpu_seconds(upstream_pid)
    b0 = _core_busy(1)
    t0 = time.perf_counter()
    with _RssSampler(stack.service_pid) as rss:
        proc = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{proc.stderr[-3000:]}")
    result = LoadResult.from_json(json.loads(proc.stdout))
    service_cpu = _service_cpu(stack) - s0
    upstream_cpu = cpu_seconds(upstream_pid) - u0
    core1 = (_core_busy(1) - b0) / os.sysconf("SC_CLK_TCK")
    is_service = side != DIRECT
    return Measure(
        side=side,
        result=result,
        wall_s=wall,
        service_cpu_s=service_cpu if is_service else 0.0,
        core0_load=(upstream_cpu + result.cpu_s) / wall,
        core1_foreign=max(core1 - (service_cpu if is_service else 0.0), 0.0) / wall,
        peak_rss_kib=rss.peak if is_service else 0,
    )
