"""internals.one_task_http_connection: the handler runs in our task; disconnects cancel it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypercorn.typing import ASGIReceiveEvent
from hypercorn.typing import ASGISendEvent
from hypercorn.typing import ConnectionState
from hypercorn.typing import HTTPScope
from quart import Quart
from quart import Response
from quart import request

from internals import one_task_http_connection
from tests.conftest import until

SCOPE: HTTPScope = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/x",
    "raw_path": b"/x",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 2),
    "state": ConnectionState({}),
    "extensions": {},
}


def _app(seen: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    app.asgi_http_class = one_task_http_connection()

    @app.post("/x")
    async def handler() -> Response:
        seen["task"] = asyncio.current_task()
        seen["body"] = await request.get_data()
        try:
            await asyncio.sleep(seen.get("hold_s", 0))
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return Response(b"{}", content_type="application/json")

    return app


class AsgiClient:
    """An ASGI server's side of one request: its message queue and what the app sent."""

    def __init__(self, body: bytes = b"{}") -> None:
        self.messages: asyncio.Queue[ASGIReceiveEvent] = asyncio.Queue()
        self.messages.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> ASGIReceiveEvent:
        return await self.messages.get()

    async def send(self, message: ASGISendEvent) -> None:
        self.sent.append(dict(message))


async def test_the_handler_runs_in_the_servers_task() -> None:
    seen: dict[str, Any] = {}
    app = _app(seen)
    client = AsgiClient()
    async with app.test_app():
        task = asyncio.create_task(app(SCOPE, client.receive, client.send))
        await task
    assert seen["task"] is task, "no extra handler task"
    assert seen["body"] == b"{}"
    assert client.sent[0]["status"] == 200
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


@asynccontextmanager
async def _held_request() -> AsyncIterator[tuple[asyncio.Task[None], AsgiClient, dict[str, Any]]]:
    """A request whose handler is waiting (30 s) when the block starts."""
    seen: dict[str, Any] = {"hold_s": 30}
    app = _app(seen)
    client = AsgiClient()
    async with app.test_app():
        task = asyncio.create_task(app(SCOPE, client.receive, client.send))
        await until(lambda: "body" in seen, "the handler read the body and waits")
        yield task, client, seen


async def test_a_disconnect_cancels_the_handler_and_the_app_returns() -> None:
    async with _held_request() as (task, client, seen):
        client.messages.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(task, 1.0)  # returns: no CancelledError for the server
    assert seen["cancelled"] is True
    assert not task.cancelled() and task.cancelling() == 0


async def test_a_cancellation_from_outside_propagates() -> None:
    async with _held_request() as (task, _, seen):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen["cancelled"] is True
    assert task.cancelled()
