"""CORS with an allow-list: browsers on listed origins may send Authorization and X-BYOK-*.

Never ``*``: credentials travel with these requests. A preflight from an unlisted origin gets
no CORS headers, so the browser refuses the call.
"""

from __future__ import annotations

from quart import Quart
from quart import Response
from quart import request

__all__ = ["install_cors"]

_ALLOWED_HEADERS = (
    "Authorization, Content-Type, Accept, X-BYOK-API-Key, X-BYOK-Base-URL, "
    "X-BYOK-Provider, X-Request-Id"
)
_EXPOSED_HEADERS = (
    "Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
    "RateLimit-Reset, RateLimit-Policy"
)


def install_cors(app: Quart, origins: list[str]) -> None:
    """Answer preflights and decorate responses for the allowed origins."""
    allowed = frozenset(o.rstrip("/") for o in origins)

    @app.before_request
    async def _preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        response = Response("", status=204)
        origin = request.headers.get("Origin", "")
        if origin in allowed:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.after_request
    async def _decorate(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is not None:
            response.vary.add("Origin")
            if origin in allowed:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Allow-Credentials"] = "true"
                response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
        return response
