"""One WebSocket agent session: its history, its queue of messages and its running turn.

See ``blueprints/agent_ws.py`` for the protocol. The running turn is a task so that a
``cancel`` (or the client leaving) stops the graph and its upstream call at once; frames of
the turn are relayed exactly as the SSE endpoint sends them (one producer, two transports).
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from quart import websocket

from agent.events import ChatEvent
from agent.state import HistoryMessage
from blueprints.agent_turns import TurnRequest
from blueprints.agent_turns import start_turn
from providers.upstream import Upstream
from quart_app.auth import Caller
from quart_app.config import AgentSettings
from quart_app.facade import APIError
from quart_app.facade import check_message_limits
from quart_app.facade import error_parts
from quart_app.facade import get_services

__all__ = ["AgentSession", "SessionClosed"]

#: Bad frames tolerated before the session is closed as a policy violation.
_MAX_BAD_FRAMES = 5
#: History kept across turns (the agent itself trims what it shows the model).
_MAX_HISTORY = 40


class SessionClosed(Exception):
    """Close the WebSocket with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class _Pending:
    turn: TurnRequest


class AgentSession:
    """State of one connection."""

    def __init__(self, config: AgentSettings, *, session_id: str) -> None:
        self.config = config
        self.session_id = session_id
        self.history: list[HistoryMessage] = []
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._current: asyncio.Task[None] | None = None
        self._bad_frames = 0
        self._caller: Caller | None = None
        self.byok: Upstream | None = None
        """The caller's own upstream, from ``X-BYOK-*`` handshake headers (non-browser clients)."""

    async def authenticate(self, token: str | None, address: str) -> Caller:
        """From ``?token=``, else from a first ``auth`` message; 401 ``APIError`` on failure."""
        verifier = get_services().verifier
        if token:
            return Caller(verifier.user_for_token(token), authenticated=True)
        if verifier.development:
            return Caller(f"anon:{address}", authenticated=False)
        try:
            async with asyncio.timeout(self.config.ws_auth_timeout_s):
                raw = await websocket.receive()
        except TimeoutError:
            raise SessionClosed(1008, "authentication required") from None
        message = self._parse(raw)
        if message is None or message.get("type") != "auth" or not message.get("token"):
            raise SessionClosed(1008, 'the first message must be {"type":"auth","token":...}')
        return Caller(verifier.user_for_token(str(message["token"])), authenticated=True)

    async def serve(self, caller: Caller) -> None:
        """Receive until the client leaves; turns run one at a time in order."""
        self._caller = caller
        await self._send(
            {
                "type": "session",
                "status": "ready",
                "session_id": self.session_id,
                "user": caller.user_id,
            }
        )
        worker = asyncio.create_task(self._run_turns())
        pinger = asyncio.create_task(self._ping())
        try:
            while True:
                await self._receive(await websocket.receive())
        finally:
            for task in (worker, pinger):
                task.cancel()
            await asyncio.gather(worker, pinger, return_exceptions=True)

    async def _receive(self, raw: str | bytes | None) -> None:
        if raw is None:  # Quart hands an empty binary frame over as None
            await self._bad_frame("messages must be JSON objects")
            return
        if len(raw) > self.config.ws_max_message_bytes:
            raise SessionClosed(1009, "message too big")
        message = self._parse(raw)
        if message is None:
            await self._bad_frame("messages must be JSON objects")
            return
        kind = message.get("type")
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "cancel":
            await self._cancel()
        elif kind == "reset":
            self.history.clear()
            await self._send({"type": "session", "status": "reset", "session_id": self.session_id})
        elif kind == "message":
            await self._enqueue(message)
        else:
            await self._bad_frame(f"unknown message type {str(kind)[:40]!r}")

    async def _enqueue(self, message: dict[str, Any]) -> None:
        assert self._caller is not None
        try:
            turn = TurnRequest.model_validate(message)
            grant = await check_message_limits(self._caller)
            grant.finish()
        except (ValidationError, APIError) as error:
            await self._error(error)
            return
        busy = self._current is not None and not self._current.done()
        if busy and self._queue.qsize() >= self.config.ws_max_queued:
            await self._send(
                {
                    "type": "error",
                    "code": "QUEUE_FULL",
                    "error": "too many messages are waiting; wait or cancel",
                }
            )
            return
        self._queue.put_nowait(_Pending(turn))

    async def _cancel(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        current = self._current
        if current is not None and not current.done():
            current.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await current
            await self._send(
                {"type": "status", "content": "cancelled", "metadata": {"status": "cancelled"}}
            )

    async def _run_turns(self) -> None:
        while True:
            pending = await self._queue.get()
            current = self._current = asyncio.create_task(self._turn(pending.turn))
            try:
                await asyncio.wait([current])
            except asyncio.CancelledError:  # the session ends: stop the turn, then leave
                current.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await current
                raise

    async def _turn(self, turn: TurnRequest) -> None:
        assert self._caller is not None
        try:
            events = await start_turn(
                self._caller.user_id, turn, history=list(self.history), byok=self.byok
            )
        except Exception as error:
            await self._error(error)
            return
        answer = ""
        async with aclosing(events) as frames:
            async for event in frames:
                if isinstance(event, ChatEvent) and event.content:
                    answer = answer + event.content if event.streaming else event.content
                await websocket.send(event.to_json())
        self.history.extend(
            [
                HistoryMessage(role="user", content=turn.message),
                HistoryMessage(role="assistant", content=answer),
            ]
        )
        del self.history[:-_MAX_HISTORY]

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.config.ws_ping_interval_s)
            await self._send({"type": "ping"})

    async def _bad_frame(self, reason: str) -> None:
        self._bad_frames += 1
        if self._bad_frames > _MAX_BAD_FRAMES:
            raise SessionClosed(1008, "too many invalid messages")
        await self._send({"type": "error", "code": "BAD_FRAME", "error": reason})

    async def _error(self, error: Exception) -> None:
        parts = error_parts(error)
        frame: dict[str, Any] = {
            "type": "error",
            "code": parts.code,
            "error": parts.message,
            "status": parts.status,
        }
        if parts.detail is not None:
            frame["detail"] = parts.detail
        await self._send(frame)

    @staticmethod
    def _parse(raw: str | bytes) -> dict[str, Any] | None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @staticmethod
    async def _send(frame: dict[str, Any]) -> None:
        await websocket.send(orjson.dumps(frame).decode())
