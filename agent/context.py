"""Run-time dependencies of the agent, passed through LangGraph's ``Runtime`` context.

As in react-agent, the graph is compiled once and everything that varies per request or
per deployment arrives here: the provider pool (behind a small Protocol, so ``agent/``
neither imports the pool nor Quart), the model name and a few limits. Nodes lease a pool
slot per LLM call with ``async with context.models.chat_model(context.model) as llm:`` so
a slot is held only while a call runs, never across a whole turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Literal
from typing import Protocol

if TYPE_CHECKING:  # only annotations: importing the agent's context stays light
    from langchain_core.language_models import BaseChatModel

__all__ = ["AgentContext", "ChatModelSource", "ModelProfile", "resolve_profile"]

ModelProfile = Literal["small", "large"]
"""How much a turn leaves to the model (``[agent] model_profile``, ``auto`` resolved)."""


def resolve_profile(setting: str, kinds: Iterable[str]) -> ModelProfile:
    """The profile of a turn: the configured one, or ``auto`` decided by provider kind.

    The embedded model (kind ``local``, SmolLM2-135M by default) follows instructions
    weakly and reads prompts at ~120 tokens/s: ``small``. Anything else - a hosted API,
    LM Studio, Ollama, vLLM, a user's own key - is ``large`` unless the operator says
    otherwise, because only they know how big the model behind it is.

    Args:
        setting: ``[agent] model_profile``: ``auto``, ``small`` or ``large``.
        kinds: The kinds of the upstreams that may serve the turn's calls (a BYOK
            upstream included); none known counts as large.
    """
    if setting in ("small", "large"):
        return "small" if setting == "small" else "large"
    found = set(kinds)
    return "small" if found == {"local"} else "large"


class ChatModelSource(Protocol):
    """Where the agent gets chat models: the provider pool, or a fake in tests."""

    def chat_model(self, model: str | None) -> AbstractAsyncContextManager[BaseChatModel]:
        """Lease a pool slot for one LLM call and yield a chat model bound to it.

        Args:
            model: Model name, or None for the pool's default.

        Returns:
            An async context manager yielding a langchain chat model (``ChatOpenAI`` on the
            upstream's base URL). Entering it may raise the pool's errors (e.g. saturated).
        """
        ...


@dataclass(kw_only=True, frozen=True, slots=True)
class AgentContext:
    """Per-run dependencies and limits of the scenario agent."""

    models: ChatModelSource
    """Source of chat models; each LLM call leases one."""
    model: str | None = None
    """Model to use; None means the pool's default model."""
    structured_temperature: float | None = 0.0
    """Sampling temperature of the JSON steps (classification, edits, follow-ups): 0 makes
    small models far likelier to produce a complete, schema-valid object and the routing
    repeatable; None keeps the model's own. Prose uses the model's configured temperature."""
    supports_json_schema: bool = True
    """Send ``response_format`` json_schema (grammar-enforced on llama.cpp); when False,
    the schema is only described in the prompt."""
    max_history_messages: int = 10
    """Most recent history messages given to the model."""
    max_scenario_chars: int = 4_000
    """Budget for the scenario JSON shown to the model (photos are never shown). The
    default fits the embedded model's 2,048-token slots; raise it for larger models."""
    max_operations: int = 5
    """Operations performed per message; extra ones are dropped."""
    model_profile: ModelProfile = "large"
    """``large``: the model classifies the message and proposes edits freely. ``small``:
    explicit requests are parsed by code (``agent.commands``) and the model only writes
    the open parts, one short grammar-constrained field set per call, within a prompt a
    2,048-token context (and ~120 prompt tokens/s on one CPU thread) can afford."""
