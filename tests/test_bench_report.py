"""The benchmark's verdicts between configurations are computed from the right rows.

``bench.run.comparisons`` turns the rows of one run into issue 15's targets (shipped
against lean, against the framework's relays, and lean against an older checkout); a wrong
row or ratio there would publish a wrong pass. The table keeps one column per configuration.
"""

from __future__ import annotations

from bench.report import Row
from bench.report import ScenarioResult
from bench.report import table_lines
from bench.run import comparisons


def _row(scenario: str, metric: str, config: str, **values: float) -> Row:
    return Row(scenario, metric, "", "", f"{config}", "", True, dict(values), config)


def _results() -> list[ScenarioResult]:
    a = ScenarioResult("A", "a")
    a.rows += [
        _row("A", "added latency p50", "shipped", added_ms=1.20),
        _row("A", "added latency p50", "lean", added_ms=1.00),
        _row("A", "added latency p50", "before", added_ms=1.10),
    ]
    b = ScenarioResult("B", "b")
    b.rows += [
        _row("B", "requests/s", "shipped", service=800.0),
        _row("B", "requests/s", "lean", service=1000.0),
    ]
    c = ScenarioResult("C", "c")
    c.rows += [
        _row("C", "relayed tokens/s", "shipped", service=64_000.0, streams_per_s=1000.0),
        _row("C", "relayed tokens/s", "lean", service=70_000.0, streams_per_s=1094.0),
        _row("C", "relayed tokens/s", "quart-relay", service=96_000.0, streams_per_s=1500.0),
    ]
    d = ScenarioResult("D", "d")
    d.rows += [_row("D", "TTFT p99 added", "shipped", added_ms=12.0)]
    e = ScenarioResult("E", "e")
    e.rows += [
        _row("E", "stream time p99 / ideal 3.98 s", "shipped", service_s=4.10),
        _row("E", "stream time p99 / ideal 3.98 s", "asgi-relay", service_s=4.00),
    ]
    return [a, b, c, d, e]


def test_comparisons_judge_shipped_against_lean_and_the_relays() -> None:
    rows = {row.metric: row for row in comparisons(_results(), "shipped")}
    assert rows["added p50, shipped - lean"].service == "+0.200 ms"
    assert rows["added p50, shipped - lean"].passed is True
    assert rows["requests/s, shipped / lean"].service == "0.800x"
    assert rows["requests/s, shipped / lean"].passed is False
    assert rows["tokens/s, shipped / lean"].service == "0.914x"
    assert rows["tokens/s, shipped / lean"].passed is True
    assert rows["TTFT p99 added, shipped"].passed is False
    assert rows["streams/s, shipped / bare Quart relay"].service == "0.667x"
    assert rows["streams/s, shipped / bare Quart relay"].passed is True
    assert rows["stream p99, shipped / plain ASGI relay"].service == "1.025x"
    assert rows["stream p99, shipped / plain ASGI relay"].passed is True
    # lean against an older checkout is reported, never judged.
    before = rows["added p50, lean after - before"]
    assert (before.service, before.passed) == ("-0.100 ms", None)


def test_a_configuration_not_measured_gives_no_verdict() -> None:
    results = _results()
    results[1].rows = [row for row in results[1].rows if row.config != "lean"]
    metrics = {row.metric for row in comparisons(results, "shipped")}
    assert "requests/s, shipped / lean" not in metrics
    assert "tokens/s, shipped / lean" in metrics


def test_the_table_has_a_column_per_configuration_and_judges_the_first() -> None:
    results = _results()
    results[1].rows[0].passed = False
    lines = table_lines(results[1:2], {"shipped": "Shipped", "lean": "Lean"})
    assert lines[0] == "| | Metric | Target | Direct upstream | Shipped | Lean | Pass |"
    assert lines[2].startswith("| B | requests/s |")
    assert "shipped **FAIL** | lean | **FAIL** |" in lines[2]
