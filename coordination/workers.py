"""How many hypercorn workers count limits on their own, and this worker's share of a limit.

A worker cannot ask hypercorn how many siblings it has, but hypercorn starts each worker as
a ``multiprocessing`` *spawn* child whose target receives the server ``Config`` as a keyword
argument, and the child's ``Process`` object keeps it (``hypercorn/run.py``, ``_populate``).
That is the signal used here; a spawn child whose config cannot be read is reported as
"unknown", and the caller warns then too, because silence would be the worse mistake.

The count also sizes the Redis fallback (``on_redis_error = "local"``): while Redis is
down each worker admits only its share of every limit, so the instance as a whole stays
within the limit instead of admitting it once per worker.
"""

from __future__ import annotations

import math
import multiprocessing

__all__ = ["worker_count", "worker_share"]


def worker_count() -> int | None:
    """How many workers hypercorn runs: 1 outside a worker, None when it cannot be known."""
    if multiprocessing.parent_process() is None:
        return 1  # `hypercorn --workers 0`, `quart run`, the CLI, tests: a single process
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    config = kwargs.get("config") if isinstance(kwargs, dict) else None
    workers = getattr(config, "workers", None)
    return workers if isinstance(workers, int) and workers >= 1 else None


def worker_share(limit: int, workers: int) -> int:
    """One worker's part of ``limit`` shared by ``workers``: ceil(limit / workers), at least 1.

    0 (a limit that is off) stays 0.
    """
    if limit <= 0:
        return 0
    return max(1, math.ceil(limit / max(1, workers)))
