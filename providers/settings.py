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

__all__ = [
    "KNOWN_OUTPUT_LIMITS",
    "ContinuationMode",
    "UpstreamKind",
    "UpstreamSettings",
    "known_output_limit",
]

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

#: Completion limits of well-known model ids (OpenAI's, also served by GitHub Models and
#: OpenRouter under a vendor prefix): a request asking for more is capped to them, and so is
#: its credit hold. Dated snapshots (``gpt-4o-2024-08-06``) take their family's limit.
KNOWN_OUTPUT_LIMITS: dict[str, int] = {
    "gpt-3.5-turbo": 4_096,
    "gpt-4": 8_192,
    "gpt-4-turbo": 4_096,
    "gpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4.1": 32_768,
    "gpt-4.1-mini": 32_768,
    "gpt-4.1-nano": 32_768,
    "gpt-5": 128_000,
    "gpt-5-mini": 128_000,
    "gpt-5-nano": 128_000,
    "o1": 100_000,
    "o1-mini": 65_536,
    "o3": 100_000,
    "o3-mini": 100_000,
    "o4-mini": 100_000,
}
_VENDOR_PREFIXES = ("openai/", "azure-openai/")

ContinuationMode = Literal["prefill", "instruction", "off"]
"""How a stream cut mid-answer is continued: the partial answer as an assistant message to
extend (``prefill``), or followed by a request in words to go on (``instruction``)."""

#: Servers that extend a final assistant message natively (llama.cpp, vLLM with
#: ``continue_final_message``, LM Studio, Ollama); hosted APIs are asked in words.
_PREFILL_KINDS = frozenset({"local", "llamacpp", "vllm", "lmstudio", "ollama"})

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
    max_output_tokens: int | None = Field(default=None, ge=1)
    """Most completion tokens any model here generates; a request asking for more is sent
    this many (and holds credits for this many). Default: known ids' own limits only."""
    continuation: ContinuationMode | None = None
    """How a stream that dies mid-answer is continued here; default by kind: ``prefill``
    for llamacpp, vllm, lmstudio, ollama and the embedded model, ``instruction`` for the
    others; ``off`` ends such a stream with the error frame."""
    model_max_output_tokens: dict[str, int] = {}
    """Per-model completion limits, e.g. ``{"llama3.1:8b" = 8192}``; they win over
    ``max_output_tokens`` and the built-in limits of well-known ids."""

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def continuation_mode(self) -> ContinuationMode:
        """The effective continuation mode."""
        if self.continuation is not None:
            return self.continuation
        return "prefill" if self.kind in _PREFILL_KINDS else "instruction"

    def output_limit(self, model: str) -> int | None:
        """The most completion tokens ``model`` generates here, when known."""
        if model in self.model_max_output_tokens:
            return self.model_max_output_tokens[model]
        if self.max_output_tokens is not None:
            return self.max_output_tokens
        return known_output_limit(model)

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


def known_output_limit(model: str) -> int | None:
    """The built-in completion limit of a well-known model id (dated snapshots included)."""
    name = model.lower()
    for prefix in _VENDOR_PREFIXES:
        name = name.removeprefix(prefix)
    if name in KNOWN_OUTPUT_LIMITS:
        return KNOWN_OUTPUT_LIMITS[name]
    family, _, rest = name.rpartition("-20")  # gpt-4o-2024-08-06 -> gpt-4o
    if family in KNOWN_OUTPUT_LIMITS and rest[:2].isdigit():
        return KNOWN_OUTPUT_LIMITS[family]
    return None
