"""LangGraph state of one agent turn.

Following react-agent, a narrow ``InputState`` (what a transport supplies) is kept apart
from the internal ``State``. Scenario edits accumulate in ``working``, a copy-on-write
version of the scenario; the single scenario update is computed from it at the end, so an
operation that fails midway leaves the writer's scenario untouched.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from dataclasses import field
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict

from agent.llm_schemas import Operation

__all__ = ["HistoryMessage", "InputState", "State"]


class HistoryMessage(BaseModel):
    """One earlier message of the conversation (the WebSocket channel may keep some)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    role: Literal["user", "assistant"]
    """Who wrote it."""
    content: str
    """Its text."""


@dataclass(kw_only=True)
class InputState:
    """What a turn starts from."""

    message: str
    """The writer's message."""
    scenario: dict[str, Any] = field(default_factory=dict)
    """The scenario as the frontend sent it (never mutated)."""
    history: list[HistoryMessage] = field(default_factory=list)
    """Earlier messages, oldest first, already trimmed."""


@dataclass(kw_only=True)
class State(InputState):
    """Everything the nodes share during a turn."""

    operations: list[Operation] = field(default_factory=list)
    """The classified operations, in order."""
    cursor: int = 0
    """Index of the next operation to perform."""
    working: dict[str, Any] = field(default_factory=dict)
    """The scenario with this turn's edits applied so far."""
    created: bool = False
    """Whether an operation replaced the scenario with a new one."""
    wrote_text: bool = False
    """Whether prose was already sent (the next prose starts with a blank line)."""
    done: Annotated[list[str], operator.add] = field(default_factory=list)
    """One line per performed operation, used to suggest follow-ups."""
    suggestions: list[str] = field(default_factory=list)
    """Follow-ups decided by a node (a clarification), used instead of asking the model."""

    @property
    def operation(self) -> Operation:
        """The operation being performed."""
        return self.operations[self.cursor]
