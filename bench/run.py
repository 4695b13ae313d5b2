"""The benchmark runner: scenarios A-G of targets.md, service against direct upstream, one run.

Why one runner: the machines are shared and noisy, so every figure is a ratio measured in
the same run against the direct upstream, with the same scripted upstream (``bench.catalog``)
and the same load generator (``bench.loadgen``). For each scenario and repetition it
measures the direct upstream and then the service (alternating which goes first), and
reports the medians of the repetitions.

Layout (targets.md): the service is one hypercorn ``--worker-class uvloop`` worker pinned to
core 1; the upstream and the load generator share core 0 (``taskset``). The bench config
turns hypercorn's access log off, the credit ledger off (``--credits`` turns it on) and
keeps the rate limits on with limits no scenario reaches (``--no-limits`` turns them off).

Besides the targets, every measurement records CPU time: the service worker's (so the cost
per request can be read even when other processes steal the core), core 0's load (the
upstream plus the load generator: when it nears 100 % the limit is ours, not the service's)
and the share of core 1 other processes took (how noisy the run was).

Writes ``bench/results/latest.json``, ``latest.md`` and ``latency.png`` (service vs direct
latency distributions; needs matplotlib, ``pip install -e '.[bench]'``).

    python -m bench.run                      # everything, ~25 minutes with the soak
    python -m bench.run --quick              # a smoke run, a few minutes
    python -m bench.run --scenarios B,C --reps 5
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

from bench.catalog import FAST
from bench.catalog import PACED
from bench.loadgen import LoadResult
from bench.soak import GROWTH_LIMIT
from bench.soak import IDLE_RSS_LIMIT_KIB
from bench.soak import run_soak
from bench.stack import ROOT
from bench.stack import Stack
from bench.stack import StackOptions
from bench.stack import cpu_seconds
from bench.stack import rss_kib

__all__ = ["main"]

RESULTS: Final = ROOT / "bench" / "results"
_API: Final = "/api/proxy/llm/v1"
_AGENT_PATH: Final = "/api/streaming_agent/scenario/stream"
_AGENT_HEALTH: Final = "/api/streaming_agent/scenario/stream/health"
#: 200 tokens at 20 ms: the last one is written 199 x 20 ms after the first (targets D, E).
IDEAL_PACED_S: Final = 3.98
MIB: Final = 1024
_PACKAGES: Final = (
    "quart",
    "hypercorn",
    "h11",
    "werkzeug",
    "aiohttp",
    "uvloop",
    "orjson",
    "pydantic",
    "pyjwt",
    "tiktoken",
)


# -- measuring ----------------------------------------------------------------------------


@dataclass(slots=True)
class Measure:
    """One side (direct or service) of one repetition of one scenario."""

    side: str
    result: LoadResult
    wall_s: float
    service_cpu_s: float = 0.0
    upstream_cpu_s: float = 0.0
    core0_load: float = 0.0
    core1_foreign: float = 0.0
    peak_rss_kib: int = 0

    def summary(self) -> dict[str, Any]:
        """Percentiles and rates for the JSON (not the samples)."""
        r = self.result
        return {
            "side": self.side,
            "ok": r.ok,
            "failures": r.failures,
            "rps": r.rps,
            "latency_ms": _percentiles(r.latency_ms),
            "ttft_ms": _percentiles(r.ttft_ms),
            "agent_gap_ms": _percentiles(r.agent_gap_ms),
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


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in 0..100)."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
    return values[index]


def _percentiles(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    values = sorted(samples)
    out = {f"p{q:g}": _percentile(values, q) for q in (50, 90, 99, 99.9)}
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


def _loadgen(stack: Stack, side: str, args: list[str], timeout_s: float) -> Measure:
    """Run the load generator pinned to core 0 and account for every process's CPU."""
    command = [sys.executable, "-m", "bench.loadgen", "--samples", *args]
    if stack.options.upstream_core:
        command = ["taskset", "-c", stack.options.upstream_core, *command]
    assert stack.upstream is not None
    service_pid, upstream_pid = stack.service_pid, stack.upstream.pid
    s0, u0 = cpu_seconds(service_pid), cpu_seconds(upstream_pid)
    b0 = _core_busy(1)
    t0 = time.perf_counter()
    with _RssSampler(service_pid) as rss:
        proc = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{proc.stderr[-3000:]}")
    result = LoadResult.from_json(json.loads(proc.stdout))
    service_cpu = cpu_seconds(service_pid) - s0
    upstream_cpu = cpu_seconds(upstream_pid) - u0
    core1 = (_core_busy(1) - b0) / os.sysconf("SC_CLK_TCK")
    return Measure(
        side=side,
        result=result,
        wall_s=wall,
        service_cpu_s=service_cpu if side == "service" else 0.0,
        upstream_cpu_s=upstream_cpu,
        core0_load=(upstream_cpu + result.cpu_s) / wall,
        core1_foreign=max(core1 - service_cpu, 0.0) / wall,
        peak_rss_kib=rss.peak if side == "service" else 0,
    )


# -- scenarios ----------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    scenario: str
    metric: str
    target: str
    direct: str
    service: str
    ratio: str
    passed: bool | None
    """None: not measured or not available."""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ScenarioResult:
    """Rows, per-repetition summaries and pooled distributions of one scenario."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    reps: list[dict[str, Any]] = field(default_factory=list)
    distributions: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    """How long and how often to measure."""

    quick: bool
    reps: int | None

    def count(self, full: int, quick: int) -> int:
        """Repetitions: ``--reps`` when given, else the scenario's default."""
        if self.reps is not None:
            return self.reps
        return quick if self.quick else full


def _median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else float("nan")


def _fmt(value: float, unit: str = "", digits: int = 0) -> str:
    if value != value:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _pairs(
    stack: Stack, reps: int, direct: list[str], service: list[str], timeout_s: float
) -> Iterator[tuple[Measure, Measure]]:
    """Direct and service measurements, alternating which goes first."""
    for rep in range(reps):
        if rep % 2 == 0:
            d = _loadgen(stack, "direct", direct, timeout_s)
            s = _loadgen(stack, "service", service, timeout_s)
        else:
            s = _loadgen(stack, "service", service, timeout_s)
            d = _loadgen(stack, "direct", direct, timeout_s)
        yield d, s


def _args(url: str, mode: str, model: str, tokens: int, **options: Any) -> list[str]:
    args = ["--url", url, "--mode", mode, "--model", model, "--tokens", str(tokens)]
    for name, value in options.items():
        if value is True:
            args.append("--" + name.replace("_", "-"))
        elif value is not None and value is not False:
            args += ["--" + name.replace("_", "-"), str(value)]
    return args


class Runner:
    """Runs the scenarios against one stack."""

    def __init__(self, stack: Stack, plan: Plan) -> None:
        self.stack = stack
        self.plan = plan
        self.direct_url = stack.upstream_base + "/chat/completions"
        self.service_api = stack.service_root + _API

    def _both(
        self, mode: str, model: str, tokens: int, **options: Any
    ) -> tuple[list[str], list[str]]:
        stream = mode != "json"
        direct = _args(self.direct_url, mode, model, tokens, include_usage=stream, **options)
        path = "/frontend/chat/completions" if stream else "/chat/completions"
        service = _args(
            self.service_api + path, mode, model, tokens, token=self.stack.token, **options
        )
        return direct, service

    def _collect(
        self, result: ScenarioResult, pairs: Iterator[tuple[Measure, Measure]], *dists: str
    ) -> list[tuple[Measure, Measure]]:
        collected = []
        for d, s in pairs:
            collected.append((d, s))
            result.reps.append({"direct": d.summary(), "service": s.summary()})
            for name in dists:
                for m in (d, s):
                    samples = getattr(m.result, name)
                    result.distributions.setdefault(name, {}).setdefault(m.side, []).extend(samples)
            print(
                f"  {result.name}: direct {_brief(d)} | service {_brief(s)}",
                flush=True,
            )
        return collected

    def scenarios(self) -> dict[str, Callable[[], ScenarioResult]]:
        """The scenarios measured against a running stack, by letter (F has its own)."""
        return {
            "A": self.scenario_a,
            "B": self.scenario_b,
            "C": self.scenario_c,
            "D": self.scenario_d,
            "E": self.scenario_e,
            "G": self.scenario_g,
        }

    # A ---------------------------------------------------------------------------------
    def scenario_a(self) -> ScenarioResult:
        res = ScenarioResult("A", "non-streamed, 64 tokens, concurrency 1: added latency")
        duration = 1.5 if self.plan.quick else 4.0
        direct, service = self._both("json", FAST, 64, concurrency=1, duration=duration, warmup=0.5)
        reps = self.plan.count(5, 2)
        pairs = self._collect(res, _pairs(self.stack, reps, direct, service, 120), "latency_ms")
        for q, target in ((50, 1.0), (99, 3.0)):
            d = [_percentile(sorted(p[0].result.latency_ms), q) for p in pairs]
            s = [_percentile(sorted(p[1].result.latency_ms), q) for p in pairs]
            added = _median([b - a for a, b in zip(d, s, strict=True)])
            res.rows.append(
                Row(
                    "A",
                    f"added latency p{q}",
                    f"<= +{target:g} ms",
                    _fmt(_median(d), " ms", 3),
                    _fmt(_median(s), " ms", 3),
                    f"+{added:.3f} ms",
                    _failures_free(pairs) and added <= target,
                    {"direct_ms": _median(d), "service_ms": _median(s), "added_ms": added},
                )
            )
        return res

    # B ---------------------------------------------------------------------------------
    def scenario_b(self) -> ScenarioResult:
        res = ScenarioResult("B", "non-streamed, concurrency 32: requests/s")
        duration = 2.0 if self.plan.quick else 5.0
        direct, service = self._both(
            "json", FAST, 64, concurrency=32, duration=duration, warmup=1.0
        )
        reps = self.plan.count(5, 2)
        pairs = self._collect(res, _pairs(self.stack, reps, direct, service, 120), "latency_ms")
        d = _median([p[0].result.rps for p in pairs])
        s = _median([p[1].result.rps for p in pairs])
        res.rows.append(
            Row(
                "B",
                "requests/s",
                ">= 1,500",
                _fmt(d),
                _fmt(s),
                f"{s / d:.3f}x",
                _failures_free(pairs) and s >= 1500,
                {"direct": d, "service": s},
            )
        )
        _cpu_rows(res, pairs, "request", 1)
        return res

    # C ---------------------------------------------------------------------------------
    def scenario_c(self) -> ScenarioResult:
        res = ScenarioResult("C", "streamed, 64 tokens, concurrency 32")
        duration = 2.0 if self.plan.quick else 5.0
        direct, service = self._both(
            "stream", FAST, 64, concurrency=32, duration=duration, warmup=1.0
        )
        reps = self.plan.count(5, 2)
        pairs = self._collect(
            res, _pairs(self.stack, reps, direct, service, 120), "ttft_ms", "latency_ms"
        )
        d = _median([p[0].result.rps * 64 for p in pairs])
        s = _median([p[1].result.rps * 64 for p in pairs])
        ok = _failures_free(pairs)
        res.rows.append(
            Row(
                "C",
                "relayed tokens/s",
                ">= 40,000",
                _fmt(d),
                _fmt(s),
                f"{s / d:.3f}x",
                ok and s >= 40_000,
                {"direct": d, "service": s},
            )
        )
        dt = _median([_percentile(sorted(p[0].result.ttft_ms), 50) for p in pairs])
        st = _median([_percentile(sorted(p[1].result.ttft_ms), 50) for p in pairs])
        res.rows.append(
            Row(
                "C",
                "TTFT p50",
                "<= 2x direct",
                _fmt(dt, " ms", 2),
                _fmt(st, " ms", 2),
                f"{st / dt:.2f}x",
                ok and st <= 2 * dt,
                {"direct_ms": dt, "service_ms": st},
            )
        )
        _cpu_rows(res, pairs, "stream", 64)
        return res

    # D and E ---------------------------------------------------------------------------
    def _paced(
        self, name: str, title: str, concurrency: int, ramp: float, duration: float, reps: int
    ) -> tuple[ScenarioResult, list[tuple[Measure, Measure]]]:
        res = ScenarioResult(name, title)
        # Samples start after the first round (the ramp and the connection set-up).
        direct, service = self._both(
            "stream",
            PACED,
            200,
            concurrency=concurrency,
            duration=duration,
            warmup=ramp + 0.2,
            ramp=ramp,
        )
        pairs = self._collect(
            res,
            _pairs(self.stack, reps, direct, service, duration + ramp + 120),
            "latency_ms",
            "ttft_ms",
        )
        return res, pairs

    def scenario_d(self) -> ScenarioResult:
        duration = 5.0 if self.plan.quick else 12.0
        res, pairs = self._paced(
            "D",
            "streamed, 200 tokens at 20 ms/token, concurrency 100",
            100,
            1.0,
            duration,
            self.plan.count(3, 1),
        )
        ok = _failures_free(pairs)
        d = _median([_percentile(sorted(p[0].result.latency_ms), 99) / 1000 for p in pairs])
        s = _median([_percentile(sorted(p[1].result.latency_ms), 99) / 1000 for p in pairs])
        res.rows.append(
            Row(
                "D",
                "stream time p99 / ideal 3.98 s",
                "<= 1.05x",
                f"{d:.3f} s ({d / IDEAL_PACED_S:.3f}x)",
                f"{s:.3f} s ({s / IDEAL_PACED_S:.3f}x)",
                f"{s / IDEAL_PACED_S:.3f}x",
                ok and s <= 1.05 * IDEAL_PACED_S,
                {"direct_s": d, "service_s": s, "ideal_s": IDEAL_PACED_S},
            )
        )
        dt = [_percentile(sorted(p[0].result.ttft_ms), 99) for p in pairs]
        st = [_percentile(sorted(p[1].result.ttft_ms), 99) for p in pairs]
        added = _median([b - a for a, b in zip(dt, st, strict=True)])
        res.rows.append(
            Row(
                "D",
                "TTFT p99 added",
                "<= +10 ms",
                _fmt(_median(dt), " ms", 2),
                _fmt(_median(st), " ms", 2),
                f"+{added:.2f} ms",
                ok and added <= 10.0,
                {"direct_ms": _median(dt), "service_ms": _median(st), "added_ms": added},
            )
        )
        _cpu_rows(res, pairs, "stream", 200)
        return res

    def scenario_e(self) -> ScenarioResult:
        duration = 5.0 if self.plan.quick else 9.0
        res, pairs = self._paced(
            "E",
            "1,000 concurrent streams at 20 ms/token on one worker",
            1000,
            3.0,
            duration,
            self.plan.count(3, 1),
        )
        failures = sum(sum(p[1].result.failures.values()) for p in pairs)
        answers = sum(p[1].result.ok for p in pairs)
        res.rows.append(
            Row(
                "E",
                "streams complete",
                "all",
                _fmt(float(sum(p[0].result.ok for p in pairs))),
                f"{answers:,} ok, {failures} failed",
                "",
                failures == 0 and answers > 0,
                {"service_ok": answers, "service_failures": failures},
            )
        )
        d = _median([_percentile(sorted(p[0].result.latency_ms), 99) / 1000 for p in pairs])
        s = _median([_percentile(sorted(p[1].result.latency_ms), 99) / 1000 for p in pairs])
        res.rows.append(
            Row(
                "E",
                "stream time p99 / ideal 3.98 s",
                "<= 1.10x",
                f"{d:.3f} s ({d / IDEAL_PACED_S:.3f}x)",
                f"{s:.3f} s ({s / IDEAL_PACED_S:.3f}x)",
                f"{s / IDEAL_PACED_S:.3f}x",
                failures == 0 and s <= 1.10 * IDEAL_PACED_S,
                {"direct_s": d, "service_s": s},
            )
        )
        peak = max(p[1].peak_rss_kib for p in pairs) / MIB
        res.rows.append(
            Row(
                "E",
                "service RSS peak",
                "<= 300 MiB",
                "",
                f"{peak:.1f} MiB",
                "",
                peak <= 300,
                {"peak_rss_mib": peak},
            )
        )
        _cpu_rows(res, pairs, "stream", 200)
        return res

    # G ---------------------------------------------------------------------------------
    def scenario_g(self) -> ScenarioResult:
        res = ScenarioResult("G", "agent: first streamed prose token after the upstream's")
        if not self.stack.has_route(_AGENT_HEALTH):
            res.rows.append(
                Row("G", "prose token gap p99", "<= 15 ms", "", "not available", "", None)
            )
            res.notes.append(f"{_AGENT_HEALTH} did not answer 200: the agent is not served.")
            return res
        body = json.dumps({"message": "Tell me about the harbour town.", "scenario": {}})
        args = [
            "--url",
            self.stack.service_root + _AGENT_PATH,
            "--mode",
            "agent",
            "--body",
            body,
            "--token",
            self.stack.token,
            "--concurrency",
            "1",
            "--requests",
            "20" if self.plan.quick else "100",
            "--duration",
            "300",
            "--warmup",
            "1",
        ]
        gaps: list[float] = []
        for _ in range(self.plan.count(3, 1)):
            m = _loadgen(self.stack, "service", args, 400)
            res.reps.append({"service": m.summary()})
            gaps_rep = sorted(m.result.agent_gap_ms)
            gaps.append(_percentile(gaps_rep, 99) if gaps_rep else float("nan"))
            res.distributions.setdefault("agent_gap_ms", {}).setdefault("service", []).extend(
                m.result.agent_gap_ms
            )
            print(f"  G: service {_brief(m)}", flush=True)
        failures = sum(sum(r["service"]["failures"].values()) for r in res.reps)
        p99 = _median(gaps)
        res.rows.append(
            Row(
                "G",
                "prose token gap p99",
                "<= 15 ms",
                "",
                _fmt(p99, " ms", 2),
                "",
                failures == 0 and p99 <= 15.0,
                {"p99_ms": p99, "failures": failures},
            )
        )
        return res


def _failures_free(pairs: list[tuple[Measure, Measure]]) -> bool:
    return all(not m.result.failures and m.result.ok > 0 for pair in pairs for m in pair)


def _brief(m: Measure) -> str:
    r = m.result
    lat = sorted(r.latency_ms)
    parts = [
        f"{r.rps:,.0f}/s",
        f"p50 {_percentile(lat, 50):.2f} ms",
        f"p99 {_percentile(lat, 99):.2f} ms",
    ]
    if r.failures:
        parts.append(f"FAILURES {r.failures}")
    if m.side == "service" and r.ok:
        parts.append(f"{m.service_cpu_s / r.ok * 1e6:,.0f} us CPU/answer")
        parts.append(f"core1 foreign {m.core1_foreign:.0%}")
    parts.append(f"core0 {m.core0_load:.0%}")
    return ", ".join(parts)


def _cpu_rows(
    res: ScenarioResult, pairs: list[tuple[Measure, Measure]], unit: str, tokens: int
) -> None:
    """Notes on CPU: the service's cost per answer and how busy the cores were."""
    per = _median([p[1].service_cpu_s / p[1].result.ok * 1e6 for p in pairs if p[1].result.ok])
    foreign = _median([p[1].core1_foreign for p in pairs])
    core0 = _median([p[1].core0_load for p in pairs])
    capacity = 1e6 / per if per == per and per > 0 else float("nan")
    what = f"{capacity:,.0f} {unit}s/s" + (
        f" ({capacity * tokens:,.0f} tokens/s)" if tokens > 1 else ""
    )
    res.notes.append(
        f"service CPU {per:,.0f} us per {unit} (one fully available core would serve ~{what}); "
        f"other processes took {foreign:.0%} of core 1; core 0 (upstream + load generator) "
        f"was {core0:.0%} busy during the service measurement"
    )


# -- F: the soak ---------------------------------------------------------------------------


def scenario_f(duration_s: float, warmup_s: float, credits: bool) -> ScenarioResult:
    """Memory after a mixed soak on a fresh service (bench.soak)."""
    res = ScenarioResult("F", f"memory after a {duration_s:g} s mixed soak vs after warm-up")
    soak = run_soak(duration_s, warmup_s=warmup_s, credits=credits, log=True)
    idle = soak.idle_rss_kib / MIB
    res.reps.append({"soak": soak.to_json()})
    functional = soak.functional_ok
    res.rows.append(
        Row(
            "F",
            "idle RSS after warm-up",
            "<= 120 MiB",
            "",
            f"{idle:.1f} MiB",
            "",
            functional and soak.idle_rss_kib <= IDLE_RSS_LIMIT_KIB,
            {"idle_rss_mib": idle, "peak_rss_mib": soak.peak_rss_kib / MIB},
        )
    )
    res.rows.append(
        Row(
            "F",
            f"RSS growth over {duration_s:g} s",
            "<= 5 %",
            "",
            f"{soak.growth * 100:+.2f} %",
            "",
            functional and soak.growth <= GROWTH_LIMIT,
            {"growth": soak.growth, "final_rss_mib": soak.final_rss_kib / MIB},
        )
    )
    total = sum(soak.requests.values())
    res.notes.append(
        f"{total:,} requests ({json.dumps(soak.requests, sort_keys=True)}), "
        f"credits {'on' if credits else 'off'}, unexpected outcomes: "
        f"{json.dumps(soak.unexpected) if soak.unexpected else 'none'}, slots in use at the "
        f"end: {soak.slots_in_use_at_end}, peak RSS under load {soak.peak_rss_kib / MIB:.1f} MiB"
    )
    if duration_s < 600:
        res.notes.append("shorter than the 10-minute soak of targets.md (see --soak)")
    return res


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Cores, CPU model, kernel, Python and package versions, and the commit measured."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        commit = head + (" (with uncommitted changes)" if dirty else "")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": commit,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def table_lines(scenarios: Sequence[ScenarioResult], measured: str) -> list[str]:
    """The Markdown table of ``scenarios``' rows, then their notes; ``measured`` heads the
    column of what was measured against the direct upstream."""
    lines = [
        f"| | Metric | Target | Direct upstream | {measured} | Ratio | Pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        for row in s.rows:
            verdict = {True: "pass", False: "**FAIL**", None: "n/a"}[row.passed]
            lines.append(
                f"| {row.scenario} | {row.metric} | {row.target} | {row.direct} | "
                f"{row.service} | {row.ratio} | {verdict} |"
            )
    lines += ["", "Notes:", ""]
    lines += [f"- {s.name}: {note}" for s in scenarios for note in s.notes]
    return lines


def _markdown(data: dict[str, Any], scenarios: list[ScenarioResult]) -> str:
    m = data["machine"]
    cfg = data["config"]
    lines = [
        "# Benchmark results",
        "",
        f"{m['date']}, commit {m['commit']}. Medians of the repetitions; every stream checked "
        "(content chunks and `[DONE]`), a failed answer is a failure, never a sample.",
        "",
        *table_lines(scenarios, "Service"),
    ]
    lines += [
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + f". Load average at the start: {', '.join(f'{x:.2f}' for x in m['load_average'])}.",
        "",
        f"Layout: the service is one hypercorn `--worker-class uvloop` worker pinned to core "
        f"{cfg['service_core'] or '(unpinned)'}; the scripted upstream and the load generator "
        f"share core {cfg['upstream_core'] or '(unpinned)'}. Bench config: access log off, "
        f"log level {cfg['log_level']}, credit ledger {'on' if cfg['credits'] else 'off'}, "
        f"rate limits {'on (limits no scenario reaches)' if cfg['limits'] else 'off'}, "
        "embedded model off.",
        "",
        "Reproduce: `python -m bench.run` (all scenarios, with a 10-minute soak for F), "
        "`python -m bench.run --quick` (smoke), `python -m bench.soak` (F alone).",
        "",
    ]
    return "\n".join(lines)


_PANELS: Final = {
    ("A", "latency_ms"): ("A: non-streamed latency, concurrency 1", True),
    ("B", "latency_ms"): ("B: non-streamed latency, concurrency 32", True),
    ("C", "ttft_ms"): ("C: time to first token, 64-token streams, c=32", True),
    ("C", "latency_ms"): ("C: 64-token stream time, concurrency 32", True),
    ("D", "latency_ms"): ("D: 200 tokens x 20 ms, c=100: stream time", False),
    ("E", "latency_ms"): ("E: 200 tokens x 20 ms, c=1,000: stream time", False),
}
_QUANTILES: Final = 401


def _quantile_curve(samples: list[float]) -> list[float]:
    """``_QUANTILES`` evenly spaced quantiles (0..100 %): enough to redraw a CDF."""
    values = sorted(samples)
    last = len(values) - 1
    return [values[round(i * last / (_QUANTILES - 1))] for i in range(_QUANTILES)]


def plot(data: dict[str, Any], path: Path) -> bool:
    """Draw service vs direct latency CDFs from ``latest.json``'s quantile curves."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter
        from matplotlib.ticker import LogLocator
        from matplotlib.ticker import NullFormatter
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[bench]')")
        return False
    panels = []
    for (name, metric), (title, log) in _PANELS.items():
        sides = data["scenarios"].get(name, {}).get("distributions", {}).get(metric) or {}
        curves = {side: d["quantiles"] for side, d in sides.items() if d and d.get("quantiles")}
        if curves:
            panels.append((title, curves, log))
    if not panels:
        return False
    cols = 3 if len(panels) > 4 else 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    ys = [100.0 * i / (_QUANTILES - 1) for i in range(_QUANTILES)]
    for ax, (title, curves, log) in zip(axes.flat, panels, strict=False):
        for side, color in (("direct", "tab:blue"), ("service", "tab:orange")):
            if side in curves:
                scale = 1.0 if log else 1000.0
                ax.plot([x / scale for x in curves[side]], ys, label=side, color=color)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ms" if log else "s")
        ax.set_ylabel("percentile")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Latency distributions: service vs direct upstream (same run)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main -----------------------------------------------------------------------------------


def _raise_nofile(wanted: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        print(f"warning: only {soft} file descriptors; scenario E needs ~4,000")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="A,B,C,D,E,F,G", help="e.g. A,B (default all)")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer repetitions")
    parser.add_argument("--reps", type=int, help="repetitions per scenario (default by scenario)")
    parser.add_argument("--soak", type=float, help="F's soak seconds (600; 20 with --quick)")
    parser.add_argument("--credits", action="store_true", help="run the credit ledger")
    parser.add_argument("--no-limits", action="store_true", help="turn the rate limits off")
    parser.add_argument("--unpinned", action="store_true", help="no taskset (one core boxes)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--replot", action="store_true", help="only redraw latency.png")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, write the results, print the table; 0 when every target passed."""
    args = _parse_args(argv)
    if args.replot:
        data = json.loads((args.out / "latest.json").read_text())
        return 0 if plot(data, args.out / "latency.png") else 1
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    plan = Plan(quick=args.quick, reps=args.reps)
    _raise_nofile()
    pinned = not args.unpinned and (os.cpu_count() or 1) >= 2
    args.out.mkdir(parents=True, exist_ok=True)
    scenarios: list[ScenarioResult] = []
    started = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="storywriter-bench-") as tmp:
        options = StackOptions(
            workdir=Path(tmp),
            service_core="1" if pinned else "",
            upstream_core="0" if pinned else "",
            credits=args.credits,
            limits=not args.no_limits,
        )
        stack_scenarios = [s for s in wanted if s in "ABCDEG"]
        if stack_scenarios:
            with Stack(options) as stack:
                runner = Runner(stack, plan)
                _prime(stack)
                table = runner.scenarios()
                for name in stack_scenarios:
                    print(f"scenario {name} ...", flush=True)
                    scenarios.append(table[name]())
        if "F" in wanted:
            print("scenario F (soak on a fresh service) ...", flush=True)
            soak_s = args.soak if args.soak is not None else (20.0 if args.quick else 600.0)
            warmup = 8.0 if args.quick else 20.0
            result = scenario_f(soak_s, warmup, credits=True)
            order = "ABCDEFG"
            scenarios.append(result)
            scenarios.sort(key=lambda s: order.index(s.name))
    data = {
        "machine": info,
        "config": {
            "service_core": options.service_core,
            "upstream_core": options.upstream_core,
            "workers": options.workers,
            "credits": options.credits,
            "limits": options.limits,
            "log_level": options.log_level,
            "access_log": False,
            "quick": args.quick,
            "reps": args.reps,
        },
        "duration_s": time.monotonic() - started,
        "scenarios": {
            s.name: {
                "title": s.title,
                "rows": [
                    {
                        "metric": r.metric,
                        "target": r.target,
                        "direct": r.direct,
                        "service": r.service,
                        "ratio": r.ratio,
                        "passed": r.passed,
                        "values": r.values,
                    }
                    for r in s.rows
                ],
                "reps": s.reps,
                "distributions": {
                    name: {
                        side: (
                            {**(_percentiles(v) or {}), "quantiles": _quantile_curve(v)}
                            if v
                            else None
                        )
                        for side, v in sides.items()
                    }
                    for name, sides in s.distributions.items()
                },
                "notes": s.notes,
            }
            for s in scenarios
        },
    }
    (args.out / "latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    markdown = _markdown(data, scenarios)
    plotted = plot(data, args.out / "latency.png")
    if plotted:
        markdown += "\n![Latency distributions, service vs direct](latency.png)\n"
    (args.out / "latest.md").write_text(markdown)
    print()
    print(markdown)
    rows = [r for s in scenarios for r in s.rows]
    return 0 if all(r.passed is not False for r in rows) else 1


def _prime(stack: Stack) -> None:
    """One request of each kind before measuring (opens the credit account, loads tiktoken)."""
    import urllib.request

    from bench.loadgen import chat_body

    for body, accept in ((chat_body(FAST, 64, stream=False), "application/json"),):
        request = urllib.request.Request(
            stack.service_root + _API + "/chat/completions",
            data=body,
            headers={
                "Authorization": f"Bearer {stack.token}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


if __name__ == "__main__":
    sys.exit(main())
