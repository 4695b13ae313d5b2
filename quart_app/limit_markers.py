"""The marks a route carries for the per-user rate limits.

quart-rate-limiter's design: a decorator only sets an attribute on the view; the hooks in
``quart_app.limit_hooks`` read it and enforce the limits before the handler runs. A route
with no mark is limited all the same (a new route can never slip through), and the test
suite checks that every route says which it is:

- ``@rate_limit``: counted against the per-user request limits. ``@rate_limit(tokens=...)``
  also says how to estimate the tokens a request may use (charged against
  tokens-per-minute, corrected when the call settles).
- ``@cheap_read``: a cheap, cached read the frontend polls (the model list, the status).
  It neither spends nor is refused by the request limits - a user at their limit must
  still see the model list - and is guarded against floods by a bucket of its own, per
  user or, for a route without a token, per client address.
- ``@rate_exempt``: never limited (probes, documentation).
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import TypeVar
from typing import overload

from quart import request

__all__ = [
    "Marker",
    "ReadMarker",
    "TokenEstimate",
    "chat_tokens",
    "cheap_read",
    "estimate_body_tokens",
    "is_cheap_read",
    "is_exempt",
    "is_limited",
    "limit_marker",
    "rate_exempt",
    "rate_limit",
    "read_marker",
]

F = TypeVar("F", bound=Callable[..., Any])
TokenEstimate = Callable[[], Awaitable[int]]
_LIMIT = "_storywriter_rate_limit"
_EXEMPT = "_storywriter_rate_exempt"
_READ = "_storywriter_cheap_read"
#: ``ChatRequest.max_tokens``'s default, charged when a body names none.
_DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Marker:
    """What ``@rate_limit`` records on a view."""

    tokens: TokenEstimate | None = None


@overload
def rate_limit(func: F) -> F: ...
@overload
def rate_limit(*, tokens: TokenEstimate | None = None) -> Callable[[F], F]: ...
def rate_limit(
    func: F | None = None, *, tokens: TokenEstimate | None = None
) -> F | Callable[[F], F]:
    """Mark a view as limited per user (``tokens`` estimates what the request may use).

    Args:
        func: The view (when used without arguments).
        tokens: Awaitable estimate of the tokens the request may use, charged against the
            tokens-per-minute limit and corrected when the call settles.
    """

    def mark(view: F) -> F:
        setattr(view, _LIMIT, Marker(tokens))
        return view

    return mark(func) if func is not None else mark


@dataclass(frozen=True, slots=True)
class ReadMarker:
    """What ``@cheap_read`` records on a view: whose reads bucket counts the request."""

    by: Literal["user", "address"] = "user"


@overload
def cheap_read(func: F) -> F: ...
@overload
def cheap_read(*, by: Literal["user", "address"] = "user") -> Callable[[F], F]: ...
def cheap_read(
    func: F | None = None, *, by: Literal["user", "address"] = "user"
) -> F | Callable[[F], F]:
    """Mark a view as a cheap, cached read: apart from the request limits, flood-guarded.

    Args:
        func: The view (when used without arguments).
        by: Whose reads bucket: the caller's user (the route authenticates), or the
            client address (a route without a token).
    """

    def mark(view: F) -> F:
        setattr(view, _READ, ReadMarker(by))
        return view

    return mark(func) if func is not None else mark


def rate_exempt(func: F) -> F:
    """Mark a view as never limited (health and status probes)."""
    setattr(func, _EXEMPT, True)
    return func


def is_limited(view: Callable[..., Any]) -> bool:
    """The view carries ``@rate_limit``."""
    return isinstance(getattr(view, _LIMIT, None), Marker)


def is_cheap_read(view: Callable[..., Any]) -> bool:
    """The view carries ``@cheap_read``."""
    return read_marker(view) is not None


def read_marker(view: Callable[..., Any]) -> ReadMarker | None:
    """The ``@cheap_read`` mark of a view, if it has one."""
    marker = getattr(view, _READ, None)
    return marker if isinstance(marker, ReadMarker) else None


def is_exempt(view: Callable[..., Any]) -> bool:
    """The view carries ``@rate_exempt``."""
    return getattr(view, _EXEMPT, False) is True


def estimate_body_tokens(body: bytes, default_max_tokens: int = _DEFAULT_MAX_TOKENS) -> int:
    """Prompt + ``max_tokens`` of a chat body, cheaply: no JSON parse on the hot path.

    A quarter of the body's bytes over-counts the prompt a little (JSON punctuation,
    roles); the real usage replaces the estimate when the call settles, so the only thing
    that matters here is that it is never far too low for a large request.
    """
    max_tokens = default_max_tokens
    at = body.rfind(b'"max_tokens"')
    if at >= 0:
        digits = body[at + 12 : at + 40].lstrip(b" \t\r\n:").split(b",", 1)[0].split(b"}", 1)[0]
        digits = digits.strip()
        if digits.isdigit():
            max_tokens = int(digits)
    return len(body) // 4 + max_tokens


async def chat_tokens() -> int:
    """Token estimate of the current chat completion request (its body stays cached)."""
    body = await request.get_data()
    return estimate_body_tokens(body if isinstance(body, bytes) else body.encode())


def limit_marker(view: Callable[..., Any]) -> Marker | None:
    """The ``@rate_limit`` mark of a view, if it has one."""
    marker = getattr(view, _LIMIT, None)
    return marker if isinstance(marker, Marker) else None
