"""The agent's stream events: the exact frames of contract.md 8.2 and 8.3.

One producer (``agent.stream.stream_turn``) yields these and both transports send them
unchanged: SSE puts ``to_json()`` on a ``data:`` line, the WebSocket sends it as a text
message. Events are frozen, like hypercorn's protocol events, so a frame cannot change
between the producer and the wire. ``None`` fields are left out of the JSON because the
frontend treats some keys as signals (a truthy ``metadata.error`` ends the stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import TypeAdapter

__all__ = [
    "AgentEvent",
    "ChatEvent",
    "ChatMetadata",
    "StatusEvent",
    "StatusMetadata",
    "ToolCall",
    "ToolCallEvent",
    "ToolCallMetadata",
    "chat_chunk",
    "chat_message",
    "completed",
    "create_scenario",
    "event_adapter",
    "failure",
    "follow_ups",
    "status",
    "update_scenario",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class _Frame(BaseModel):
    model_config = _FROZEN

    def to_dict(self) -> dict[str, Any]:
        """Return the frame as the JSON-ready dict sent on the wire."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """Return the frame's compact JSON text (the SSE ``data:`` payload / WS message)."""
        return self.model_dump_json(exclude_none=True)

    def to_bytes(self) -> bytes:
        """Return the frame's JSON as UTF-8 bytes."""
        return self.to_json().encode()


class StatusMetadata(BaseModel):
    """Metadata of a status frame."""

    model_config = _FROZEN

    status: str
    """Machine-readable state; ``completed`` ends the stream on the client."""
    node: str | None = None
    """Graph node that is running."""
    error: str | None = None
    """Set only on the final error status; truthy ends the stream on the client."""
    code: str | None = None
    """With ``error``: the stable SNAKE code of the failure, the same an HTTP answer would
    carry (``AI_BUSY``, ``UPSTREAM_RATE_LIMITED``, ...)."""
    retry_after: int | None = None
    """With ``error``: seconds after which trying again may succeed, when that is known."""


class StatusEvent(_Frame):
    """Progress of the turn, shown as a short badge."""

    type: Literal["status"] = "status"
    """Frame type."""
    content: str
    """Badge text."""
    metadata: StatusMetadata
    """Status details."""


class ChatMetadata(BaseModel):
    """Metadata of a chat frame."""

    model_config = _FROZEN

    streaming: bool
    """Same as the top-level ``streaming``."""
    follow_up_questions: tuple[str, ...] | None = None
    """Suggestions; every chat frame sets the list, clearing it when absent."""
    final: bool | None = None
    """Marks the last chat frame of an answer."""


class ChatEvent(_Frame):
    """Prose for the chat bubble: appended when streaming, else replacing it."""

    type: Literal["chat"] = "chat"
    """Frame type."""
    content: str
    """Text to append (streaming) or show (not streaming)."""
    streaming: bool
    """Whether ``content`` is appended to the bubble."""
    metadata: ChatMetadata
    """Chat details."""


class ToolCall(BaseModel):
    """A scenario change for the editor to apply as a shallow merge."""

    model_config = _FROZEN

    action: Literal["update_scenario", "create_scenario"]
    """``update_scenario`` applies ``updated_scenario``; ``create_scenario`` ``scenario``."""
    parameters: dict[str, Any]
    """``{"updated_scenario": {...}}`` or ``{"scenario": {...}}``."""
    status: Literal["completed"] = "completed"
    """The change is final."""


class ToolCallMetadata(BaseModel):
    """Metadata of a tool_call frame."""

    model_config = _FROZEN

    tool_call: ToolCall
    """The change."""


class ToolCallEvent(_Frame):
    """The turn's single scenario change (contract.md 8.3 step 3)."""

    type: Literal["tool_call"] = "tool_call"
    """Frame type."""
    content: str = ""
    """Unused by the frontend; kept so every frame has the same envelope."""
    metadata: ToolCallMetadata
    """The change."""


AgentEvent = Annotated[StatusEvent | ChatEvent | ToolCallEvent, Field(discriminator="type")]
"""Any frame the agent emits."""

event_adapter: TypeAdapter[AgentEvent] = TypeAdapter(AgentEvent)
"""Parses a frame's JSON back into an event (tests, WebSocket clients)."""


def status(state: str, *, node: str | None = None, content: str | None = None) -> StatusEvent:
    """Return a progress status frame.

    Args:
        state: Machine-readable state, e.g. ``analyzing`` (never ``completed``/``error``).
        node: The graph node that is running.
        content: Badge text; defaults to ``state``.
    """
    return StatusEvent(content=content or state, metadata=StatusMetadata(status=state, node=node))


def chat_chunk(text: str) -> ChatEvent:
    """Return a streamed piece of prose (appended to the bubble)."""
    return ChatEvent(content=text, streaming=True, metadata=ChatMetadata(streaming=True))


def chat_message(text: str) -> ChatEvent:
    """Return a whole, non-streaming chat message (replaces the bubble)."""
    return ChatEvent(
        content=text, streaming=False, metadata=ChatMetadata(streaming=False, final=True)
    )


def follow_ups(questions: Sequence[str]) -> ChatEvent:
    """Return the follow-up frame of contract.md 8.3 step 4 (empty streamed content)."""
    return ChatEvent(
        content="",
        streaming=True,
        metadata=ChatMetadata(streaming=True, follow_up_questions=tuple(questions), final=True),
    )


def update_scenario(changes: Mapping[str, Any]) -> ToolCallEvent:
    """Return the tool_call frame carrying the changed top-level keys of the scenario."""
    call = ToolCall(action="update_scenario", parameters={"updated_scenario": dict(changes)})
    return ToolCallEvent(metadata=ToolCallMetadata(tool_call=call))


def create_scenario(scenario: Mapping[str, Any]) -> ToolCallEvent:
    """Return the tool_call frame carrying a whole new scenario."""
    call = ToolCall(action="create_scenario", parameters={"scenario": dict(scenario)})
    return ToolCallEvent(metadata=ToolCallMetadata(tool_call=call))


def completed() -> StatusEvent:
    """Return the last frame of a successful turn."""
    return StatusEvent(content="completed", metadata=StatusMetadata(status="completed"))


def failure(
    message: str, *, code: str | None = None, retry_after: int | None = None
) -> tuple[ChatEvent, StatusEvent]:
    """Return the two frames that end a failed turn (contract.md 8.3).

    Args:
        message: Human-readable, secret-free explanation shown in the chat bubble.
        code: The failure's SNAKE code, when it has one.
        retry_after: Seconds until a retry may succeed, when known.
    """
    metadata = StatusMetadata(status="error", error=message, code=code, retry_after=retry_after)
    return chat_message(message), StatusEvent(content="error", metadata=metadata)
