"""Response models of the HTTP API, for the OpenAPI document and its conformance tests.

The handlers build these bodies as dicts on the hot path (no model per response); the
models describe them, and the fuzz test (``tests/test_fuzz_api.py``) checks every response
the service gives against them, so description and behaviour cannot drift apart. Models
that mirror upstream objects allow extra fields: upstreams add their own.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict

__all__ = [
    "AgentHealthResponse",
    "ChatCompletion",
    "CreditsResponse",
    "LivenessResponse",
    "ModelEntry",
    "ModelsResponse",
    "ProviderStatus",
    "ReadinessCheck",
    "ReadinessResponse",
    "StatusResponse",
    "UsageEntry",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProviderStatus(BaseModel):
    """Slots of one provider."""

    name: str
    slots_in_use: int
    slots_total: int
    queue_length: int


class StatusResponse(_Open):
    """``GET /status``: ``busy`` is the frontend's "AI busy" flag (contract 6)."""

    busy: bool
    providers: list[ProviderStatus]


class ModelEntry(_Open):
    """One model the caller can use."""

    id: str
    object: Literal["model"]
    owned_by: str


class ModelsResponse(BaseModel):
    """``GET /models``: OpenAI's list shape."""

    object: Literal["list"]
    data: list[ModelEntry]


class UsageEntry(BaseModel):
    """One row of the caller's usage log (counts only, never prompt text)."""

    request_id: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    credits: int
    duration_ms: int
    status: str
    byok: bool
    created_at: str | None


class CreditsResponse(BaseModel):
    """``GET /api/credits/me``: the caller's balance and latest usage."""

    user: str
    balance: int
    reserved: int
    available: int
    usage: list[UsageEntry]


class ChatCompletion(_Open):
    """A non-streamed ``chat.completion`` with the service's ``usage`` and ``cost``."""

    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    cost: dict[str, Any]


class LivenessResponse(BaseModel):
    """``GET /livez``: the process serves."""

    status: Literal["alive"]


class ReadinessCheck(BaseModel):
    """One dependency: ``up`` or ``down``, why, and how old the answer is."""

    state: Literal["up", "down"]
    detail: str | None
    age_s: float


class ReadinessChecks(BaseModel):
    """Providers by name; the ledger and Redis when configured (else null)."""

    providers: dict[str, ReadinessCheck]
    database: ReadinessCheck | None
    redis: ReadinessCheck | None


class ReadinessResponse(BaseModel):
    """``GET /readyz``: 200 when ready, 503 with the same body otherwise."""

    status: Literal["ready", "not_ready", "draining"]
    checks: ReadinessChecks


class AgentHealthResponse(_Open):
    """``GET /api/streaming_agent/scenario/stream/health`` (the frontend wants ``healthy``)."""

    status: Literal["healthy", "unhealthy"]
    """What the chat panel reads: ``healthy`` whenever a turn can run now."""
    state: Literal["healthy", "degraded", "unhealthy"]
    """``degraded``: some providers of the agent's model are down (turns use the others)."""
    providers: dict[str, ReadinessCheck]
    """Each provider of the agent's model, as ``/readyz`` reports it (cached probes)."""
