"""Settings of one configured upstream, validated by pydantic and owned by the provider layer.

``quart_app.config`` nests a list of these under ``[[providers]]``; the provider layer takes
them as constructor arguments and never reads the environment itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator

__all__ = ["UpstreamKind", "UpstreamSettings"]

UpstreamKind = Literal[
    "openai",
    "openrouter",
    "github",
    "lmstudio",
    "ollama",
    "vllm",
    "llamacpp",
    "local",
    "openai-compatible",
]

#: Credit multipliers of contract.md section 7, used when a provider does not set its own.
DEFAULT_MULTIPLIERS: dict[str, float] = {
    "openai": 1.0,
    "github": 1.5,
    "lmstudio": 0.1,
    "ollama": 0.1,
    "local": 0.1,
}


class UpstreamSettings(BaseModel):
    """One OpenAI-compatible upstream (``[[providers]]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique name, shown in ``/status`` and metrics."""
    kind: UpstreamKind = "openai-compatible"
    """What speaks at ``base_url``: decides model listing (Ollama's ``/api/tags``) and
    Ollama-only fields such as ``keep_alive``."""
    base_url: str = Field(pattern=r"^https?://")
    """OpenAI-compatible base URL, usually ending in ``/v1``."""
    api_key: SecretStr | None = None
    """Sent as ``Authorization: Bearer``; env: ``STORYWRITER_PROVIDERS__<NAME>__API_KEY``."""
    models: list[str] | None = None
    """Model ids served; when absent they are listed from the upstream and cached briefly."""
    max_concurrency: int = Field(default=4, ge=1, le=10_000)
    """Requests this upstream serves at once; a slot is held for the whole stream."""
    credit_multiplier: float | None = Field(default=None, ge=0)
    """Credits per token; defaults by kind (openai 1.0, github 1.5, lmstudio/ollama 0.1)."""
    price_prompt_per_1k: float = Field(default=0.0, ge=0)
    """Cost estimate in USD per 1,000 prompt tokens."""
    price_completion_per_1k: float = Field(default=0.0, ge=0)
    """Cost estimate in USD per 1,000 completion tokens."""
    connect_timeout_s: float = Field(default=5.0, gt=0)
    """Time to open the TCP (and TLS) connection."""
    first_byte_timeout_s: float = Field(default=120.0, gt=0)
    """Time from sending the request to the first byte of the answer (prompt processing)."""
    chunk_timeout_s: float = Field(default=60.0, gt=0)
    """Longest silence allowed between two chunks of a stream."""
    models_cache_ttl_s: float = Field(default=60.0, ge=0)
    """How long a listed model set is reused before asking the upstream again."""
    keep_alive: str | int | None = None
    """Ollama only: default ``keep_alive`` when the request does not carry one."""

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def multiplier(self) -> float:
        """The effective credit multiplier."""
        if self.credit_multiplier is not None:
            return self.credit_multiplier
        return DEFAULT_MULTIPLIERS.get(self.kind, 1.0)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """This upstream's price for a call in USD, from its per-1,000-token prices."""
        return round(
            prompt_tokens * self.price_prompt_per_1k / 1000
            + completion_tokens * self.price_completion_per_1k / 1000,
            8,
        )
