"""The app's request class: Quart's, with a body read that creates no task.

Quart's ``Request.get_data`` bounds the body read with ``asyncio.wait_for``, which in Python
3.11 wraps the read in a new Task with its own future and timer: ~15 us of the ~550 us a
non-streamed completion costs on one core, paid even when - as for nearly every chat
request - the whole body arrived with the headers. ``asyncio.timeout`` bounds it the same
way (``BODY_TIMEOUT``, then 408) without the task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart.wrappers import Request
from werkzeug.exceptions import RequestTimeout

__all__ = ["ServiceRequest"]


class ServiceRequest(Request):
    """``quart.Request`` with a cheaper ``get_data``."""

    async def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        """The body as bytes (or text), read within ``BODY_TIMEOUT`` (408 after it)."""
        if parse_form_data:
            return await super().get_data(cache, as_text, parse_form_data)
        try:
            async with asyncio.timeout(self.body_timeout):
                raw: bytes = await self.body
        except TimeoutError as error:
            raise RequestTimeout() from error
        if not cache:
            self.body.clear()
        return raw.decode() if as_text else raw
