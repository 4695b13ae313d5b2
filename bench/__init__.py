"""Benchmark tooling: load generators and the scripted upstream they measure against.

The service's targets (targets.md) are ratios against a direct upstream measured in the
same run, so the upstream and the load generators live here, next to the scripts that use
them, and the test suite reuses the same scripted upstream to provoke upstream faults.
"""
