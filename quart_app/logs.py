"""Structured logs: one JSON object per line (or readable text), each with its request id.

Log shippers parse JSON without regexes, and an operator follows one request from the access
line to the upstream's own logs through ``request_id`` (also returned to the client and sent
upstream as ``X-Request-Id``). The request id travels in a ``ContextVar`` set when a request
starts, so lines logged by ``providers`` and ``credits`` (which know nothing of Quart) carry it
too, even while a response body streams after the request context is gone.

Lines are written after the current step of the event loop, all the lines of one step in
one ``write`` (`DeferredStreamHandler`): a request's access line is formatted and written
after its response has gone out, not before, and under load one system call serves many
lines.

Nothing here logs bodies, headers or query strings: keys, tokens and prompt text never reach
a log line by way of this module. Standard library only; ``orjson`` is already a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from contextvars import Context
from contextvars import ContextVar
from typing import Any
from typing import Literal
from typing import TextIO

import orjson

from internals import skip_log_record_caller_lookup

__all__ = [
    "REQUEST_ID",
    "DeferredStreamHandler",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("storywriter_request_id", default=None)
"""The id of the request the current task serves (None outside requests)."""

#: Attributes every ``LogRecord`` has; anything else was passed with ``extra=`` and is logged.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
_HANDLER_MARK = "_storywriter_handler"


_second: list[Any] = [-1, ""]  # the last second formatted, and its text (one per second)


def _timestamp(created: float) -> str:
    seconds = int(created)
    if seconds != _second[0]:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{int((created - seconds) * 1000):03d}Z"


def _extras(record: logging.LogRecord) -> list[str]:
    """Names of the fields passed with ``extra=`` (a set difference, not a loop in Python)."""
    return sorted(record.__dict__.keys() - _STANDARD)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one JSON line."""
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__
        for key in _extras(record):
            entry[key] = fields[key]
        if not entry.get("request_id"):
            request_id = REQUEST_ID.get()
            if request_id:
                entry["request_id"] = request_id
            else:
                entry.pop("request_id", None)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the request id and extra fields appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as readable text."""
        line = super().format(record)
        extra = " ".join(
            f"{key}={record.__dict__[key]}" for key in _extras(record) if key != "request_id"
        )
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            extra = f"request_id={request_id} {extra}".rstrip()
        return f"{line} [{extra}]" if extra else line


class DeferredStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes after the current step of the event loop, in one write.

    Why: the access line of a request is logged just before its response is sent, so a
    plain handler formats it and makes a system call on the response's path; this one
    keeps the record (its message rendered and its request id captured, so it reads later
    exactly as it would have now) and formats and writes every line of the loop's step in
    the next step. Outside a running loop (start-up, another thread, shutdown) it writes at
    once, after anything still pending, so lines keep their order. `flush` - called by
    ``logging.shutdown`` at exit - writes what is pending.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record`` for the next step of the running loop (or write it now)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending()
            super().emit(record)
            return
        try:
            record.msg = record.getMessage()  # rendered now: its arguments may change
            record.args = None
            if getattr(record, "request_id", None) is None:
                request_id = REQUEST_ID.get()
                if request_id:
                    record.request_id = request_id
        except Exception:
            self.handleError(record)
            return
        self._pending.append(record)
        if len(self._pending) == 1:
            # In a context of its own: the request id of whichever request logged first
            # must not fill in the lines of the others.
            loop.call_soon(self._write_pending_locked, context=Context())

    def _write_pending_locked(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._write_pending()

    def _write_pending(self) -> None:
        records, self._pending = self._pending, []
        if not records:
            return
        lines = []
        for record in records:
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(records[-1])

    def flush(self) -> None:
        """Write what is pending, then flush the stream."""
        with self.lock or contextlib.nullcontext():
            self._write_pending()
            super().flush()


def configure_logging(level: str, log_format: Literal["json", "text"]) -> logging.Handler:
    """Point the root logger at stderr with the chosen format and level (idempotent).

    Hypercorn's own loggers propagate here when ``hypercorn.toml`` hands them over (see its
    ``logconfig_dict``), so the whole process logs in one format.

    Returns:
        The handler this module installed (reused when called again, e.g. by tests).
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = DeferredStreamHandler(sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.setLevel(level.upper())
    # Our formatters print no caller, thread or process: do not collect them per record
    # (the logging HOWTO's "Optimization"; the access line is logged on every request).
    skip_log_record_caller_lookup()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # The agent's SDK requests go through httpx to an in-process transport, not the network:
    # httpx's line per request would only repeat our access log (and name a fake host).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
