"""The app's ASGI HTTP connection: Quart's, with one task per request instead of three.

Quart runs each request as two new tasks - the handler and a receiver that reads the body
and watches for ``http.disconnect`` - joined by ``asyncio.wait`` and followed by a
cancel-and-gather of the loser: ~40 us and two extra event-loop turns per request, which at
concurrency 1 is latency and at load is a tenth of a request's CPU. Here the handler runs
in the task the server already made for the request; only the receiver is a task, and a
disconnect cancels the handler exactly as Quart's would (a stream's ``finally`` blocks
close the upstream, free the slot and settle the usage).
"""

from __future__ import annotations

import asyncio
import logging

from hypercorn.typing import ASGIReceiveCallable
from hypercorn.typing import ASGISendCallable
from quart.asgi import ASGIHTTPConnection

__all__ = ["ServiceHTTPConnection"]

log = logging.getLogger(__name__)


class ServiceHTTPConnection(ASGIHTTPConnection):
    """``quart.asgi.ASGIHTTPConnection`` without the handler task."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Handle the request in this task while a receiver task watches for a disconnect."""
        request = self._create_request_from_scope(send)
        handler = asyncio.current_task()
        assert handler is not None
        finished = False  # the handler is done: a late disconnect must not cancel anything
        stopped = False  # the receiver cancelled the handler (the client left)

        def receiver_done(receiver: asyncio.Task[None]) -> None:
            nonlocal stopped
            # The receiver returns on http.disconnect (or fails): stop the handler, as
            # Quart's asyncio.wait(FIRST_COMPLETED) would, unless it is already done.
            if receiver.cancelled():
                return
            if (error := receiver.exception()) is not None:
                log.warning("reading the request failed: %r", error)
            if not finished:
                stopped = True
                handler.cancel()

        receiver = asyncio.ensure_future(self.handle_messages(request, receive))
        receiver.add_done_callback(receiver_done)
        try:
            await self.handle_request(request, send)
        except asyncio.CancelledError:
            # Ours (the client left): end normally, as Quart's connection does, so that the
            # server sees an app that returned. Anyone else's cancellation propagates.
            if not stopped or handler.uncancel() > 0:
                raise
        finally:
            finished = True
            receiver.cancel()  # waiting on the next message; nothing to wait for
