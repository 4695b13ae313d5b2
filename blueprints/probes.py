"""``/livez``, ``/readyz`` and ``/metrics``: the probes and the scrape endpoint.

They report on the wiring (the services, the lifecycle, the metrics registry), which they
reach through ``quart_app.facade``; none needs a token, none is rate limited, and all still
answer while the worker drains. Put them behind the network boundary you trust: ``/metrics``
shows provider names and load, never users or keys.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint
from quart import Response

from quart_app.facade import APIError
from quart_app.facade import get_operations
from quart_app.facade import rate_exempt

__all__ = ["blueprint"]

log = logging.getLogger(__name__)
blueprint = Blueprint("probes", __name__)


@blueprint.get("/livez")
@rate_exempt
async def get_livez() -> dict[str, Any]:
    """200 while the process serves (draining included): restart only when this fails."""
    return {"status": "alive"}


@blueprint.get("/readyz")
@rate_exempt
async def get_readyz() -> tuple[dict[str, Any], int]:
    """200 when this worker can serve a completion; 503 (same body) while draining or not."""
    operations = get_operations()
    draining = operations.lifecycle.draining
    if operations.readiness is None:
        empty: dict[str, Any] = {"providers": {}, "database": None, "redis": None}
        return {"status": "draining" if draining else "not_ready", "checks": empty}, 503
    ready, body = await operations.readiness.report(draining)
    return body, 200 if ready else 503


@blueprint.get("/metrics")
@rate_exempt
async def get_metrics() -> Response:
    """Prometheus text format; pool slots and queues are read now, from the pool."""
    operations = get_operations()
    if operations.metrics is None:
        raise APIError(404, "NOT_FOUND", "metrics are disabled ([server] metrics_enabled)")
    status: dict[str, Any] | None = None
    services = operations.services
    if services is not None:
        try:
            status = await services.pool.status()
        except Exception as error:  # Redis down: the rest of the scrape is still useful
            log.warning("pool status unavailable for metrics: %s", type(error).__name__)
    return Response(operations.metrics.render(status), content_type=operations.metrics.content_type)
