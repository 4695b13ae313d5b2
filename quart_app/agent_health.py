"""The scenario agent's health, as the frontend's chat panel asks for it.

The frontend enables its chat panel only when ``GET .../stream/health`` says ``status:
"healthy"``, so the answer must be true: whether the agent's model can be reached *now*.
It reuses the readiness probes and their cache (``quart_app.readiness``: at most one
``GET /models`` per provider every ``[server] readiness_cache_s``), never probing per call.

- ``state``: ``healthy`` (every provider of the agent's model up), ``degraded`` (some down:
  turns still work, on the others), ``unhealthy`` (none up, or no provider serves it).
- ``status``: what the panel reads - ``healthy`` whenever turns can run (healthy or
  degraded), ``unhealthy`` otherwise, with HTTP 503. A degraded pool must not disable a
  chat panel whose turns would succeed.
- ``providers``: each provider of the agent's model with ``state``, ``detail`` and
  ``age_s`` (the reason it is down, as in ``/readyz``).
"""

from __future__ import annotations

import time
from typing import Any

from providers.errors import ProviderError
from quart_app.readiness import Readiness
from quart_app.services import Services

__all__ = ["agent_health"]


async def agent_health(
    services: Services, readiness: Readiness | None
) -> tuple[dict[str, Any], int]:
    """``(body, status)`` of the agent's health endpoint."""
    config = services.settings.agent
    pool = services.pool
    names = [member.upstream.name for member in pool.members]
    model = config.model
    try:
        model = model or await pool.default_model()
        names = [member.upstream.name for member in await pool.candidates(model)]
    except ProviderError:
        pass  # no model can be routed now: judge every provider (all down means unhealthy)
    checks = await readiness.providers(names) if readiness is not None else {}
    now = time.monotonic()
    up = [name for name, check in checks.items() if check.state == "up"]
    if not names or not up:
        state = "unhealthy"
    elif len(up) < len(checks):
        state = "degraded"
    else:
        state = "healthy"
    body = {
        "status": "unhealthy" if state == "unhealthy" else "healthy",
        "state": state,
        "agent": "scenario",
        "model": model,
        "providers": {name: check.as_dict(now) for name, check in checks.items()},
    }
    return body, 503 if state == "unhealthy" else 200
