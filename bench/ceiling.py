"""The framework's ceiling: scenarios B, C, D and E against a bare Quart relay.

Why: some targets of targets.md are per-core throughput limits in disguise (C's TTFT at
concurrency 32 in a closed loop is 32 / streams-per-second; E needs 50,000 relayed frames a
second from one worker). Whether the service can meet them depends first on what Quart,
hypercorn and aiohttp cost on their own, so this runs the same scenarios, the same way
(``bench.run``'s runner, load generator, scripted upstream and core pinning) against
``bench.ceiling_app`` - a relay that does nothing but forward bytes - and prints its rows
beside the targets. A target the bare relay misses cannot be met by any app on this stack
on this machine; the gap between the ceiling and the service is what our own work costs.

    python -m bench.ceiling                 # B, C, D, E; ~6 minutes
    python -m bench.ceiling --scenarios C --reps 3
    python -m bench.ceiling --raw           # the same relay without Quart (plain ASGI)

Writes ``bench/results/ceiling.json`` and ``ceiling.md`` (``ceiling-raw.*`` with --raw).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.configs import Configuration
from bench.report import ScenarioResult
from bench.report import machine
from bench.report import table_lines
from bench.run import _prime
from bench.run import _raise_nofile
from bench.scenarios import Plan
from bench.scenarios import Runner
from bench.stack import ROOT
from bench.stack import Stack
from bench.stack import StackOptions

__all__ = ["main"]

CEILING_APP: Final = "bench.ceiling_app:app"
RAW_APP: Final = "bench.ceiling_app:raw_app"


def _markdown(info: dict[str, object], app: str, results: list[ScenarioResult]) -> str:
    kind = "a plain ASGI relay (no Quart)" if app == RAW_APP else "a bare Quart relay"
    lines = [
        f"# Framework ceiling: {kind} under the same load",
        "",
        f"{info['date']}, commit {info['commit']}. `{app}` (hypercorn uvloop, one worker "
        "pinned to core 1) forwards each request to the scripted upstream with aiohttp and "
        "relays its bytes unparsed: no auth, limits, pool, usage, metrics or logs.",
        "",
        *table_lines(results, {"relay": "Bare relay"}),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios against the bare relay; print and write the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--scenarios", default="B,C,D,E", help="any of A-E")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--raw", action="store_true", help="the relay without Quart")
    args = parser.parse_args(argv)
    app = RAW_APP if args.raw else CEILING_APP
    stem = "ceiling-raw" if args.raw else "ceiling"
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    _raise_nofile()
    pinned = (os.cpu_count() or 1) >= 2
    info = machine()
    results: list[ScenarioResult] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="storywriter-ceiling-") as tmp:
        options = StackOptions(
            workdir=Path(tmp),
            service_core="1" if pinned else "",
            upstream_core="0" if pinned else "",
            app=app,
        )
        with Stack(options) as stack:
            config = Configuration("relay", "Bare relay", "ABCDE", {"app": app})
            runner = Runner({"relay": (config, stack)}, Plan(quick=False, reps=args.reps), "relay")
            _prime(stack)
            table = runner.scenarios()
            for name in wanted:
                print(f"scenario {name} (bare relay) ...", flush=True)
                results.append(table[name]())
    args.out.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": info,
        "app": app,
        "duration_s": time.monotonic() - started,
        "scenarios": {
            r.name: {
                "rows": [
                    {"metric": row.metric, "passed": row.passed, "values": row.values}
                    for row in r.rows
                ],
                "reps": r.reps,
                "notes": r.notes,
            }
            for r in results
        },
    }
    (args.out / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    markdown = _markdown(info, app, results)
    (args.out / f"{stem}.md").write_text(markdown)
    print()
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
