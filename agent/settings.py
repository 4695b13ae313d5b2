"""The ``[agent]`` settings, owned by the agent like ``[limits]`` is owned by coordination.

``quart_app.config`` nests them in ``Settings``; the turn service (``gateway.turns``) and
the WebSocket sessions take them as constructor arguments and never read the environment.
Importing this module stays light: it needs pydantic only, not the agent stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

__all__ = ["AgentSettings"]

MIB = 1024 * 1024


class AgentSettings(BaseModel):
    """``[agent]``: the scenario agent and its WebSocket sessions."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """Model for the agent's calls; default: the pool's default model."""
    model_profile: Literal["auto", "small", "large"] = "auto"
    """How much the agent leaves to its model. ``small``: explicit requests are parsed by
    code, the model only writes what is genuinely open, in short grammar-constrained steps
    (for 0.1-8B local models); ``large``: the model classifies and edits freely. ``auto``:
    small when the agent's model is served by the embedded (``local``) provider only."""
    preload: bool = False
    """Load the agent stack (~55 MiB per worker) at startup instead of on first use."""
    max_tokens: int = Field(default=512, ge=16, le=32_000)
    """Completion limit of each agent LLM call."""
    temperature: float = Field(default=0.7, ge=0, le=2)
    """Sampling temperature of the agent's prose."""
    structured_temperature: float = Field(default=0.0, ge=0, le=2)
    """Sampling temperature of its JSON steps (classification, edits): 0 is the most reliable."""
    supports_json_schema: bool = True
    """Send ``response_format`` json_schema (llama.cpp, vLLM, OpenAI, LM Studio, Ollama do)."""
    max_message_chars: int = Field(default=8_000, ge=1)
    """Longest writer message accepted."""
    max_scenario_chars: int = Field(default=4_000, ge=500)
    """Budget of scenario JSON shown to the model (photos never are); raise for big models."""
    reservation_calls: int = Field(default=3, ge=1, le=20)
    """The calls a turn's credit hold plans for, each its prompt + ``max_tokens``: the
    classification, one operation and the follow-ups. A turn that needs more calls gets
    them while the hold lasts (each call is capped to what is left; never beyond it)."""
    ws_auth_timeout_s: float = Field(default=10.0, gt=0)
    """A WebSocket without a token in its URL must send ``auth`` within this time."""
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    """Idle WebSocket sessions get a ``{"type":"ping"}`` this often."""
    ws_max_message_bytes: int = Field(default=8 * MIB, ge=1024)
    """Larger WebSocket messages close the session with 1009."""
    ws_max_queued: int = Field(default=4, ge=0, le=64)
    """Messages queued behind a running turn; more are refused with an error frame."""
