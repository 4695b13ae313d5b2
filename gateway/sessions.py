"""One two-way agent session: its history, its queue of messages and its running turn.

Transport-free: the WebSocket route (``blueprints.agent_ws``) authenticates the caller,
then hands this session a way to send a frame, a way to admit a message against the rate
limits and a way to describe a refusal, and feeds it every message it receives. The running
turn is a task so that a ``cancel`` (or the client leaving) stops the graph and its
upstream call at once; frames of the turn are relayed exactly as the SSE endpoint sends
them (one producer, two transports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from agent.events import ChatEvent
from agent.settings import AgentSettings
from agent.state import HistoryMessage
from gateway.turns import AgentTurns
from providers.upstream import Upstream

__all__ = ["AgentSession", "SessionClosed", "TurnMessage", "parse_object"]

log = logging.getLogger(__name__)

#: Bad frames tolerated before the session is closed as a policy violation.
_MAX_BAD_FRAMES = 5
#: History kept across turns (the agent itself trims what it shows the model).
_MAX_HISTORY = 40

Send = Callable[[str], Awaitable[None]]
"""Sends one text frame to the client."""
Refusal = Callable[[Exception], dict[str, Any]]
"""Describes a refused message as an error frame (the transport's error table)."""


class TurnMessage(BaseModel):
    """A turn's message: the SSE body (contract 8.1) or a WebSocket ``message``."""

    model_config = ConfigDict(extra="ignore")

    message: str = Field(min_length=1)
    """The writer's message."""
    scenario: dict[str, Any] | None = None
    """The current scenario; null or missing counts as empty."""


class SessionClosed(Exception):
    """Close the session with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class AgentSession:
    """State of one connection."""

    def __init__(
        self,
        turns: AgentTurns,
        config: AgentSettings,
        *,
        session_id: str,
        user_id: str,
        send: Send,
        admit: Callable[[], Awaitable[None]],
        refusal: Refusal,
        byok: Upstream | None = None,
    ) -> None:
        """Build the session of an authenticated caller.

        Args:
            turns: Runs each turn.
            config: ``[agent]`` (queue bound, ping interval, message size).
            session_id: Shown to the client.
            user_id: The authenticated caller.
            send: Sends one text frame.
            admit: Admits one message against the caller's rate limits, or raises.
            refusal: Turns an exception into the error frame the client gets.
            byok: The caller's own upstream, from the handshake's ``X-BYOK-*`` headers.
        """
        self.turns = turns
        self.config = config
        self.session_id = session_id
        self.user_id = user_id
        self.byok = byok
        self.history: list[HistoryMessage] = []
        self._send_text = send
        self._admit = admit
        self._refusal = refusal
        self._queue: asyncio.Queue[TurnMessage] = asyncio.Queue()
        self._current: asyncio.Task[None] | None = None
        self._bad_frames = 0

    async def serve(self, receive: Callable[[], Awaitable[str | bytes | None]]) -> None:
        """Receive until the client leaves; turns run one at a time in order.

        Raises:
            SessionClosed: the session must close with a code (too big, too many bad frames).
        """
        await self._send(
            {
                "type": "session",
                "status": "ready",
                "session_id": self.session_id,
                "user": self.user_id,
            }
        )
        worker = asyncio.create_task(self._run_turns())
        pinger = asyncio.create_task(self._ping())
        try:
            while True:
                await self.receive(await receive())
        finally:
            for task in (worker, pinger):
                task.cancel()
            await asyncio.gather(worker, pinger, return_exceptions=True)

    async def receive(self, raw: str | bytes | None) -> None:
        """Handle one message from the client."""
        if raw is None:  # Quart hands an empty binary frame over as None
            await self._bad_frame("messages must be JSON objects")
            return
        if len(raw) > self.config.ws_max_message_bytes:
            raise SessionClosed(1009, "message too big")
        message = parse_object(raw)
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
        try:
            turn = TurnMessage.model_validate(message)
            await self._admit()
        except Exception as error:  # validation or a limit: the session stays open
            await self._send(self._refusal(error))
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
        self._queue.put_nowait(turn)

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
            turn = await self._queue.get()
            current = self._current = asyncio.create_task(self._turn(turn))
            try:
                await asyncio.wait([current])
            except asyncio.CancelledError:  # the session ends: stop the turn, then leave
                current.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await current
                raise

    async def _turn(self, turn: TurnMessage) -> None:
        try:
            events = await self.turns.start(
                self.user_id,
                turn.message,
                turn.scenario,
                history=list(self.history),
                byok=self.byok,
            )
        except Exception as error:
            frame = self._refusal(error)
            if frame.get("status") == 500:
                log.exception("agent session %s: the turn could not start", self.session_id)
            await self._send(frame)
            return
        answer = ""
        try:
            async with aclosing(events) as frames:
                async for event in frames:
                    if isinstance(event, ChatEvent) and event.content:
                        answer = answer + event.content if event.streaming else event.content
                    await self._send_text(event.to_json())
        except Exception:
            log.exception("agent session %s: a turn failed", self.session_id)
            raise
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

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(orjson.dumps(frame).decode())


def parse_object(raw: str | bytes) -> dict[str, Any] | None:
    """A JSON object from a frame, or None for anything else."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
