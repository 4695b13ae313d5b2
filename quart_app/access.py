"""Per-request hooks: request id, refusal while draining, metrics and the access log.

The end of a request is the end of its response *body* - for a stream, its last frame - so
the hooks wrap a streamed body (as ``quart_app.limit_hooks`` does) and record in its
``__aexit__``: one call per request whatever the number of chunks, and it runs on a client
disconnect too (``aborted``). A body already in memory is recorded at once.

The access line has method, path (never the query string, which may carry a WebSocket
token), status, duration, request id, user and client address; never headers, keys or
bodies. Health and metrics probes are logged at DEBUG.
"""

from __future__ import annotations

import logging
import time
import uuid

from quart import Quart
from quart import Response
from quart import g
from quart import request
from quart import websocket
from quart.wrappers.response import DataBody

from quart_app.errors import APIError
from quart_app.lifecycle import Lifecycle
from quart_app.logs import REQUEST_ID
from quart_app.metrics import Metrics
from quart_app.response_end import on_body_sent

__all__ = ["PROBE_PATHS", "install_access_hooks"]

PROBE_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
"""Answered while draining, and logged at DEBUG only."""
_SSE = "text/event-stream"
access_log = logging.getLogger("storywriter.access")


class _Exchange:
    """What the access line and the request metrics need, captured at ``after_request``."""

    __slots__ = (
        "client",
        "limited",
        "log",
        "method",
        "metrics",
        "path",
        "request_id",
        "route",
        "started",
        "status",
        "streamed",
        "user",
    )

    def __init__(self, response: Response, metrics: Metrics | None, log: bool) -> None:
        # Each use of the ``request``/``g`` proxies is a context lookup: resolve them once.
        req = request._get_current_object()  # type: ignore[attr-defined]
        context = g._get_current_object()
        rule = req.url_rule
        self.route = rule.rule if rule is not None else "unmatched"
        self.method = req.method
        self.path = req.path
        # A refusal sent inside a 200 stream (quart_app.errors.refusals_in_band) is logged and
        # counted with its real status.
        self.status = context.get("outcome_status") or response.status_code
        self.started: float = context.get("ops_started") or time.perf_counter()
        self.request_id: str | None = context.get("request_id")
        self.user: str | None = getattr(context.get("caller"), "user_id", None)
        self.client = req.remote_addr
        self.streamed = (response.content_type or "").startswith(_SSE)
        # Our own limiter adds RateLimit-Policy; an upstream's 429 does not.
        self.limited = self.status == 429 and "RateLimit-Policy" in response.headers
        self.metrics = metrics
        self.log = log
        if metrics is not None and self.streamed:
            metrics.open_streams.inc()

    def done(self, aborted: bool) -> None:
        seconds = time.perf_counter() - self.started
        metrics = self.metrics
        if metrics is not None:
            metrics.observe_request(self.route, self.method, self.status, seconds)
            if self.streamed:
                metrics.open_streams.dec()
            if self.limited:
                metrics.child(metrics.rate_limited, self.route).inc()
        level = logging.DEBUG if self.path in PROBE_PATHS else logging.INFO
        if self.log and access_log.isEnabledFor(level):
            access_log.log(
                level,
                "%s %s %d",
                self.method,
                self.path,
                self.status,
                extra={
                    "event": "access",
                    "method": self.method,
                    "path": self.path,
                    "status": self.status,
                    "duration_ms": round(seconds * 1000, 3),
                    "request_id": self.request_id,
                    "user": self.user,
                    "client": self.client,
                    "streamed": self.streamed,
                    "aborted": aborted,
                },
            )


def install_access_hooks(
    app: Quart, lifecycle: Lifecycle, metrics: Metrics | None, *, log_requests: bool
) -> None:
    """Register the hooks; call after the request-id hook and before the rate limiter's."""

    @app.before_request
    async def _begin() -> None:
        context = g._get_current_object()
        context.ops_started = time.perf_counter()
        REQUEST_ID.set(context.get("request_id"))
        if lifecycle.draining and request.path not in PROBE_PATHS:
            raise _draining()

    @app.after_request
    async def _observe(response: Response) -> Response:
        exchange = _Exchange(response, metrics, log_requests)
        if isinstance(response.response, DataBody):
            exchange.done(False)  # a small body in memory: sending it adds nothing to measure
        else:
            on_body_sent(response, exchange.done)
        return response

    @app.before_websocket
    async def _begin_websocket() -> None:
        g.ops_started = time.perf_counter()
        if not g.get("request_id"):
            g.request_id = uuid.uuid4().hex
        REQUEST_ID.set(g.request_id)
        if lifecycle.draining:
            raise _draining()
        if metrics is not None:
            metrics.websockets.inc()
            g.ops_websocket = True

    @app.teardown_websocket
    async def _end_websocket(error: BaseException | None) -> None:
        if metrics is not None and g.pop("ops_websocket", False):
            metrics.websockets.dec()
        started = g.get("ops_started")
        if started is None or not log_requests or not access_log.isEnabledFor(logging.INFO):
            return
        caller = g.get("caller")
        access_log.info(
            "WEBSOCKET %s closed",
            websocket.path,
            extra={
                "event": "websocket",
                "path": websocket.path,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "user": getattr(caller, "user_id", None),
                "client": websocket.remote_addr,
                "error": type(error).__name__ if error is not None else None,
            },
        )


def _draining() -> APIError:
    return APIError(
        503,
        "DRAINING",
        "the service is shutting down; retry shortly",
        headers={"Retry-After": "5", "Connection": "close"},
    )
