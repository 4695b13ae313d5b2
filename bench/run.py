"""The benchmark runner: scenarios A-G of targets.md for several configurations, one run.

Why one runner: the machines are shared and noisy, so every figure is a ratio measured in
the same run against the direct upstream, with the same scripted upstream (``bench.catalog``)
and the same load generator (``bench.loadgen``), and the configurations compared with each
other (``bench.configs``: the shipped defaults, the lean one, PostgreSQL with 2 workers, the
framework's bare relays) are measured in the same minutes, repetition by repetition.

Layout (targets.md): each configuration's service is one hypercorn ``--worker-class uvloop``
worker pinned to core 1 (the multi-worker one is unpinned); the upstream and the load
generator share core 0 (``taskset``). Per-user rate limits are on with limits no scenario
reaches, so their bookkeeping is paid but never refuses.

Besides the targets, every measurement records CPU time: the service workers' (so the cost
per request can be read even when other processes steal the core), core 0's load and the
share of core 1 other processes took (how noisy the run was).

Writes ``bench/results/latest.json``, ``latest.md`` and ``latency.png`` (latency
distributions; needs matplotlib, ``pip install -e '.[bench]'``).

    python -m bench.run                      # everything, ~35 minutes with the soak
    python -m bench.run --quick              # a smoke run, a few minutes
    python -m bench.run --scenarios B,C --reps 5 --configs shipped,lean
    python -m bench.run --before ../old-checkout   # adds "before": lean, from that tree
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import Final

from bench.catalog import FAST
from bench.configs import ASGI_RELAY
from bench.configs import BEFORE
from bench.configs import BEFORE_SHIPPED
from bench.configs import LEAN
from bench.configs import POSTGRES
from bench.configs import QUART_RELAY
from bench.configs import SHIPPED
from bench.configs import Configuration
from bench.configs import configurations
from bench.measure import MIB
from bench.measure import percentiles
from bench.report import Row
from bench.report import ScenarioResult
from bench.report import comparison_lines
from bench.report import machine
from bench.report import plot
from bench.report import quantile_curve
from bench.report import table_lines
from bench.scenarios import API
from bench.scenarios import Plan
from bench.scenarios import Runner
from bench.soak import GROWTH_LIMIT
from bench.soak import IDLE_RSS_LIMIT_KIB
from bench.soak import run_soak
from bench.stack import ROOT
from bench.stack import Stack
from bench.stack import StackOptions

__all__ = ["main"]

RESULTS: Final = ROOT / "bench" / "results"
DEFAULT_CONFIGS: Final = ",".join((SHIPPED, LEAN, POSTGRES, QUART_RELAY, ASGI_RELAY))
POSTGRES_URL: Final = os.environ.get(
    "STORYWRITER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: Not the tests' database (15): a run must not meet their keys, nor they its.
REDIS_URL: Final = os.environ.get("STORYWRITER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


# -- F: the soak ---------------------------------------------------------------------------


def scenario_f(duration_s: float, warmup_s: float) -> ScenarioResult:
    """Memory after a mixed soak on a fresh service in the shipped configuration."""
    res = ScenarioResult("F", f"memory after a {duration_s:g} s mixed soak vs after warm-up")
    soak = run_soak(duration_s, warmup_s=warmup_s, credits=True, access_log=True, log=True)
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
            SHIPPED,
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
            SHIPPED,
        )
    )
    total = sum(soak.requests.values())
    res.notes.append(
        f"{total:,} requests ({json.dumps(soak.requests, sort_keys=True)}), shipped "
        f"configuration, unexpected outcomes: "
        f"{json.dumps(soak.unexpected) if soak.unexpected else 'none'}, slots in use at the "
        f"end: {soak.slots_in_use_at_end}, peak RSS under load {soak.peak_rss_kib / MIB:.1f} MiB"
    )
    if duration_s < 600:
        res.notes.append("shorter than the 10-minute soak of targets.md (see --soak)")
    return res


# -- comparisons between configurations ---------------------------------------------------


def _value(scenarios: Sequence[ScenarioResult], name: str, metric: str, config: str) -> Any:
    for s in scenarios:
        for row in s.rows:
            if s.name == name and row.metric.startswith(metric) and row.config == config:
                return row.values
    return None


def comparisons(scenarios: Sequence[ScenarioResult], primary: str) -> list[Row]:
    """Issue 15's targets: the shipped configuration against lean and the framework's relays
    measured in the same run; and, with ``--before``, lean after against lean before."""
    rows: list[Row] = []

    def add(name: str, metric: str, target: str, text: str, passed: bool | None) -> None:
        rows.append(Row(name, metric, target, "", text, "", passed))

    def ratio(name: str, metric: str, key: str, a: str, b: str) -> float | None:
        va, vb = _value(scenarios, name, metric, a), _value(scenarios, name, metric, b)
        if va is None or vb is None or not vb.get(key):
            return None
        return float(va[key]) / float(vb[key])

    def added(name: str, metric: str, a: str, b: str) -> float | None:
        va, vb = _value(scenarios, name, metric, a), _value(scenarios, name, metric, b)
        if va is None or vb is None:
            return None
        return float(va["added_ms"]) - float(vb["added_ms"])

    over = added("A", "added latency p50", primary, LEAN)
    if over is not None:
        add("A", f"added p50, {primary} - lean", "<= +0.25 ms", f"{over:+.3f} ms", over <= 0.25)
    for name, metric, label in (("B", "requests/s", "requests/s"), ("C", "relayed", "tokens/s")):
        r = ratio(name, metric, "service", primary, LEAN)
        if r is not None:
            add(name, f"{label}, {primary} / lean", ">= 0.85x", f"{r:.3f}x", r >= 0.85)
    d = _value(scenarios, "D", "TTFT p99 added", primary)
    if d is not None:
        value = float(d["added_ms"])
        add("D", f"TTFT p99 added, {primary}", "<= +10 ms", f"+{value:.2f} ms", value <= 10)
    r = ratio("C", "relayed", "streams_per_s", primary, QUART_RELAY)
    if r is not None:
        add("C", f"streams/s, {primary} / bare Quart relay", ">= 0.6x", f"{r:.3f}x", r >= 0.6)
    r = ratio("E", "stream time p99", "service_s", primary, ASGI_RELAY)
    if r is not None:
        add("E", f"stream p99, {primary} / plain ASGI relay", "<= 1.03x", f"{r:.3f}x", r <= 1.03)
    for after, before in ((LEAN, BEFORE), (primary, BEFORE_SHIPPED)):
        if _value(scenarios, "A", "added latency p50", before) is not None:
            _before_rows(scenarios, add, ratio, added, after, before)
    return rows


def _before_rows(
    scenarios: Sequence[ScenarioResult], add: Any, ratio: Any, added: Any, after: str, before: str
) -> None:
    """A configuration after vs before: informational (the same-run noise is a few percent)."""
    for q in ("p50", "p99"):
        diff = added("A", f"added latency {q}", after, before)
        if diff is not None:
            add("A", f"added {q}, {after} after - before", "no worse", f"{diff:+.3f} ms", None)
    for name, metric, key, label in (
        ("B", "requests/s", "service", "requests/s"),
        ("C", "relayed", "service", "tokens/s"),
        ("D", "stream time p99", "service_s", "stream p99"),
        ("E", "stream time p99", "service_s", "stream p99"),
    ):
        r = ratio(name, metric, key, after, before)
        if r is not None:
            add(name, f"{label}, {after} after / before", "no worse", f"{r:.3f}x", None)
    diff = added("D", "TTFT p99 added", after, before)
    if diff is not None:
        add("D", f"TTFT p99 added, {after} after - before", "no worse", f"{diff:+.2f} ms", None)
    gap_after = _value(scenarios, "G", "prose token gap", after)
    gap_before = _value(scenarios, "G", "prose token gap", before)
    if gap_after and gap_before and "p99_ms" in gap_after and "p99_ms" in gap_before:
        text = f"{gap_after['p99_ms']:.2f} vs {gap_before['p99_ms']:.2f} ms"
        add("G", f"prose token gap p99, {after} after vs before", "no worse", text, None)


# -- the stacks -----------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres_schema(url: str) -> Iterator[str | None]:
    """A private schema for the multi-worker run's ledger, dropped afterwards (None when
    PostgreSQL does not answer: that configuration is then left out, and the report says)."""
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        print(f"PostgreSQL not reachable at {url} ({error!r}): {POSTGRES} left out")
        yield None
        return
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        asyncio.run(run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@contextlib.contextmanager
def _stacks(
    configs: list[Configuration], workdir: Path, pinned: bool
) -> Iterator[dict[str, tuple[Configuration, Stack]]]:
    """Start every configuration's service against one upstream (the first stack's)."""
    started: dict[str, tuple[Configuration, Stack]] = {}
    owner: Stack | None = None
    # Stopped in reverse: the upstream's owner (the first) stops last, as the others call
    # it until they stop; a stack whose start fails stops what it had started.
    with contextlib.ExitStack() as stacks:
        for config in configs:
            on_core = pinned and config.pinned
            options = StackOptions(
                workdir=workdir / config.name,
                service_core="1" if on_core else "",
                upstream_core="0" if pinned else "",
                **config.options,
            )
            print(f"starting {config.name} ...", flush=True)
            stack = stacks.enter_context(Stack(options, shared_upstream=owner))
            owner = owner or stack
            started[config.name] = (config, stack)
            _prime(stack)
        yield started


def _prime(stack: Stack) -> None:
    """One request before measuring (opens the credit account, warms the connections)."""
    import urllib.request

    from bench.loadgen import chat_body

    request = urllib.request.Request(
        stack.service_root + API + "/chat/completions",
        data=chat_body(FAST, 64, stream=False),
        headers={
            "Authorization": f"Bearer {stack.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


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
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help=f"the first is judged (default {DEFAULT_CONFIGS})",
    )
    parser.add_argument("--before", type=Path, help="another checkout: measured as 'before'")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer repetitions")
    parser.add_argument("--reps", type=int, help="repetitions per scenario (default by scenario)")
    parser.add_argument("--soak", type=float, help="F's soak seconds (600; 20 with --quick)")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="for postgres-2w's ledger")
    parser.add_argument("--redis", default=REDIS_URL, help="for postgres-2w's coordination")
    parser.add_argument("--unpinned", action="store_true", help="no taskset (one core boxes)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--replot", action="store_true", help="only redraw latency.png")
    return parser.parse_args(argv)


def _scenario_json(s: ScenarioResult) -> dict[str, Any]:
    return {
        "title": s.title,
        "rows": [
            {
                "config": r.config,
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
                side: ({**(percentiles(v) or {}), "quantiles": quantile_curve(v)} if v else None)
                for side, v in sides.items()
            }
            for name, sides in s.distributions.items()
        },
        "notes": s.notes,
    }


def _markdown(
    data: dict[str, Any], scenarios: list[ScenarioResult], titles: dict[str, str], rows: list[Row]
) -> str:
    m = data["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"{m['date']}, commit {m['commit']}. Medians of the repetitions; every stream checked "
        "(content chunks and `[DONE]`), a failed answer is a failure, never a sample. Each "
        "cell: the figure and its ratio to the direct upstream; Pass judges the first column.",
        "",
        *table_lines(scenarios, titles),
        "",
        "## Between configurations (same run)",
        "",
        *comparison_lines(rows),
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + f". Load average at the start: {', '.join(f'{x:.2f}' for x in m['load_average'])}.",
        "",
        "Configurations (`bench/configs.py`): "
        + "; ".join(f"{name}: {desc}" for name, desc in data["configs"].items())
        + ". One hypercorn uvloop worker pinned to core 1 unless said; the scripted upstream "
        "and the load generator share core 0; rate limits on with limits no scenario reaches.",
        "",
        "Reproduce: `python -m bench.run` (all scenarios, with a 10-minute soak for F), "
        "`python -m bench.run --quick` (smoke), `python -m bench.soak` (F alone).",
        "",
    ]
    return "\n".join(lines)


def _describe(config: Configuration) -> str:
    o = config.options
    if "app" in o:
        return f"`{o['app']}`"
    parts = [
        "ledger " + ("PostgreSQL" if o.get("ledger_url") else "SQLite" if o["credits"] else "off"),
        "access log " + ("on" if o.get("access_log") else "off"),
    ]
    if o.get("workers", 1) > 1:
        parts.append(f"{o['workers']} workers, Redis coordination, unpinned")
    if "tree" in o:
        parts.append(f"served from {o['tree']}")
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, write the results, print the tables; 0 when every target passed."""
    args = _parse_args(argv)
    configs_wanted = args.configs
    if args.replot:
        data = json.loads((args.out / "latest.json").read_text())
        return 0 if plot(data, args.out / "latency.png", list(data["configs"])[:2]) else 1
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    plan = Plan(quick=args.quick, reps=args.reps)
    _raise_nofile()
    pinned = not args.unpinned and (os.cpu_count() or 1) >= 2
    args.out.mkdir(parents=True, exist_ok=True)
    scenarios: list[ScenarioResult] = []
    started = time.monotonic()
    info = machine()
    with contextlib.ExitStack() as exits:
        ledger = exits.enter_context(_postgres_schema(args.postgres))
        configs = configurations(
            configs_wanted, postgres_url=ledger or "", redis_url=args.redis, before=args.before
        )
        if ledger is None:
            configs = [c for c in configs if c.name != POSTGRES]
        primary = configs[0].name
        titles = {c.name: c.title for c in configs}
        tmp = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="storywriter-bench-")))
        stack_scenarios = [s for s in wanted if s in "ABCDEG"]
        if stack_scenarios:
            with _stacks(configs, tmp, pinned) as stacks:
                runner = Runner(stacks, plan, primary)
                table = runner.scenarios()
                for name in stack_scenarios:
                    print(f"scenario {name} ...", flush=True)
                    scenarios.append(table[name]())
    if "F" in wanted:
        print("scenario F (soak on a fresh service, shipped configuration) ...", flush=True)
        soak_s = args.soak if args.soak is not None else (20.0 if args.quick else 600.0)
        scenarios.append(scenario_f(soak_s, 8.0 if args.quick else 20.0))
        scenarios.sort(key=lambda s: "ABCDEFG".index(s.name))
    between = comparisons(scenarios, primary)
    data = {
        "machine": info,
        "configs": {c.name: _describe(c) for c in configs},
        "primary": primary,
        "quick": args.quick,
        "reps": args.reps,
        "duration_s": time.monotonic() - started,
        "scenarios": {s.name: _scenario_json(s) for s in scenarios},
        "between": [
            {"scenario": r.scenario, "figure": r.metric, "target": r.target}
            | {"measured": r.service, "passed": r.passed}
            for r in between
        ],
    }
    (args.out / "latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    markdown = _markdown(data, scenarios, titles, between)
    if plot(data, args.out / "latency.png", list(titles)[:2]):
        markdown += "\n![Latency distributions](latency.png)\n"
    (args.out / "latest.md").write_text(markdown)
    print()
    print(markdown)
    judged = [r for s in scenarios for r in s.rows if r.config == primary] + between
    return 0 if all(r.passed is not False for r in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
