"""The evaluation's outputs: the per-operation table, the failures, the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.agent_eval_model import Add
from bench.agent_eval_model import Case
from bench.agent_eval_model import Edit
from bench.agent_eval_model import NewScenario
from bench.agent_eval_model import Remove
from bench.agent_eval_model import SetField
from bench.agent_eval_model import Step

__all__ = ["CaseResult", "describe", "machine", "render", "summary", "write_json"]

ROWS = ("explain", "chat", "modify", "create", "delete", "clarify", "multi")


@dataclass(slots=True)
class CaseResult:
    """One case's turn: what was asked, what happened, how it was judged, how long."""

    id: str
    group: str
    """Table row: the case's operation, or ``multi`` for several operations."""
    starter: bool
    message: str
    expected: str
    valid: bool
    correct: bool
    problems: list[str]
    happened: str
    seconds: float
    ttft: float | None
    """Time to the first ``chat`` frame with content; None when there was none."""
    answer: str = ""
    """The chat bubble's text at the end of the turn."""
    diff: list[str] = field(default_factory=list)
    """What the turn changed, old -> new (``bench.agent_eval_score.diff``)."""


def _change(change: Any) -> str:
    if isinstance(change, Add):
        what = f" named {change.name!r}" if change.name else ""
        return f"{change.count} new in {change.collection}{what}"
    if isinstance(change, Edit):
        parts = [f"{k}~{v!r}" for k, v in change.set.items()]
        if change.any_of:
            parts.append(f"one of {'/'.join(change.any_of)} changed")
        return f"{change.collection}[{change.id}] {', '.join(parts)}"
    if isinstance(change, Remove):
        return f"{change.collection}[{change.id}] removed"
    if isinstance(change, SetField):
        keys = f".{'/'.join(change.keys)}" if change.keys else ""
        return f"{change.key}{keys} changed" + (f" ~{change.contains!r}" if change.contains else "")
    if isinstance(change, NewScenario):
        return "a new scenario"
    return str(change)


def _step(step: Step) -> str:
    ref = f" {step.ref!r}" if step.ref else ""
    text = f"{step.op} {step.target}{ref}"
    if step.op == "clarify":
        text += f" (asked to {step.asked}; offers {len(step.ids)} candidates)"
    if step.changes:
        text += ": " + "; ".join(_change(c) for c in step.changes)
    return text


def describe(case: Case) -> str:
    """The case's expectation in one line."""
    tail = "; nothing else changed" if case.changes else "; no change"
    return " | ".join(_step(s) for s in case.steps) + tail


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _row(results: Sequence[CaseResult]) -> dict[str, Any]:
    seconds = [r.seconds for r in results]
    ttfts = [r.ttft for r in results if r.ttft is not None]
    count = len(results)
    return {
        "cases": count,
        "accuracy": sum(r.correct for r in results) / count if count else None,
        "valid_output": sum(r.valid for r in results) / count if count else None,
        "turn_p50_s": _percentile(seconds, 0.5),
        "turn_p95_s": _percentile(seconds, 0.95),
        "ttft_p50_s": _percentile(ttfts, 0.5),
        "ttft_p95_s": _percentile(ttfts, 0.95),
    }


def summary(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Per-operation rows, the starter suggestions' row and the overall line."""
    rows = {group: _row([r for r in results if r.group == group]) for group in ROWS}
    rows = {group: row for group, row in rows.items() if row["cases"]}
    rows["starters"] = _row([r for r in results if r.starter])
    rows["all"] = _row(results)
    return rows


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render(header: dict[str, Any], results: Sequence[CaseResult]) -> str:
    """The report as Markdown: the table, then the failures case by case."""
    rows = summary(results)
    lines = [
        f"Agent evaluation - {header['label']}: model {header['model']}, "
        f"profile {header['profile']}; {header['date']}, {header['machine']['cpus']} cores "
        f"({header['machine']['cpu']}), Python {header['machine']['python']}, load average "
        f"{header['load'][0]} at the start and {header['load'][1]} at the end",
        "",
        "| operation | cases | accuracy | valid output | turn p50 | turn p95 "
        "| first token p50 | first token p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, row in rows.items():
        name = f"**{group}**" if group == "all" else group
        lines.append(
            f"| {name} | {row['cases']} | {_pct(row['accuracy'])} | {_pct(row['valid_output'])} "
            f"| {_secs(row['turn_p50_s'])} | {_secs(row['turn_p95_s'])} "
            f"| {_secs(row['ttft_p50_s'])} | {_secs(row['ttft_p95_s'])} |"
        )
    failures = [r for r in results if not r.correct]
    lines += ["", f"Failures: {len(failures)} of {len(results)}"]
    for result in failures:
        lines += [
            f"- {result.id} [{result.group}] {result.message!r}",
            f"    expected: {result.expected}",
            f"    happened: {result.happened}",
            f"    why: {'; '.join(result.problems)}",
        ]
    return "\n".join(lines)


def write_json(path: Path, header: dict[str, Any], results: Sequence[CaseResult]) -> None:
    """Write the run (header, table rows, every case) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**header, "summary": summary(results), "cases": [asdict(r) for r in results]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def now() -> str:
    """The run's date, UTC, to the minute."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
