"""The one producer of agent events for both transports (SSE and WebSocket).

``stream_turn`` runs the graph for one message and yields the contract.md 8.3 sequence:
status frames, streamed prose, at most one tool_call, the follow-ups, then ``completed``.
Once it has started, every failure becomes the 8.3 failure pair instead of an exception,
because the HTTP status is already sent. Cancellation is never swallowed: cancelling the
consumer (a disconnect, a WebSocket cancel) cancels the graph's node tasks, and with them
the upstream request, before ``CancelledError`` propagates. Consumers should wrap the
iterator in ``contextlib.aclosing`` so that stopping early also closes the graph at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any
from typing import cast

from agent import events
from agent.context import AgentContext
from agent.errors import AgentError
from agent.events import AgentEvent
from agent.events import ChatEvent
from agent.events import StatusEvent
from agent.events import ToolCallEvent
from agent.graph import AgentGraph
from agent.state import HistoryMessage
from agent.state import InputState
from coordination.errors import CoordinationUnavailable
from providers.errors import ProviderError

__all__ = ["stream_turn"]

logger = logging.getLogger(__name__)

_EVENT_TYPES = (StatusEvent, ChatEvent, ToolCallEvent)


def _generic_message(exc: BaseException) -> str:
    # The class name helps support; the exception text may hold URLs, keys or prompts.
    return (
        "Sorry, the AI service failed while answering "
        f"({type(exc).__name__}). Please try again in a moment."
    )


def _retry_after(error: ProviderError | CoordinationUnavailable) -> int | None:
    value = error.headers.get("Retry-After")
    return int(value) if value is not None and value.isdigit() else None


def _invalid_input(message: object, scenario: object) -> str | None:
    if not isinstance(message, str) or not message.strip():
        return "Please type a message for the assistant."
    if scenario is not None and not isinstance(scenario, Mapping):
        return "The scenario sent with the message is not a JSON object."
    return None


async def stream_turn(
    graph: AgentGraph,
    *,
    message: str,
    scenario: Mapping[str, Any] | None,
    history: Sequence[HistoryMessage] = (),
    context: AgentContext,
) -> AsyncGenerator[AgentEvent, None]:
    """Run one agent turn and yield its frames as they happen.

    Args:
        graph: The compiled graph from ``agent.graph.build_graph``.
        message: The writer's message.
        scenario: The scenario as sent by the frontend; None counts as empty.
        history: Earlier messages, oldest first (trimmed to the context's limit).
        context: Model source, model name and limits for this turn.

    Yields:
        Frames of contract.md 8.3; the last one is ``completed`` or the error status.

    Raises:
        asyncio.CancelledError: The consumer was cancelled (never converted to a frame).
    """
    problem = _invalid_input(message, scenario)
    if problem:
        for frame in events.failure(problem):
            yield frame
        return
    limit = max(context.max_history_messages, 0)
    turn = InputState(
        message=message,
        scenario=dict(scenario or {}),
        history=list(history)[-limit:] if limit else [],
    )
    try:
        # astream is an async generator, typed as a plain iterator; aclosing needs aclose().
        parts = cast(
            AsyncGenerator[Any, None],
            graph.astream(
                turn,
                # classify, one step per operation, commit, follow_ups, plus room
                config={"recursion_limit": context.max_operations + 8},
                context=context,
                stream_mode="custom",
            ),
        )
        async with aclosing(parts):
            async for part in parts:
                if isinstance(part, _EVENT_TYPES):
                    yield part
    except AgentError as exc:
        logger.info("scenario agent turn failed: %s", type(exc).__name__)
        failure = events.failure(exc.user_message)
    except (ProviderError, CoordinationUnavailable) as exc:
        # The same errors, codes and messages a proxy call gets (``providers.calls``).
        logger.warning("scenario agent turn failed: %s", exc.code)
        failure = events.failure(exc.message, code=exc.code, retry_after=_retry_after(exc))
    except Exception as exc:  # CancelledError is a BaseException and propagates
        logger.warning("scenario agent turn failed: %s", type(exc).__name__)
        logger.debug("scenario agent failure details", exc_info=exc)
        failure = events.failure(_generic_message(exc))
    else:
        yield events.completed()
        return
    for frame in failure:
        yield frame
