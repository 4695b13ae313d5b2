"""Errors to HTTP responses, in one table (contract 5.1).

Every error body is ``{"error": <human message>, "detail": <same or more>, "code": <SNAKE>}``:
the frontend reads ``error`` first. Blueprints raise; they never build error responses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar

from pydantic import ValidationError
from quart import Quart
from quart import Response
from quart import g
from quart import has_request_context
from quart import jsonify
from quart import request
from werkzeug.exceptions import HTTPException

from coordination.errors import CoordinationUnavailable
from credits.errors import InsufficientCredits
from credits.errors import LedgerUnavailable
from providers.errors import ProviderError

__all__ = [
    "ERRORS_QUERY",
    "APIError",
    "ErrorParts",
    "InBand",
    "error_parts",
    "error_response",
    "refusals_in_band",
    "register_error_handlers",
]

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error with its HTTP status, SNAKE code, message and optional headers."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The contract's error body with its status."""
    response = jsonify(
        {"error": message, "detail": message if detail is None else detail, "code": code}
    )
    response.status_code = status
    response.headers.update(headers or {})
    return response


@dataclass(frozen=True, slots=True)
class ErrorParts:
    """What any transport says about an error: status, code, message, detail, headers."""

    status: int
    code: str
    message: str
    detail: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retry_after(self) -> int | None:
        """``Retry-After`` in seconds, when the error carries one."""
        value = self.headers.get("Retry-After")
        return int(value) if value is not None and value.isdigit() else None


def error_parts(error: BaseException) -> ErrorParts:
    """The one table from exceptions to the contract's errors (5.1), for every transport.

    HTTP answers with it (``register_error_handlers``), the WebSocket sends it as an error
    frame and the agent's SSE endpoint in-band. Unknown errors are a generic 500 (the
    caller logs them).
    """
    if isinstance(error, APIError):
        return ErrorParts(error.status_code, error.code, error.message, error.detail, error.headers)
    if isinstance(error, ProviderError | CoordinationUnavailable | LedgerUnavailable):
        return ErrorParts(error.status_code, error.code, error.message, None, error.headers)
    if isinstance(error, InsufficientCredits):
        detail = {"needed": error.needed, "available": error.available}
        return ErrorParts(402, "INSUFFICIENT_CREDITS", _credits_message(error), detail)
    if isinstance(error, ValidationError):
        message, details = _validation_detail(error)
        return ErrorParts(400, "INVALID_REQUEST", message, details)
    if isinstance(error, HTTPException):
        status = error.code or 500
        message = (error.description or error.name or "error").strip()
        return ErrorParts(status, _HTTP_CODES.get(status, "HTTP_ERROR"), message)
    return ErrorParts(500, "INTERNAL_SERVER_ERROR", "internal server error")


def _credits_message(error: InsufficientCredits) -> str:
    return (
        f"insufficient credits: this request needs at least {error.needed} credits (its prompt "
        f"and a short answer) and {error.available} are available"
    )


def _validation_detail(error: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    items = error.errors(include_url=False, include_context=False, include_input=False)
    first = items[0] if items else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first.get("type") in ("json_invalid", "json_type"):
        return f"the request body is not valid JSON: {first['msg']}", [
            {"field": "body", "message": first["msg"]}
        ]
    detail = [{"field": ".".join(str(p) for p in i["loc"]), "message": i["msg"]} for i in items]
    return f"invalid request: {field}: {first['msg']}", detail


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


InBand = Callable[[ErrorParts], Response]
"""Renders a refusal inside a 200 response, in the route's own stream format."""
_IN_BAND = "_storywriter_in_band"
#: ``?errors=status``: the switch that keeps real HTTP statuses on an in-band route.
ERRORS_QUERY = "errors"


def refusals_in_band(render: InBand) -> Callable[[F], F]:
    """Mark a route whose refusals travel inside a 200 stream, rendered by ``render``.

    For a client that cannot read an error status (the frontend's agent service throws
    a generic error on any non-200 without reading the body): every error before the
    stream starts - auth, validation, rate limit, credits, busy, no model, unavailable -
    is answered 200 with ``render(parts)``. ``?errors=status`` keeps the real status for
    API clients. The access log and the metrics record the real outcome either way.
    """

    def mark(view: F) -> F:
        setattr(view, _IN_BAND, render)
        return view

    return mark


def _in_band(app: Quart) -> InBand | None:
    if not has_request_context() or request.args.get(ERRORS_QUERY) == "status":
        return None
    view = app.view_functions.get(request.endpoint or "")
    render = getattr(view, _IN_BAND, None)
    return render if callable(render) else None


def register_error_handlers(app: Quart) -> None:
    """Answer every exception through ``error_parts``; log the unexpected ones."""

    @app.errorhandler(Exception)
    async def _error(error: Exception) -> Response:
        parts = error_parts(error)
        if parts.status == 500:
            log.exception("unhandled error: %s", type(error).__name__)
        render = _in_band(app)
        if render is not None:
            g.outcome_status = parts.status  # the access log and metrics: the real outcome
            return render(parts)
        return error_response(
            parts.status, parts.code, parts.message, parts.detail, dict(parts.headers)
        )
