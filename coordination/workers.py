"""Whether this process is one of several hypercorn workers (to warn about per-worker state).

A worker cannot ask hypercorn how many siblings it has, but hypercorn starts each worker as
a ``multiprocessing`` *spawn* child whose target receives the server ``Config`` as a keyword
argument, and the child's ``Process`` object keeps it (``internals.hypercorn_worker_argument``).
That is the signal used here; a spawn child whose config cannot be read is reported as
"unknown", and the caller warns then too, because silence would be the worse mistake.
"""

from __future__ import annotations

import multiprocessing

from internals import hypercorn_worker_argument

__all__ = ["worker_count"]


def worker_count() -> int | None:
    """How many workers hypercorn runs: 1 outside a worker, None when it cannot be known."""
    if multiprocessing.parent_process() is None:
        return 1  # `hypercorn --workers 0`, `quart run`, the CLI, tests: a single process
    config = hypercorn_worker_argument("config")
    workers = getattr(config, "workers", None)
    return workers if isinstance(workers, int) and workers >= 1 else None
