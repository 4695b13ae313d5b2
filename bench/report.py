"""The benchmark's report: the machine, the Markdown tables and the latency plot.

Why apart from the runner: ``bench.run`` and ``bench.ceiling`` both print rows measured by
the same scenarios, and the JSON a run writes can be re-rendered (``--replot``) without
measuring again.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

from bench.measure import DIRECT
from bench.stack import ROOT

__all__ = [
    "Row",
    "ScenarioResult",
    "comparison_lines",
    "machine",
    "plot",
    "quantile_curve",
    "table_lines",
]

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


@dataclass(slots=True)
class Row:
    """One figure of one configuration (or one comparison between two)."""

    scenario: str
    metric: str
    target: str
    direct: str
    service: str
    ratio: str
    passed: bool | None
    """None: informational, not measured or not available."""
    values: dict[str, Any] = field(default_factory=dict)
    config: str = ""


@dataclass(slots=True)
class ScenarioResult:
    """Rows, per-repetition summaries and pooled distributions of one scenario."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    reps: list[dict[str, Any]] = field(default_factory=list)
    distributions: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


_VERDICT: Final = {True: "pass", False: "**FAIL**", None: "n/a"}


def table_lines(scenarios: Sequence[ScenarioResult], titles: dict[str, str]) -> list[str]:
    """One Markdown table: a row per figure, a column per configuration (``titles``, in
    order: the first is the one the Pass column judges), then the scenarios' notes."""
    names = list(titles)
    head = " | ".join(titles[n] for n in names)
    lines = [
        f"| | Metric | Target | Direct upstream | {head} | Pass |",
        "|---|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for s in scenarios:
        by_metric: dict[str, dict[str, Row]] = {}
        for row in s.rows:
            if row.config in titles:
                by_metric.setdefault(row.metric, {})[row.config] = row
        for metric, rows in by_metric.items():
            first = next(iter(rows.values()))
            cells = []
            for name in names:
                row_or_none = rows.get(name)
                if row_or_none is None:
                    cells.append("")
                    continue
                text = row_or_none.service
                if row_or_none.ratio:
                    text += f" ({row_or_none.ratio})"
                if row_or_none.passed is False:
                    text += " **FAIL**"
                cells.append(text)
            judged = rows.get(names[0], first)
            lines.append(
                f"| {s.name} | {metric} | {first.target} | {first.direct} | "
                + " | ".join(cells)
                + f" | {_VERDICT[judged.passed]} |"
            )
    notes = [f"- {s.name}: {note}" for s in scenarios for note in s.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return lines


def comparison_lines(rows: Sequence[Row]) -> list[str]:
    """The targets that compare two configurations of the same run (issue 15)."""
    lines = [
        "| | Figure | Target | Measured | Pass |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.scenario} | {r.metric} | {r.target} | {r.service} | {_VERDICT[r.passed]} |"
        for r in rows
    ]
    return lines


_PANELS: Final = {
    ("A", "latency_ms"): ("A: non-streamed latency, concurrency 1", True),
    ("B", "latency_ms"): ("B: non-streamed latency, concurrency 32", True),
    ("C", "ttft_ms"): ("C: time to first token, 64-token streams, c=32", True),
    ("C", "latency_ms"): ("C: 64-token stream time, concurrency 32", True),
    ("D", "latency_ms"): ("D: 200 tokens x 20 ms, c=100: stream time", False),
    ("E", "latency_ms"): ("E: 200 tokens x 20 ms, c=1,000: stream time", False),
}
_QUANTILES: Final = 401
_COLORS: Final = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray")


def quantile_curve(samples: list[float]) -> list[float]:
    """``_QUANTILES`` evenly spaced quantiles (0..100 %): enough to redraw a CDF."""
    values = sorted(samples)
    last = len(values) - 1
    return [values[round(i * last / (_QUANTILES - 1))] for i in range(_QUANTILES)]


def plot(data: dict[str, Any], path: Path, sides: Sequence[str]) -> bool:
    """Draw latency CDFs of the direct upstream and ``sides`` from the run's JSON."""
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
        found = data["scenarios"].get(name, {}).get("distributions", {}).get(metric) or {}
        curves = {side: d["quantiles"] for side, d in found.items() if d and d.get("quantiles")}
        if curves:
            panels.append((title, curves, log))
    if not panels:
        return False
    cols = 3 if len(panels) > 4 else 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    ys = [100.0 * i / (_QUANTILES - 1) for i in range(_QUANTILES)]
    colors = {DIRECT: "tab:blue", **dict(zip(sides, _COLORS, strict=False))}
    for ax, (title, curves, log) in zip(axes.flat, panels, strict=False):
        for side in (DIRECT, *sides):
            if side in curves:
                scale = 1.0 if log else 1000.0
                xs = [x / scale for x in curves[side]]
                ax.plot(xs, ys, label=side, color=colors[side])
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
    fig.suptitle("Latency distributions: the service's configurations vs the direct upstream")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
