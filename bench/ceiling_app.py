"""The framework's ceiling for a relay: bare Quart + aiohttp, none of the service's work.

Served by ``bench.ceiling`` exactly as the service is (one hypercorn uvloop worker pinned to
core 1) to answer one question with a measurement: which targets of targets.md can a Quart
app under hypercorn reach on this machine at all, whatever it does per request? It forwards
the chat request to the upstream unread and unvalidated and relays the upstream's bytes as
they arrive: no auth, no limits, no pool, no parsing, no usage, no metrics, no logs.

``raw_app`` is the same relay as a plain ASGI callable, without Quart: hypercorn's own share.

Routes (the service's paths, so the same load generator drives both):
``GET /api/proxy/llm/v1/status`` and ``POST .../chat/completions`` (+ ``/frontend/...``).
The upstream is the first provider's ``base_url`` in the TOML named by STORYWRITER_CONFIG.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from quart import Quart
from quart import Response
from quart import request

__all__ = ["app", "raw_app"]

_API = "/api/proxy/llm/v1"
_JSON = [(b"content-type", b"application/json")]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

app = Quart(__name__, static_folder=None)
app.config["RESPONSE_TIMEOUT"] = None
_state: dict[str, object] = {}


def _upstream_url() -> str:
    config = tomllib.loads(Path(os.environ["STORYWRITER_CONFIG"]).read_text())
    return str(config["providers"][0]["base_url"]).rstrip("/") + "/chat/completions"


@app.before_serving
async def _open() -> None:
    connector = aiohttp.TCPConnector(limit=4096, keepalive_timeout=30)
    _state["session"] = aiohttp.ClientSession(connector=connector)
    _state["url"] = _upstream_url()


@app.after_serving
async def _close() -> None:
    session = _state["session"]
    assert isinstance(session, aiohttp.ClientSession)
    await session.close()


@app.get(_API + "/status")
async def status() -> dict[str, bool]:
    """Always idle: there is no pool."""
    return {"busy": False}


@app.post(_API + "/chat/completions")
@app.post(_API + "/frontend/chat/completions")
async def chat() -> Response:
    """Forward the body as it came; relay the answer's bytes as they arrive."""
    session = _state["session"]
    assert isinstance(session, aiohttp.ClientSession)
    body = await request.get_data()
    upstream = await session.post(
        str(_state["url"]), data=body, headers={"Content-Type": "application/json"}
    )
    content_type = upstream.headers.get("Content-Type", "application/json")
    if not content_type.startswith("text/event-stream"):
        data = await upstream.read()
        upstream.release()
        return Response(data, status=upstream.status, content_type=content_type)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for data in upstream.content.iter_any():
                yield data
        finally:
            upstream.release()

    response = Response(relay(), status=upstream.status, content_type=content_type)
    response.timeout = None
    return response


async def raw_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The same relay as a plain ASGI callable: hypercorn and aiohttp, no framework at all."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": b'{"busy":false}'})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    session = _state["session"]
    assert isinstance(session, aiohttp.ClientSession)
    upstream = await session.post(
        str(_state["url"]), data=b"".join(chunks), headers={"Content-Type": "application/json"}
    )
    content_type = upstream.headers.get("Content-Type", "application/json").encode()
    headers = [(b"content-type", content_type)]
    try:
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        async for data in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        upstream.release()
