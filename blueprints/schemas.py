"""The wire contract's request and response models (contract 4 and 5.1).

Shared by REST, SSE and WebSocket handlers and by the OpenAPI document. Unknown fields are
ignored (the frontend sends extras); supported ones are validated with the contract's ranges.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

__all__ = ["ChatMessage", "ChatRequest", "ErrorBody", "ImagePart", "TextPart"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Model):
    """An image reference; ``url`` may be a data URI."""

    url: str = Field(min_length=1)
    detail: str | None = None


class TextPart(_Model):
    """A text part of a multi-part message."""

    type: Literal["text"]
    text: str


class ImagePart(_Model):
    """An image part of a multi-part message."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Model):
    """One chat message; ``content`` is a string or a list of text/image parts."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=128)
    tool_call_id: str | None = None


class ChatRequest(_Model):
    """Body of both chat-completion endpoints."""

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    temperature: float = Field(default=0.8, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    stream: bool = True
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    keep_alive: str | int | None = None

    def sampling_params(self) -> dict[str, Any]:
        """Optional fields to forward to the upstream (only those the caller set)."""
        params: dict[str, Any] = {"temperature": self.temperature}
        for name in ("top_p", "presence_penalty", "frequency_penalty", "seed", "stop"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params

    def wire_messages(self) -> list[dict[str, Any]]:
        """Messages as plain dicts for the upstream body."""
        return [m.model_dump(exclude_none=True) for m in self.messages]


class ErrorBody(BaseModel):
    """Every error response before streaming (contract 5.1)."""

    error: str
    """Human message; the frontend shows this."""
    detail: Any
    """The same message or structured details (e.g. validation errors per field)."""
    code: str
    """Stable SNAKE_CASE code."""
