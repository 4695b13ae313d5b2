"""What metrics and the access log cost per request, measured in-process.

Why in-process: the cost is a few microseconds, far below the noise of a loopback HTTP
benchmark, so requests are driven straight through the app's ASGI callable (no server, no
sockets) and the per-request time of each variant is compared in the same run, batches interleaved
(after the cost of each piece alone, in a request context, which is far less noisy):

- ``bare``: the operations hooks and the gateway observer removed (the code before them);
- ``hooks``: hooks installed, metrics and access log off;
- ``metrics``: Prometheus metrics on, access log off;
- ``metrics+log``: both on (the default), log lines written to /dev/null as JSON.

Two requests: ``GET /status`` (the cheapest route) and a streamed completion of 64 tokens
from the scripted upstream (same loop). Prints the fastest batch's mean per-request time
(the least disturbed on a shared machine). Usage: ``taskset -c 1 python -m bench.ops_overhead``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import orjson

from quart_app import create_app
from quart_app import operations as operations_module
from quart_app.auth import mint_token
from quart_app.config import Settings
from testing.upstream import Script
from testing.upstream import ScriptedUpstream

SECRET = "bench-secret-that-is-long-enough-for-hs256"
MODEL = "scripted-model"


def _settings(upstream: ScriptedUpstream, metrics: bool, log: bool) -> Settings:
    return Settings.model_validate(
        {
            "server": {"metrics_enabled": metrics, "access_log": log, "log_level": "INFO"},
            "auth": {"jwt_secret": SECRET},
            "embedded": {"enabled": False},
            "credits": {"enabled": False},
            "limits": {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0},
            "providers": [
                {
                    "name": "scripted",
                    "base_url": upstream.base_url,
                    "models": [MODEL],
                    "max_concurrency": 64,
                }
            ],
        }
    )


async def _call(app: Any, method: str, path: str, headers: list[Any], body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5600),
    }
    await app(scope, receive, send)
    return status


_VARIANTS = {
    "bare": (False, False),
    "hooks": (False, False),
    "metrics": (True, False),
    "metrics+log": (True, True),
}
_REQUESTS = (
    ("status", "GET", "/api/proxy/llm/v1/status", b""),
    (
        "stream64",
        "POST",
        "/api/proxy/llm/v1/frontend/chat/completions",
        orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
    ),
)


def _app(variant: str, upstream: ScriptedUpstream) -> Any:
    metrics, log = _VARIANTS[variant]
    restore: Callable[..., Any] = getattr(operations_module, "install_access_hooks")  # noqa: B009
    if variant == "bare":
        setattr(operations_module, "install_access_hooks", lambda *a, **k: None)  # noqa: B010
    try:
        return create_app(_settings(upstream, metrics, log))
    finally:
        setattr(operations_module, "install_access_hooks", restore)  # noqa: B010


def _strip(app: Any) -> None:
    """The calls as before the observer seam: no observer, no metrics among the listeners."""
    from providers.observer import NoObserver

    services = app.extensions["storywriter.services"]
    services.calls.observer = NoObserver()
    services.settlements.listeners = ()


async def _batch(app: Any, request: tuple[str, str, str, bytes], count: int) -> float:
    _, method, path, body = request
    token = mint_token(SECRET.encode(), "bench")
    auth = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    start = time.perf_counter()
    for _ in range(count):
        assert await _call(app, method, path, auth, body) == 200
    return (time.perf_counter() - start) / count * 1e6


async def _main(args: argparse.Namespace) -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - once, before any request
    samples: dict[tuple[str, str], list[float]] = {}
    async with (
        ScriptedUpstream(models=[MODEL], script=Script(tokens=64), record_requests=False) as up,
        AsyncExitStack() as stack,
    ):
        apps = {variant: _app(variant, up) for variant in _VARIANTS}
        for handler in logging.getLogger().handlers:  # log lines to /dev/null, formatted
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        for app in apps.values():
            await stack.enter_async_context(app.test_app())
        _strip(apps["bare"])
        for app in apps.values():  # warm up
            for request in _REQUESTS:
                await _batch(app, request, 20)
        # Interleaved, so that drift (caches, memory, CPU frequency) hits every variant alike.
        for _ in range(args.repeats):
            for variant, app in apps.items():
                for request in _REQUESTS:
                    count = args.requests if request[0] == "status" else args.requests // 10
                    result = await _batch(app, request, max(1, count))
                    samples.setdefault((variant, request[0]), []).append(result)
    # The fastest batch: the one least disturbed by other work on a shared machine.
    table = {key: min(values) for key, values in samples.items()}
    print(
        f"{'variant':<12} {'status us/req':>14} {'delta':>8} {'stream64 us/req':>16} {'delta':>8}"
    )
    for variant in _VARIANTS:
        status, streamed = table[(variant, "status")], table[(variant, "stream64")]
        print(
            f"{variant:<12} {status:>14.1f} {status - table[('bare', 'status')]:>+8.1f}"
            f" {streamed:>16.1f} {streamed - table[('bare', 'stream64')]:>+8.1f}"
        )


async def _components(upstream: ScriptedUpstream, devnull: Any, repeats: int) -> None:
    """Each piece on its own, inside a request context: min over repetitions, in us."""
    from quart import Response

    from credits.models import CallUsage
    from credits.models import UsageRecord
    from credits.models import UsageStatus

    rows: list[tuple[str, float]] = []
    for variant in ("hooks", "metrics", "metrics+log"):
        app = _app(variant, upstream)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        begin = next(f for f in app.before_request_funcs[None] if f.__name__ == "_begin")
        observe = next(f for f in app.after_request_funcs[None] if f.__name__ == "_observe")
        async with app.test_app(), app.test_request_context("/api/proxy/llm/v1/status"):
            from quart import g

            g.request_id = "0123456789abcdef"
            n = 5000
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(n):
                    await begin()
                    await observe(Response(b"{}", content_type="application/json"))
                best = min(best, (time.perf_counter() - start) / n * 1e6)
            rows.append((f"request hooks ({variant})", best))
            services = app.extensions["storywriter.services"]
            settlement = UsageRecord.of_calls(
                request_id="r",
                user_id="u",
                calls=[CallUsage("scripted", MODEL, 10, 64, 1.0)],
                duration_ms=5,
                status=UsageStatus.COMPLETED,
                byok=False,
            )
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(n):
                    services.calls.observer.first_byte("scripted", MODEL, 0.01, 0.009, "stream")
                    services.settlements.settle(settlement)
                best = min(best, (time.perf_counter() - start) / n * 1e6)
            rows.append((f"per completion ({variant})", best))
    for name, cost in rows:
        print(f"{name:<36} {cost:>8.2f} us")


def main() -> None:
    """Run the comparison and print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--components-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - once, before any request
    async with ScriptedUpstream(models=[MODEL], record_requests=False) as upstream:
        await _components(upstream, devnull, args.repeats)
    if not args.components_only:
        await _main(args)


if __name__ == "__main__":
    main()
