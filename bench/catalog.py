"""The scripted models the benchmarks and the soak ask for, all served by one upstream process.

Why by model name: the runner measures every scenario against the same upstream process the
service is configured with. Restarting the upstream per scenario would leave the service's
pooled connections pointing at a dead socket, and a request's model is the one field the
service forwards untouched, so the model name picks the :class:`~testing.upstream.Script`.

The agent scenario (G) needs two more things from the upstream: structured-output calls
(``response_format`` json_schema, or the schema title in the prompt) answered with JSON the
agent accepts, and streamed prose whose first token carries the moment it was written. That
moment is ``time.monotonic_ns()`` (CLOCK_MONOTONIC, the same clock in every process on the
machine) taken when the responder runs, which is in the same event-loop callback that writes
the first frame, so the load generator can subtract it from the moment it read that token.

Run it as ``python -m bench.catalog --port 9100 --uvloop``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any
from typing import Final

from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream

__all__ = [
    "AGENT",
    "FAIL",
    "FAST",
    "MODELS",
    "PACED",
    "RESET",
    "SLOW",
    "STAMP",
    "main",
    "respond",
]

FAST: Final = "bench-64"
"""64 tokens, no delay: the frames of an answer go out together (scenarios A, B, C)."""
PACED: Final = "bench-200x20ms"
"""200 tokens at 20 ms per token, each its own write (D, E): ideal stream time 3.98 s."""
SLOW: Final = "bench-32x10ms"
"""32 tokens at 10 ms per token: long enough for the soak to disconnect mid-stream."""
FAIL: Final = "bench-http-500"
"""An HTTP 500 before the first byte (the soak's upstream errors)."""
RESET: Final = "bench-reset"
"""The connection reset after 8 of 64 chunks (the soak's mid-stream failures)."""
AGENT: Final = "bench-agent"
"""The agent's model: JSON for structured calls, stamped prose otherwise (G)."""
MODELS: Final = (FAST, PACED, SLOW, FAIL, RESET, AGENT)

STAMP: Final = re.compile(r"\[t=(\d+)\]")
"""Where a stamped first token carries its ``time.monotonic_ns()``."""

_SCRIPTS: Final[dict[str, Script]] = {
    FAST: Script(tokens=64),
    PACED: Script(tokens=200, delay_s=0.020),
    SLOW: Script(tokens=32, delay_s=0.010),
    FAIL: Script(fault=Fault("http_status", status=500, message="scripted failure")),
    RESET: Script(tokens=64, fault=Fault("reset_mid_stream", after_chunks=8)),
}
_PROSE: Final = tuple(f" w{i}" for i in range(1, 32))
_STRUCTURED: Final[dict[str, dict[str, Any]]] = {
    "classification": {
        "operations": [{"action": "general_conversation", "target": "general", "prompt": "chat"}]
    },
    "follow_ups": {"questions": ["Add a villain", "Describe the harbour", "Give Aria a secret"]},
}
_TITLES: Final = {"Classification": "classification", "FollowUps": "follow_ups"}


def _structured_name(body: dict[str, Any]) -> str | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        schema = fmt.get("json_schema")
        if isinstance(schema, dict) and isinstance(schema.get("name"), str):
            return str(schema["name"])
    text = json.dumps(body.get("messages", ""))
    for title, name in _TITLES.items():
        if f'"title": "{title}"' in text or f'\\"title\\": \\"{title}\\"' in text:
            return name
    return None


def respond(body: dict[str, Any]) -> Script | None:
    """Pick the script for one chat request by its model (None: the default script)."""
    model = body.get("model")
    script = _SCRIPTS.get(model) if isinstance(model, str) else None
    if script is not None or model != AGENT:
        return script
    name = _structured_name(body)
    if name is not None:
        answer = _STRUCTURED.get(name, {})
        return Script(pieces=[json.dumps(answer)])
    return Script(pieces=[f" [t={time.monotonic_ns()}]", *_PROSE], delay_s=0.002)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.catalog",
        description="Serve the benchmark models on a scripted upstream until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    upstream = ScriptedUpstream(
        models=list(MODELS),
        script=_SCRIPTS[FAST],
        responder=respond,
        host=args.host,
        port=args.port,
        record_requests=False,
    )
    async with upstream:
        # As the load generator: no 100+ ms cyclic-GC pauses with 1,000 streams open.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        print(f"benchmark upstream listening on {upstream.base_url}", flush=True)
        await stop.wait()
    print(
        f"benchmark upstream stopped: {upstream.request_count} requests, "
        f"{upstream.completed_streams} streams completed, "
        f"{upstream.client_disconnects} client disconnects",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark upstream from the command line."""
    args = _parse_args(argv)
    if args.uvloop:
        import uvloop

        uvloop.run(_serve(args))
    else:
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
