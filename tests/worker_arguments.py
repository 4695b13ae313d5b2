"""A spawned "hypercorn worker" for tests/test_internals.py, in a module that imports little.

A spawn child imports the module of its target: this one costs the child ``internals``
alone, not pytest and the web stack.
"""

from __future__ import annotations

from typing import Any

from internals import hypercorn_worker_argument

MARKED_BIND = ["127.0.0.1:5699"]


def report_worker_arguments(**kwargs: Any) -> None:
    """Set the shutdown event found through ``internals`` when the config is the marked one."""
    event = hypercorn_worker_argument("shutdown_event")
    config = hypercorn_worker_argument("config")
    if getattr(config, "bind", None) == MARKED_BIND and event is not None:
        event.set()
