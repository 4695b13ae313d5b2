"""A scripted OpenAI-compatible upstream for the test suite and the benchmarks.

Why it exists: every reliability target (targets.md) is about what the service does when
its upstream misbehaves, and every performance target is a ratio against a direct upstream
that must never be the bottleneck. A real model can do neither on demand, and a web
framework would cost more per request than the proxy we measure. So this module is a lean
HTTP/1.1 server written directly on ``asyncio.Protocol`` that answers like an
OpenAI-compatible server (and like Ollama for ``GET /api/tags``), with each chat response
driven by a :class:`Script`: how many tokens, how fast, and which :class:`Fault` to inject.

Usage in tests::

    async with ScriptedUpstream(script=Script(tokens=4)) as upstream:
        upstream.enqueue(Script(fault=Fault("reset_mid_stream", after_chunks=2)))
        ...  # point the service at upstream.base_url
        await upstream.wait_for_disconnect(timeout=1.0)

Usage in benchmarks::

    python -m testing.upstream --port 9100 --tokens 64 --delay-ms 0 --uvloop

HTTP handling: keep-alive (HTTP/1.1 default, HTTP/1.0 with ``Connection: keep-alive``),
pipelining, ``Content-Length`` and ``Transfer-Encoding: chunked`` request bodies,
``Expect: 100-continue``. JSON responses carry ``Content-Length``; SSE streams use
``Transfer-Encoding: chunked`` (close-delimited bodies for HTTP/1.0 or ``Connection:
close`` clients). With ``delay_s > 0`` each frame is its own ``transport.write`` at its
scheduled time, so a client sees each one as it is written; with no delay the frames of a
response go out together (whole frames, up to 128 per write), like a fast upstream whose
tokens arrive in one segment, which keeps this server far from being the bottleneck.

Token accounting (deterministic, not a tokenizer):

- ``prompt_tokens`` = number of whitespace-separated words in all message contents (string
  contents and ``{"type": "text"}`` parts) + 3 per message. See :func:`prompt_token_count`.
- ``completion_tokens`` = number of reasoning chunks + number of content chunks emitted.
  The default content pieces (:func:`default_pieces`) are each exactly one token in both
  cl100k and o200k, and so is their concatenation, so a tokenizer agrees with the count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import json
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from typing import Final
from typing import Literal
from typing import TypeAlias
from typing import cast
from typing import get_args

__all__ = [
    "DEFAULT_MODEL",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "Responder",
    "Script",
    "ScriptedUpstream",
    "UsageMode",
    "default_pieces",
    "main",
    "prompt_token_count",
]

logger = logging.getLogger(__name__)

FaultKind: TypeAlias = Literal[
    "http_status",
    "reset_before_response",
    "reset_mid_stream",
    "stall",
    "malformed_json",
    "wrong_content_type",
    "slow_first_byte",
]
UsageMode: TypeAlias = Literal["auto", "always", "never"]

DEFAULT_MODEL: Final = "scripted-model"

_FAULT_KINDS: Final = frozenset(get_args(FaultKind))
_USAGE_MODES: Final = frozenset(get_args(UsageMode))
# Each is one token in cl100k and o200k, and so is any concatenation of the cycle.
_WORDS: Final = (
    " The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the",
    " lazy",
    " dog",
    ".",
)
_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 64 * 1024 * 1024
_CHAT_PATHS: Final = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS: Final = frozenset({"/v1/models", "/models"})
_KNOWN_PATHS: Final = _CHAT_PATHS | _MODELS_PATHS | {"/api/tags", "/health"}


def default_pieces(n: int) -> list[str]:
    """Return the content pieces a script with ``tokens=n`` and no ``pieces`` emits.

    Args:
        n: Number of pieces (one per content chunk).

    Returns:
        ``n`` pieces cycling through " The quick brown fox jumps over the lazy dog.".
    """
    return [_WORDS[i % len(_WORDS)] for i in range(n)]


def prompt_token_count(body: dict[str, Any]) -> int:
    """Count prompt tokens the scripted way: words of every message content + 3 per message.

    Args:
        body: The parsed chat completion request.

    Returns:
        The deterministic ``prompt_tokens`` reported in usage.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        total += 3
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].split())
    return total


@dataclass(frozen=True, slots=True)
class Fault:
    """An upstream failure to inject into one chat response.

    Kinds (both streamed and non-streamed requests unless noted):

    - ``http_status``: ``status`` with body ``{"error": {"message", "type"}}``, before any
      byte of a stream.
    - ``reset_before_response``: the connection is dropped (``transport.abort()``)
      without any response.
    - ``reset_mid_stream``: streamed: dropped after ``after_chunks`` chunks (headers are
      always sent first) so the chunked body ends early; non-streamed: dropped after the
      headers and half the body.
    - ``stall``: streamed: after ``after_chunks`` chunks nothing more is sent;
      non-streamed: nothing is sent at all. The connection stays open until the client
      goes away (counted in ``client_disconnects``) or the upstream closes.
    - ``malformed_json``: streamed: after ``after_chunks`` chunks one ``data: {not json``
      frame, then the response ends without ``[DONE]``; non-streamed: a 200
      ``application/json`` body ``{not json``.
    - ``wrong_content_type``: 200 ``text/html`` with body ``<html>oops</html>``.
    - ``slow_first_byte``: a label: the response is normal but starts after the script's
      ``first_byte_delay_s`` (which must then be > 0).

    ``after_chunks`` counts chunk frames (reasoning and content); when it is at least the
    number of chunks, the fault hits after the last content chunk, before usage/``[DONE]``.

    Attributes:
        kind: Which failure.
        status: HTTP status for ``http_status``.
        message: ``error.message`` for ``http_status``.
        error_type: ``error.type`` for ``http_status``.
        after_chunks: Chunks sent before a mid-stream fault.
    """

    kind: FaultKind
    status: int = 500
    message: str = "scripted upstream failure"
    error_type: str = "server_error"
    after_chunks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be 4xx or 5xx, got {self.status}")
        if self.after_chunks < 0:
            raise ValueError("after_chunks must be >= 0")


@dataclass(frozen=True, slots=True)
class Script:
    """How the upstream answers one chat completion request.

    Attributes:
        tokens: Content chunks to emit (pieces from :func:`default_pieces`).
        pieces: Explicit content pieces, one per chunk; overrides ``tokens``.
        reasoning: Pieces emitted first, one ``delta.reasoning_content`` chunk each.
        delay_s: Pause between consecutive chunks (a schedule, so no drift); when > 0
            every chunk is a separate write, when 0 the chunks are written together. A
            non-streamed answer is sent when the stream would have ended.
        first_byte_delay_s: Pause before the first byte of the response.
        usage: Usage chunk before ``[DONE]``: ``auto`` only when the request has
            ``stream_options.include_usage: true``, ``always`` or ``never``. Non-streamed
            answers include ``usage`` unless ``never``.
        fault: A failure to inject instead of (part of) the normal answer.
        reported_usage: The ``usage`` object to report instead of the real counts (a
            buggy or hostile upstream: negative, absurd or non-integer numbers).
    """

    tokens: int = 8
    pieces: Sequence[str] | None = None
    reasoning: Sequence[str] | None = None
    delay_s: float = 0.0
    first_byte_delay_s: float = 0.0
    usage: UsageMode = "auto"
    fault: Fault | None = None
    reported_usage: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            raise ValueError("tokens must be >= 0")
        if self.delay_s < 0 or self.first_byte_delay_s < 0:
            raise ValueError("delays must be >= 0")
        if self.usage not in _USAGE_MODES:
            raise ValueError(f"usage must be one of {sorted(_USAGE_MODES)}")
        if (
            self.fault is not None
            and self.fault.kind == "slow_first_byte"
            and self.first_byte_delay_s <= 0
        ):
            raise ValueError("a slow_first_byte fault needs first_byte_delay_s > 0")

    def content(self) -> list[str]:
        """Return the content pieces this script emits when ``max_tokens`` allows them all."""
        return list(self.pieces) if self.pieces is not None else default_pieces(self.tokens)


@dataclass(slots=True)
class RecordedRequest:
    """One request as the upstream received it.

    Attributes:
        method: HTTP method, e.g. ``POST``.
        path: Path without the query string.
        query: Query string without ``?`` (empty when none).
        headers: Header names lower-cased; repeated headers joined with ``", "``.
        body: The parsed JSON body, or None when empty or not JSON.
        raw_body: The body bytes (de-chunked).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes


Responder: TypeAlias = Callable[[dict[str, Any]], Script | None]


class _Marker:
    """A non-data step of a response plan."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_ABORT: Final = _Marker("abort")  # transport.abort(): RST, no more bytes
_STALL: Final = _Marker("stall")  # wait until the client goes away
# A response plan yields bytes to write, floats (loop.time() deadlines to wait for) or markers.
_Step: TypeAlias = "bytes | float | _Marker"

_JSON_CT: Final = b"application/json"
_SSE_CT: Final = b"text/event-stream"
_DONE_FRAME: Final = b"data: [DONE]\n\n"
_MALFORMED_FRAME: Final = b"data: {not json\n\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"
_FINISH_NULL: Final = b',"finish_reason":null}]}\n\n'
_FINISH_STOP: Final = b',"finish_reason":"stop"}]}\n\n'
_FINISH_LENGTH: Final = b',"finish_reason":"length"}]}\n\n'
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_BATCH: Final = 128  # frames per write when a stream has no delay
_SSE_HEAD_KEEP: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_SSE_HEAD_CLOSE: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)

_reasons: dict[int, bytes] = {}
_json_strings: dict[str, bytes] = {}


def _reason(status: int) -> bytes:
    reason = _reasons.get(status)
    if reason is None:
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Unknown"
        _reasons[status] = reason
    return reason


def _jstr(text: str) -> bytes:
    """Encode a string as JSON, memoised (scripts repeat the same pieces)."""
    encoded = _json_strings.get(text)
    if encoded is None:
        encoded = json.dumps(text).encode()
        if len(_json_strings) > 50_000:
            _json_strings.clear()
        _json_strings[text] = encoded
    return encoded


def _response(status: int, ctype: bytes, body: bytes, keep_alive: bool) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        _reason(status),
        ctype,
        len(body),
        b"" if keep_alive else b"Connection: close\r\n",
        body,
    )


def _json_response(status: int, obj: Any, keep_alive: bool) -> bytes:
    return _response(status, _JSON_CT, json.dumps(obj, separators=(",", ":")).encode(), keep_alive)


def _error_response(status: int, message: str, etype: str, keep_alive: bool) -> bytes:
    return _json_response(status, {"error": {"message": message, "type": etype}}, keep_alive)


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``pos``.

    Returns:
        ``(body, end)`` or None while incomplete.

    Raises:
        ValueError: Malformed or too large.
    """
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 1024:
                raise ValueError("chunk size line too long")
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        if size < 0:
            raise ValueError("negative chunk size")
        pos = eol + 2
        if size == 0:
            while True:  # optional trailers, then the empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        pos += size + 2
        if len(out) > _MAX_BODY:
            raise ValueError("body too large")


@dataclass(slots=True)
class _Head:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_start: int
    keep_alive: bool
    http11: bool
    continue_sent: bool = False


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and drives response plans.

    A response plan (a generator of steps) is driven by callbacks, not tasks: a deadline
    becomes ``loop.call_at``, a full send buffer waits for ``resume_writing``, and a stall
    simply waits for ``connection_lost``. Requests that arrive while a plan runs are
    buffered and served in order (pipelining).
    """

    def __init__(self, upstream: ScriptedUpstream) -> None:
        self._up = upstream
        self._loop = upstream._loop_or_raise()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._head: _Head | None = None
        self._steps: Iterator[_Step] | None = None  # the running plan, None when idle
        self._keep_alive = True
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._waiting_drain = False
        self.closed = False
        self.self_aborted = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._up._connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        in_flight = self._steps is not None
        self._release_steps()
        self._up._connection_closed(self, in_flight and not self.self_aborted)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._steps is None and not self.closed:
            self._serve()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._waiting_drain:
            self._waiting_drain = False
            self._resume()

    # -- request parsing ----------------------------------------------------------------

    def _serve(self) -> None:
        while not self.closed and self._steps is None:
            try:
                parsed = self._next_request()
            except ValueError as exc:
                self._reject(400, f"bad request: {exc}")
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            steps = self._up._handle(self, request, keep_alive)
            if steps is not None:
                self._drive(steps, keep_alive)
            elif not keep_alive:
                self._close()

    def _next_request(self) -> tuple[RecordedRequest, bool] | None:
        buf = self._buf
        head = self._head
        if head is None:
            while buf[:2] == b"\r\n":
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0 or end > _MAX_HEAD:
                if len(buf) > _MAX_HEAD:
                    self._reject(431, "request header too large")
                return None
            lines = buf[:end].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise ValueError(f"malformed request line {lines[0][:80]!r}")
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name != name.strip():
                    raise ValueError(f"malformed header line {line[:80]!r}")
                name = name.lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            http11 = version == "HTTP/1.1"
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection if http11 else "keep-alive" in connection
            path, _, query = target.partition("?")
            head = self._head = _Head(method, path, query, headers, end + 4, keep_alive, http11)
        headers = head.headers
        start = head.body_start
        te = headers.get("transfer-encoding")
        if te is not None:
            if te.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise ValueError(f"unsupported transfer-encoding {te!r}")
            decoded = _dechunk(buf, start)
            if decoded is None:
                self._maybe_continue(head)
                return None
            raw, end = decoded
        else:
            length = int(headers.get("content-length") or 0)
            if length < 0:
                raise ValueError("negative content-length")
            if length > _MAX_BODY:
                self._reject(413, "request body too large")
                return None
            end = start + length
            if len(buf) < end:
                self._maybe_continue(head)
                return None
            raw = bytes(buf[start:end])
        del buf[:end]
        self._head = None
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        request = RecordedRequest(head.method, head.path, head.query, headers, body, raw)
        return request, head.keep_alive

    def _maybe_continue(self, head: _Head) -> None:
        if (
            not head.continue_sent
            and head.http11
            and head.headers.get("expect", "").lower() == "100-continue"
        ):
            head.continue_sent = True
            self._write(_CONTINUE)

    def _reject(self, status: int, message: str) -> None:
        self._write(_error_response(status, message, "invalid_request_error", False))
        self._buf.clear()
        self._close()

    # -- writing ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self.closed and self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once without counting a client disconnect."""
        self.self_aborted = True
        self.closed = True
        self._release_steps()
        if self._transport is not None:
            self._transport.abort()

    def _release_steps(self) -> None:
        steps, self._steps = self._steps, None
        if steps is not None and hasattr(steps, "close"):
            steps.close()  # runs the plan's finally: (active_streams bookkeeping)

    def _drive(self, steps: Iterator[_Step], keep_alive: bool) -> None:
        """Start a response plan; it runs synchronously until a step has to wait."""
        self._steps = steps
        self._keep_alive = keep_alive
        self._advance()

    def _resume(self) -> None:
        """Continue the plan from a callback, then serve any pipelined request."""
        self._timer = None
        self._advance()
        if self._steps is None and not self.closed and self._buf:
            self._serve()

    def _advance(self) -> None:
        loop = self._loop
        while (steps := self._steps) is not None and not self.closed:
            try:
                step = next(steps, None)
            except Exception:
                logger.exception("scripted upstream: response plan failed")
                self.abort()
                return
            if step is None:  # plan done
                self._steps = None
                if not self._keep_alive:
                    self._close()
                return
            if type(step) is bytes:
                self._write(step)
                if self._paused:
                    self._waiting_drain = True
                    return
            elif type(step) is float:
                if step > loop.time():
                    self._timer = loop.call_at(step, self._resume)
                    return
            elif step is _ABORT:
                self.abort()
                return
            elif step is _STALL:
                return  # until connection_lost (the client leaves or we close)


class ScriptedUpstream:
    """An OpenAI-compatible HTTP server on loopback whose chat answers follow scripts.

    Script choice per chat request: the one-shot queue (:meth:`enqueue`, FIFO), then
    ``responder(body)`` if set and it returns a script, then ``script``.

    Attributes:
        models: Model ids served by ``GET /v1/models`` and ``GET /api/tags``.
        script: The default script.
        responder: Optional hook choosing a script from the parsed request body.
        requests: Every request received (when ``record_requests``), oldest first.
        request_count: Requests received (counted even when not recorded).
        connections: Connections accepted.
        active_streams: Streamed chat requests in flight.
        completed_streams: Streams that ended with ``data: [DONE]``.
        client_disconnects: Chat responses (streamed or not) whose client closed the
            connection before the response was complete.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = None,
        script: Script | None = None,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        """Configure the server; it listens once started (``async with`` or :meth:`start`).

        Args:
            models: Model ids to advertise; defaults to ``["scripted-model"]``.
            script: Default script; defaults to ``Script()`` (8 tokens, no delay).
            responder: Per-request script hook, see the class docstring.
            host: Interface to bind; keep it loopback.
            port: Port to bind; 0 picks a free one.
            record_requests: Keep every request in ``requests`` (turn off for benchmarks).
        """
        self.models: list[str] = list(models) if models is not None else [DEFAULT_MODEL]
        self.script: Script = script if script is not None else Script()
        self.responder: Responder | None = responder
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self.connections = 0
        self.active_streams = 0
        self.completed_streams = 0
        self.client_disconnects = 0
        self._requested_port = port
        self._port: int | None = None
        self._record = record_requests
        self._queue: deque[Script] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._closing = False
        self._conns: set[_Connection] = set()
        self._no_conns = asyncio.Event()
        self._disconnect_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._seq = 0
        self._models_cache: tuple[tuple[str, ...], bytes, bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("ScriptedUpstream already started")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._no_conns = asyncio.Event()
        self._no_conns.set()
        self._server = await self._loop.create_server(
            lambda: _Connection(self),
            self.host,
            self._requested_port,
            backlog=2048,
            reuse_address=True,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and abort every connection, stalled ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        for conn in list(self._conns):
            conn.abort()
        await server.wait_closed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_conns.wait(), 1.0)

    async def __aenter__(self) -> ScriptedUpstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._port is None:
            raise RuntimeError("ScriptedUpstream not started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>`` (Ollama-style base, no ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (OpenAI-style base)."""
        return f"{self.root_url}/v1"

    # -- scripting and observation ------------------------------------------------------

    def enqueue(self, *scripts: Script) -> None:
        """Queue one-shot scripts, consumed FIFO by the next chat requests.

        Args:
            *scripts: Scripts to queue, in order.
        """
        self._queue.extend(scripts)

    @property
    def pending_scripts(self) -> int:
        """Queued one-shot scripts not consumed yet."""
        return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat completion requests, oldest first."""
        return [r for r in self.requests if r.path in _CHAT_PATHS]

    async def wait_for_disconnect(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - the tests' contract is a bounded wait
        *,
        count: int = 1,
    ) -> None:
        """Wait until ``client_disconnects`` reaches ``count``.

        Args:
            timeout: Seconds to wait.
            count: Total number of disconnects to wait for (default: the first one).

        Raises:
            TimeoutError: Fewer than ``count`` disconnects within ``timeout``.
        """
        if self.client_disconnects >= count:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (count, waiter)
        self._disconnect_waiters.append(entry)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.client_disconnects} client disconnect(s) after {timeout}s, expected {count}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._disconnect_waiters.remove(entry)

    # -- internals used by _Connection --------------------------------------------------

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("ScriptedUpstream not started")
        return self._loop

    def _connection_opened(self, conn: _Connection) -> None:
        self.connections += 1
        self._conns.add(conn)
        self._no_conns.clear()
        if self._closing:
            conn.abort()

    def _connection_closed(self, conn: _Connection, disconnected: bool) -> None:
        self._conns.discard(conn)
        if not self._conns:
            self._no_conns.set()
        if disconnected and not self._closing:
            self.client_disconnects += 1
            n = self.client_disconnects
            for wanted, waiter in self._disconnect_waiters:
                if n >= wanted and not waiter.done():
                    waiter.set_result(None)

    def _handle(
        self, conn: _Connection, request: RecordedRequest, keep_alive: bool
    ) -> Iterator[_Step] | None:
        """Answer one request: write simple answers now, or return a plan to drive."""
        self.request_count += 1
        if self._record:
            self.requests.append(request)
        path = request.path
        method = request.method
        if path in _CHAT_PATHS and method == "POST":
            return self._chat(conn, request, keep_alive)
        if method == "GET" and path in _MODELS_PATHS:
            conn._write(_response(200, _JSON_CT, self._model_bodies()[0], keep_alive))
        elif method == "GET" and path == "/api/tags":
            conn._write(_response(200, _JSON_CT, self._model_bodies()[1], keep_alive))
        elif method == "GET" and path == "/health":
            conn._write(_response(200, _JSON_CT, b'{"status":"ok"}', keep_alive))
        elif path in _KNOWN_PATHS:
            msg = f"method {method} not allowed on {path}"
            conn._write(_error_response(405, msg, "invalid_request_error", keep_alive))
        else:
            msg = f"no route for {method} {path}"
            conn._write(_error_response(404, msg, "not_found_error", keep_alive))
        return None

    def _model_bodies(self) -> tuple[bytes, bytes]:
        key = tuple(self.models)
        cached = self._models_cache
        if cached is None or cached[0] != key:
            openai = {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "scripted"} for m in key],
            }
            ollama = {"models": [{"name": m, "model": m} for m in key]}
            compact = (",", ":")
            cached = (
                key,
                json.dumps(openai, separators=compact).encode(),
                json.dumps(ollama, separators=compact).encode(),
            )
            self._models_cache = cached
        return cached[1], cached[2]

    def _pick(self, body: dict[str, Any]) -> Script:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(body)
            if chosen is not None:
                return chosen
        return self.script

    def _chat(
        self, conn: _Connection, request: RecordedRequest, keep_alive: bool
    ) -> Iterator[_Step] | None:
        body = request.body
        if not isinstance(body, dict):
            msg = "request body must be a JSON object"
            conn._write(_error_response(400, msg, "invalid_request_error", keep_alive))
            return None
        try:
            script = self._pick(body)
        except Exception as exc:
            logger.exception("scripted upstream: responder failed")
            msg = f"scripted responder failed: {exc!r}"
            conn._write(_error_response(500, msg, "server_error", keep_alive))
            return None
        if body.get("stream") is True:
            return self._stream_plan(body, script, keep_alive)
        return self._json_plan(body, script, keep_alive)

    def _common(
        self, body: dict[str, Any], script: Script
    ) -> tuple[str, list[str], list[str], str, int, int]:
        model = body.get("model")
        if not isinstance(model, str):
            model = self.models[0] if self.models else DEFAULT_MODEL
        content = script.content()
        finish = "stop"
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool) and len(content) > limit:
            content = content[: max(limit, 0)]
            finish = "length"
        reasoning = list(script.reasoning or ())
        self._seq += 1
        return model, reasoning, content, finish, self._seq, len(reasoning) + len(content)

    def _early_fault(self, fault: Fault | None, keep_alive: bool) -> _Step | None:
        """The whole answer for faults that replace the response, else None."""
        if fault is None:
            return None
        if fault.kind == "http_status":
            return _error_response(fault.status, fault.message, fault.error_type, keep_alive)
        if fault.kind == "reset_before_response":
            return _ABORT
        if fault.kind == "wrong_content_type":
            return _response(200, b"text/html; charset=utf-8", b"<html>oops</html>", keep_alive)
        return None

    def _json_plan(self, body: dict[str, Any], script: Script, keep_alive: bool) -> Iterator[_Step]:
        loop = self._loop_or_raise()
        t0 = loop.time()
        fault = script.fault
        kind = fault.kind if fault is not None else None
        if script.first_byte_delay_s > 0:
            yield t0 + script.first_byte_delay_s
        early = self._early_fault(fault, keep_alive)
        if early is not None:
            yield early
            return
        model, reasoning, content, finish, seq, completion = self._common(body, script)
        if script.delay_s > 0 and completion > 1:
            yield t0 + script.first_byte_delay_s + script.delay_s * (completion - 1)
        if kind == "stall":
            yield _STALL
            return
        if kind == "malformed_json":
            yield _response(200, _JSON_CT, b"{not json", keep_alive)
            return
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        answer: dict[str, Any] = {
            "id": f"chatcmpl-scripted-{seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if script.usage != "never":
            prompt = prompt_token_count(body)
            answer["usage"] = dict(script.reported_usage or {}) or {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        data = _json_response(200, answer, keep_alive)
        if kind == "reset_mid_stream":
            body_start = data.index(b"\r\n\r\n") + 4
            yield data[: body_start + (len(data) - body_start) // 2]  # head + half the body
            yield _ABORT
            return
        yield data

    def _stream_plan(
        self, body: dict[str, Any], script: Script, keep_alive: bool
    ) -> Iterator[_Step]:
        loop = self._loop_or_raise()
        t0 = loop.time()
        self.active_streams += 1
        try:
            fault = script.fault
            fb = script.first_byte_delay_s
            if fb > 0:
                yield t0 + fb
            early = self._early_fault(fault, keep_alive)
            if early is not None:
                yield early
                return
            chunked = keep_alive  # HTTP/1.0 or Connection: close: close-delimited body
            model, reasoning, content, finish, seq, completion = self._common(body, script)
            created = int(time.time())
            prefix = b'data: {"id":"chatcmpl-scripted-%d","object":"chat.completion.chunk",' % seq
            prefix += b'"created":%d,"model":%s,' % (created, _jstr(model))
            choice = prefix + b'"choices":[{"index":0,"delta":'

            def enc(frame: bytes) -> bytes:
                return b"%x\r\n%s\r\n" % (len(frame), frame) if chunked else frame

            def frames() -> Iterator[bytes]:
                role = b'"role":"assistant",'
                for piece in reasoning:
                    yield enc(
                        choice + b'{%s"reasoning_content":%s}' % (role, _jstr(piece)) + _FINISH_NULL
                    )
                    role = b""
                last = len(content) - 1
                end = _FINISH_LENGTH if finish == "length" else _FINISH_STOP
                pieces = content or [""]
                for i, piece in enumerate(pieces):
                    delta = b'{%s"content":%s}' % (role, _jstr(piece))
                    role = b""
                    yield enc(choice + delta + (end if i >= last else _FINISH_NULL))

            total = len(reasoning) + max(len(content), 1)
            mid_fault = fault is not None and fault.kind in (
                "reset_mid_stream",
                "stall",
                "malformed_json",
            )
            stop_at = min(fault.after_chunks, total) if fault is not None and mid_fault else -1
            delay = script.delay_s
            start = t0 + fb
            # Bytes not written yet. Without a delay, frames go out together (in writes of
            # up to _BATCH frames); with one, each frame is written at its scheduled time.
            out = [_SSE_HEAD_KEEP if chunked else _SSE_HEAD_CLOSE]
            for i, frame in enumerate(frames()):
                if i == stop_at:
                    break
                if i and delay > 0:
                    yield b"".join(out)
                    out.clear()
                    yield start + i * delay
                elif len(out) > _BATCH:
                    yield b"".join(out)
                    out.clear()
                out.append(frame)
            if mid_fault:
                assert fault is not None
                if fault.kind == "malformed_json":
                    out.append(enc(_MALFORMED_FRAME))
                    if chunked:
                        out.append(_LAST_CHUNK)
                    yield b"".join(out)
                    return
                if out:
                    yield b"".join(out)
                yield _ABORT if fault.kind == "reset_mid_stream" else _STALL
                return
            include_usage = script.usage == "always" or (
                script.usage == "auto" and _wants_usage(body)
            )
            if include_usage and script.reported_usage is not None:
                usage = json.dumps(dict(script.reported_usage), separators=(",", ":")).encode()
                out.append(enc(prefix + b'"choices":[],"usage":%s}\n\n' % usage))
            elif include_usage:
                prompt = prompt_token_count(body)
                out.append(
                    enc(
                        prefix + b'"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
                        b'"total_tokens":%d}}\n\n' % (prompt, completion, prompt + completion)
                    )
                )
            out.append(enc(_DONE_FRAME))
            if chunked:
                out.append(_LAST_CHUNK)
            self.completed_streams += 1
            yield b"".join(out)
        finally:
            self.active_streams -= 1


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# -- CLI ----------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m testing.upstream",
        description="Serve a scripted OpenAI-compatible upstream until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port (0 = any free one)")
    parser.add_argument("--tokens", type=int, default=64, help="content chunks per answer")
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning chunks first")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause between chunks")
    parser.add_argument("--first-byte-ms", type=float, default=0.0, help="pause before answer")
    parser.add_argument("--usage", choices=sorted(_USAGE_MODES), default="auto")
    parser.add_argument(
        "--model", action="append", dest="models", help="model id to advertise (repeatable)"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    return parser.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    script = Script(
        tokens=args.tokens,
        reasoning=[f" r{i}" for i in range(args.reasoning)] or None,
        delay_s=args.delay_ms / 1000.0,
        first_byte_delay_s=args.first_byte_ms / 1000.0,
        usage=args.usage,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    upstream = ScriptedUpstream(
        models=args.models, script=script, host=args.host, port=args.port, record_requests=False
    )
    async with upstream:
        print(f"scripted upstream listening on {upstream.base_url}", flush=True)
        await stop.wait()
    print(
        f"scripted upstream stopped: {upstream.request_count} requests, "
        f"{upstream.completed_streams} streams completed, "
        f"{upstream.client_disconnects} client disconnects",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the scripted upstream from the command line.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.
    """
    args = _parse_args(argv)
    if args.uvloop:
        import uvloop

        uvloop.run(_serve_forever(args))
    else:
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
