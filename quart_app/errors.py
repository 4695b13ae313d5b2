"""Errors to HTTP responses, in one table (contract 5.1).

Every error body is ``{"error": <human message>, "detail": <same or more>, "code": <SNAKE>}``:
the frontend reads ``error`` first. Blueprints raise; they never build error responses.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart
from quart import Response
from quart import jsonify
from werkzeug.exceptions import HTTPException

from credits.errors import InsufficientCredits
from providers.errors import ProviderError

__all__ = ["APIError", "error_parts", "error_response", "register_error_handlers"]

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


def error_parts(error: Exception) -> tuple[int, str, str, Any]:
    """``(status, code, message, detail)`` of an error, for transports without statuses.

    The WebSocket sends them as an error frame; unknown errors are a generic 500.
    """
    if isinstance(error, APIError):
        return error.status_code, error.code, error.message, error.detail
    if isinstance(error, ProviderError):
        return error.status_code, error.code, error.message, None
    if isinstance(error, InsufficientCredits):
        return (
            402,
            "INSUFFICIENT_CREDITS",
            _credits_message(error),
            {"needed": error.needed, "available": error.available},
        )
    if isinstance(error, ValidationError):
        message, detail = _validation_detail(error)
        return 400, "INVALID_REQUEST", message, detail
    return 500, "INTERNAL_SERVER_ERROR", "internal server error", None


def _credits_message(error: InsufficientCredits) -> str:
    return (
        f"insufficient credits: this request may cost up to {error.needed} credits "
        f"and {error.available} are available"
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


def register_error_handlers(app: Quart) -> None:
    """Install the one mapping from exceptions to responses."""

    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> Response:
        return error_response(
            error.status_code, error.code, error.message, error.detail, error.headers
        )

    @app.errorhandler(ProviderError)
    async def _provider_error(error: ProviderError) -> Response:
        return error_response(error.status_code, error.code, error.message, headers=error.headers)

    @app.errorhandler(InsufficientCredits)
    async def _insufficient_credits(error: InsufficientCredits) -> Response:
        message = _credits_message(error)
        detail = {"needed": error.needed, "available": error.available}
        return error_response(402, "INSUFFICIENT_CREDITS", message, detail)

    @app.errorhandler(ValidationError)
    async def _validation_error(error: ValidationError) -> Response:
        message, detail = _validation_detail(error)
        return error_response(400, "INVALID_REQUEST", message, detail)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "HTTP_ERROR")
        message = (error.description or error.name or "error").strip()
        return error_response(status, code, message)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error: %s", type(error).__name__)
        return error_response(500, "INTERNAL_SERVER_ERROR", "internal server error")
