"""Run callbacks once a streamed response body has been sent, or abandoned.

The access log, the metrics and the rate limiter all need to know when a stream really ends
(a request "in flight" lasts until its last frame). One wrapper carries all their callbacks,
so a streamed response is wrapped once however many hooks watch it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable
from collections.abc import Callable
from types import TracebackType
from typing import Any

from quart import Response
from quart.wrappers.response import ResponseBody

__all__ = ["on_body_sent"]

Callback = Callable[[bool], None]
"""Called once with ``aborted``: True when sending failed or never happened."""


class _NotifyingBody(ResponseBody):
    """The response body, unchanged, plus callbacks once it has been sent."""

    __slots__ = ("_callbacks", "_inner")

    def __init__(self, inner: ResponseBody, callback: Callback) -> None:
        self._inner = inner
        self._callbacks: list[Callback] | None = [callback]

    async def __aenter__(self) -> AsyncIterable[Any]:
        body: AsyncIterable[Any] = await self._inner.__aenter__()
        return body

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._inner.__aexit__(exc_type, exc_value, tb)  # type: ignore[arg-type]
        finally:
            self._fire(exc_type is not None)

    def _fire(self, aborted: bool) -> None:
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(aborted)

    def __del__(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._fire(True)  # never sent: the client left before the headers


def on_body_sent(response: Response, callback: Callback) -> None:
    """Call ``callback(aborted)`` once ``response``'s body has been sent (or not)."""
    body = response.response
    if isinstance(body, _NotifyingBody) and body._callbacks is not None:
        body._callbacks.append(callback)
    else:
        response.response = _NotifyingBody(body, callback)
