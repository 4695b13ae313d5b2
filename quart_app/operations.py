"""Wiring of everything an operator uses: logs, metrics, health, docs and graceful shutdown.

``install_operations`` runs in ``create_app`` (logging, metrics, hooks; no loop needed; the
services are later built with its metrics); ``operating`` runs inside the lifespan once the
services exist: it builds the readiness checks, samples the metrics for the console's
window (only when the console has admins) and watches for shutdown. It is entered on
the services' exit stack, so at shutdown it stops streams before billing drains and the
ledger closes (the stack unwinds last-in, first-out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from quart import Quart
from quart import current_app

from quart_app.access import install_access_hooks
from quart_app.config import Settings
from quart_app.lifecycle import Lifecycle
from quart_app.logs import configure_logging
from quart_app.metrics import Metrics
from quart_app.metrics_window import MetricsWindow
from quart_app.metrics_window import read_counts
from quart_app.readiness import Readiness
from quart_app.services import Services

__all__ = ["Operations", "get_operations", "install_operations", "operating"]

OPERATIONS_KEY = "storywriter.operations"


@dataclass(eq=False)
class Operations:
    """The operational state of one worker."""

    settings: Settings
    lifecycle: Lifecycle
    metrics: Metrics | None
    readiness: Readiness | None = None
    services: Services | None = None
    metrics_window: MetricsWindow | None = None
    """TTFT and error rates over the last minutes, for the console (None: no admins)."""


def get_operations() -> Operations:
    """The running app's operations."""
    operations: Operations = current_app.extensions[OPERATIONS_KEY]
    return operations


def install_operations(app: Quart, settings: Settings) -> Operations:
    """Configure logging, create the metrics and the lifecycle, and install the access hooks.

    Call after the request-id hook and before the rate limiter is installed, so a draining
    worker refuses before anything is counted against a user.
    """
    server = settings.server
    configure_logging(server.log_level, server.log_format)
    operations = Operations(
        settings=settings,
        lifecycle=Lifecycle(server.shutdown_grace_s),
        metrics=Metrics(server.metrics_multiprocess_dir) if server.metrics_enabled else None,
    )
    app.extensions[OPERATIONS_KEY] = operations
    install_access_hooks(
        app, operations.lifecycle, operations.metrics, log_requests=server.access_log
    )
    return operations


@asynccontextmanager
async def operating(app: Quart, services: Services) -> AsyncIterator[Operations]:
    """Attach metrics and health to ``services`` and watch for shutdown while serving."""
    operations: Operations = app.extensions[OPERATIONS_KEY]
    gateway = services.gateway
    turns = services.turns
    metrics = operations.metrics

    def open_streams() -> int:
        return gateway.open_streams + turns.count

    def stop_streams() -> int:
        # Ends every model call in flight (the proxy's streams, the agent's calls); a turn
        # between two calls fails at its next one, with the agent's error pair.
        return gateway.stop_streams()

    operations.lifecycle.attach(open_streams, stop_streams)
    billing = services.billing
    coordination = getattr(services.settings, "coordination", None)
    operations.readiness = Readiness(
        [member.upstream for member in services.pool.members],
        ledger_ping=billing.check if billing is not None else None,
        redis_url=getattr(coordination, "redis_url", None),
        ttl_s=services.settings.server.readiness_cache_s,
    )
    operations.services = services
    sampler: asyncio.Task[None] | None = None
    console = services.settings.console
    if metrics is not None and console.has_admins:
        window = MetricsWindow(
            lambda: read_counts(metrics.families()),
            window_s=console.window_s,
            sample_s=console.sample_interval_s,
        )
        operations.metrics_window = window
        sampler = asyncio.get_running_loop().create_task(window.run())
    try:
        async with operations.lifecycle.serving():
            yield operations
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        operations.metrics_window = None
        operations.services = None
        readiness, operations.readiness = operations.readiness, None
        await readiness.close()
        if metrics is not None:
            metrics.close()
