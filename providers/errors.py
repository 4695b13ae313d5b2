"""Errors raised by the provider layer, converted to HTTP responses only by ``quart_app``.

Hierarchy (each carries a stable ``code`` and the HTTP status it maps to)::

    ProviderError
     ├── PoolSaturated          409  no slot free for the model (the frontend's "AI busy")
     ├── ModelNotFound          404  no configured upstream serves the model
     ├── ForbiddenUpstream      400  a BYOK base URL the SSRF guard refuses
     ├── InvalidUpstreamConfig  400  BYOK headers that do not describe an upstream
     ├── CallEnded              503  the service itself ended a call (bill what was generated)
     │    ├── ShuttingDown           the worker is stopping: calls in flight end, new ones fail
     │    ├── StreamCancelled        an operator cancelled the stream (the console)
     │    └── StreamTimeLimit        a stream ran ``[server] max_stream_s``
     ├── BudgetExhausted        402  an agent turn spent what it held for its calls
     └── UpstreamError          502  the upstream failed
          ├── UpstreamUnavailable     502  refused, reset or unreachable before the first byte
          ├── UpstreamTimeout         504  connect, first byte or between chunks
          ├── UpstreamProtocolError   502  wrong content type, malformed SSE or JSON
          └── UpstreamHTTPError       mapped: 4xx -> 400, 401/403 -> 502, 429 -> 429, 5xx -> 502

The messages never contain API keys: ``UpstreamHTTPError`` scrubs the key it was given from
the upstream's own error text, because some upstreams echo (part of) the key back.
"""

from __future__ import annotations

__all__ = [
    "BudgetExhausted",
    "CallEnded",
    "ForbiddenUpstream",
    "InvalidUpstreamConfig",
    "ModelNotFound",
    "PoolSaturated",
    "ProviderError",
    "ShuttingDown",
    "StreamCancelled",
    "StreamTimeLimit",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]

_MAX_UPSTREAM_TEXT = 300


class ProviderError(Exception):
    """Base class: a message safe to show a user, a SNAKE code and an HTTP status."""

    status_code = 502
    code = "PROVIDER_ERROR"
    #: Only failures that happen before the first byte and are not the caller's fault may be
    #: retried on the next upstream serving the model.
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` for busy and rate-limited answers)."""
        return {}


class PoolSaturated(ProviderError):
    """Every upstream serving the model is at its concurrency limit."""

    status_code = 409
    code = "AI_BUSY"

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:  # noqa: D102
        return {"Retry-After": str(self.retry_after_s)}


class ModelNotFound(ProviderError):
    """No configured upstream lists the requested model."""

    status_code = 404
    code = "MODEL_NOT_FOUND"


class ForbiddenUpstream(ProviderError):
    """A BYOK base URL points at an address the operator has not allowed (SSRF guard)."""

    status_code = 400
    code = "BYOK_BASE_URL_FORBIDDEN"


class InvalidUpstreamConfig(ProviderError):
    """BYOK headers that cannot describe an upstream (bad URL, unknown provider)."""

    status_code = 400
    code = "BYOK_INVALID"


class BudgetExhausted(ProviderError):
    """An agent turn's next call would cost more than what is left of the turn's hold.

    The hold was what the balance afforded; the call is never sent, so the bill cannot
    exceed the balance (contract.md 7).
    """

    status_code = 402
    code = "INSUFFICIENT_CREDITS"


class CallEnded(ProviderError):
    """The service ended a call itself, not the upstream: what was generated is billed.

    A stream ended this way gets one error frame whose ``type`` is the lower-cased code.
    """

    status_code = 503


class ShuttingDown(CallEnded):
    """The worker is shutting down: its streams were ended and it starts no new call."""

    code = "SHUTTING_DOWN"

    def __init__(self, message: str = "the service is shutting down") -> None:
        super().__init__(message)

    @property
    def headers(self) -> dict[str, str]:  # noqa: D102
        return {"Retry-After": "5"}


class StreamCancelled(CallEnded):
    """An operator cancelled the stream from the console: it ends as a cancelled call."""

    code = "CANCELLED"

    def __init__(self, message: str = "an operator cancelled this stream") -> None:
        super().__init__(message)


class StreamTimeLimit(CallEnded):
    """A stream (a proxied answer, an agent turn) ran for ``[server] max_stream_s``.

    It ends with the usual terminal frame and is charged for what was generated.
    """

    code = "MAX_STREAM_TIME"

    def __init__(self, limit_s: float) -> None:
        super().__init__(
            f"the answer was stopped after {limit_s:g} s, the longest this service streams"
        )


class UpstreamError(ProviderError):
    """The upstream failed; subclasses say how."""

    status_code = 502
    code = "UPSTREAM_ERROR"


class UpstreamUnavailable(UpstreamError):
    """Connection refused, reset or DNS failure before the first byte: try the next one."""

    code = "UPSTREAM_UNAVAILABLE"
    retryable = True


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect, answer or continue in time."""

    status_code = 504
    code = "UPSTREAM_TIMEOUT"
    retryable = True


class UpstreamProtocolError(UpstreamError):
    """The upstream answered something that is not an OpenAI-compatible response."""

    code = "UPSTREAM_PROTOCOL_ERROR"


class UpstreamHTTPError(UpstreamError):
    """The upstream answered an HTTP error status before streaming."""

    def __init__(
        self,
        upstream_status: int,
        upstream: str,
        upstream_text: str,
        *,
        secret: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.upstream_status = upstream_status
        self.upstream = upstream
        self.retry_after = retry_after
        self.status_code, self.code = _map_status(upstream_status)
        self.retryable = upstream_status >= 500 or upstream_status == 429
        text = scrub(upstream_text, secret)[:_MAX_UPSTREAM_TEXT]
        super().__init__(f"upstream {upstream} answered {upstream_status}: {text}".rstrip(": "))

    @property
    def headers(self) -> dict[str, str]:  # noqa: D102
        if self.status_code == 429:
            return {"Retry-After": self.retry_after or "5"}
        return {}


def _map_status(upstream_status: int) -> tuple[int, str]:
    """Map an upstream status to ours: the frontend treats 401 as *its* login failing."""
    if upstream_status in (401, 403):
        return 502, "UPSTREAM_AUTH_FAILED"
    if upstream_status == 429:
        return 429, "UPSTREAM_RATE_LIMITED"
    if 400 <= upstream_status < 500:
        return 400, "UPSTREAM_REJECTED"
    if upstream_status == 504:
        return 504, "UPSTREAM_TIMEOUT"
    return 502, "UPSTREAM_ERROR"


def scrub(text: str, secret: str | None) -> str:
    """Remove a secret (and its longer prefixes/suffixes) from text shown to users or logs."""
    text = " ".join(text.split())
    if not secret:
        return text
    text = text.replace(secret, "***")
    # Upstreams commonly echo a masked key such as "sk-abc...wxyz": drop distinctive pieces.
    if len(secret) >= 12:
        for piece in (secret[:8], secret[-6:]):
            text = text.replace(piece, "***")
    return text
