"""Benchmark tooling: load generators, the processes of a run, and their reports.

The service's targets (targets.md) are ratios against a direct upstream measured in the
same run; that upstream is the test suite's scripted one (``testing.upstream``), so the
benchmarks and the tests provoke and measure the same behaviour.
"""
