"""SSE responses in the contract's framing (contract 1 and 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from quart import Response

__all__ = ["SSE_HEADERS", "sse_response"]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def sse_response(body: AsyncIterator[bytes]) -> Response:
    """Stream ``body`` (whole frames per item, one write each) with no response timeout."""
    response = Response(body, status=200, headers=SSE_HEADERS)
    response.timeout = None  # streams last as long as the model writes
    return response
