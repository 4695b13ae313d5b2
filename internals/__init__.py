"""Every use of a library's private or undocumented API, in one place.

Each entry below reaches under a library's public surface, for speed (the gain measured on
this project's 2-core machine is in its comment) or because the library offers no public
way to do what the service needs (the comment says why). ``tests/test_internals.py`` checks
each assumption against the installed version and names the library and version when one
no longer holds: after an upgrade, run it first.

Any layer may import this module (``coordination``, the lowest, does), so it imports
nothing of the service, and Quart, werkzeug, hypercorn and tiktoken only inside the
functions that need them: importing it costs aiolimiter (a few hundred lines) and the
standard library.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
import types
from collections.abc import Callable
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from hypercorn.config import Config
    from hypercorn.config import Sockets
    from hypercorn.typing import ASGIReceiveCallable
    from hypercorn.typing import ASGISendCallable
    from hypercorn.typing import WorkerFunc
    from quart.asgi import ASGIHTTPConnection
    from quart.wrappers import Request
    from tiktoken import Encoding
    from werkzeug.datastructures import Headers

__all__ = [
    "LeakyBucket",
    "append_headers",
    "direct_body_request",
    "drop_python_ranks",
    "hypercorn_run",
    "hypercorn_worker_argument",
    "hypercorn_worker_function",
    "hypercorn_worker_kwargs",
    "one_task_http_connection",
    "resolve_proxy",
    "tiktoken_constructor_args",
    "write_hypercorn_pid_file",
]

T = TypeVar("T")


# --- Quart: one task per request -------------------------------------------------------


@functools.cache
def one_task_http_connection() -> type[ASGIHTTPConnection]:
    """Quart's ``ASGIHTTPConnection`` with the handler in the server's own task.

    Quart runs each request as two new tasks - the handler and a receiver that reads the
    body and watches for ``http.disconnect`` - joined by ``asyncio.wait`` and followed by a
    cancel-and-gather of the loser: two extra event-loop turns per request. Here the handler
    runs in the task the server already made; only the receiver is a task, and a disconnect
    cancels the handler exactly as Quart's would (a stream's ``finally`` blocks close the
    upstream, free the slot and settle the usage).

    Measured gain: ~45 us of CPU per request (258 -> 213 us for a POST with a JSON body
    through the ASGI app, Quart 0.22, best of 8 rounds of 1,000). Private API: the
    connection's ``_create_request_from_scope``, ``handle_messages`` and
    ``handle_request``, and ``__call__`` being the whole per-request flow.
    """
    import asyncio
    import logging

    from quart.asgi import ASGIHTTPConnection

    log = logging.getLogger("quart_app.connection")  # its name before it moved here

    class OneTaskHTTPConnection(ASGIHTTPConnection):
        async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
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
                # Ours (the client left): end normally, as Quart's connection does, so that
                # the server sees an app that returned. Anyone else's cancellation propagates.
                if not stopped or handler.uncancel() > 0:
                    raise
            finally:
                finished = True
                receiver.cancel()  # waiting on the next message; nothing to wait for

    return OneTaskHTTPConnection


@functools.cache
def direct_body_request() -> type[Request]:
    """Quart's ``Request`` whose body read creates no task.

    ``Request.get_data`` bounds the read with ``asyncio.wait_for``, which in Python 3.11
    wraps it in a new Task with its own future and timer, paid even when - as for nearly
    every chat request - the whole body arrived with the headers. ``asyncio.timeout``
    bounds it the same way (``BODY_TIMEOUT``, then 408) without the task.

    Measured gain: ~20 us of CPU per request with Quart's connection (258 -> 236 us), ~6 us
    more on top of :func:`one_task_http_connection` (213 -> 207 us; same benchmark).
    Undocumented API: ``Request.body`` (awaitable, with ``clear``) and ``body_timeout``,
    and ``get_data``'s signature.
    """
    import asyncio

    from quart.wrappers import Request
    from werkzeug.exceptions import RequestTimeout

    class DirectBodyRequest(Request):
        async def get_data(
            self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
        ) -> Any:
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

    return DirectBodyRequest


# --- werkzeug: context-local proxies and headers ----------------------------------------


def resolve_proxy(proxy: T) -> T:
    """The object a werkzeug ``LocalProxy`` (Quart's ``request``, ``g``) stands for now.

    Every attribute read through the proxy is a context-variable lookup: ~1.2 us for
    ``request.method`` against 57 ns on the resolved object. Resolving once, for hooks
    that read six or seven attributes per request, measured 10.4 -> 0.9 us per request.
    Private API: ``LocalProxy._get_current_object`` (documented by werkzeug, underscored).
    """
    # Quart declares its proxies as the objects they stand for, hence the ignore.
    resolved: T = proxy._get_current_object()  # type: ignore[attr-defined]
    return resolved


def append_headers(headers: Headers, items: Iterable[tuple[str, str]]) -> None:
    """Append header lines as they are, without werkzeug's per-value validation.

    For new names with values the service built itself (numbers, a fixed policy string):
    4 RateLimit headers cost 1.3 us this way against 3.1 us with ``Headers.add`` and 3.9 us
    with ``Headers.extend``, on every rate-limited request. Private API: ``Headers._list``,
    the list of ``(name, value)`` pairs werkzeug keeps and serialises in order.
    """
    headers._list.extend(items)


# --- aiolimiter: the bucket arithmetic ----------------------------------------------------


class LeakyBucket(AsyncLimiter):
    """An aiolimiter bucket with the exact wait, signed charges and an injectable clock.

    aiolimiter has no public call for the exact wait before ``amount`` fits, for a refund,
    or for charging past the brim when the real usage exceeded the estimate: these read
    and write the ``_level`` that ``_leak`` keeps. ``_leak`` itself is aiolimiter's, on
    ``clock`` instead of the running loop's clock: its ``_loop`` lookup costs more than the
    arithmetic (146 ns against 314 ns per leak on asyncio, 127 against 435 on uvloop; two
    leaks per admission), these buckets never wait so they need no loop, and tests pass a
    fake clock. Private API: ``_leak``, ``_level``, ``_last_check``, ``_rate_per_sec``, and
    ``has_capacity`` calling ``_leak``.
    """

    __slots__ = ("_clock",)

    def __init__(
        self, max_rate: float, time_period: float = 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(max_rate, time_period)
        self._clock = clock

    def _leak(self) -> None:
        now = self._clock()
        if self._level:
            self._level = max(self._level - (now - self._last_check) * self._rate_per_sec, 0)
        self._last_check = now

    def level(self) -> float:
        """The level after leaking until now."""
        self._leak()
        return float(self._level)

    def add(self, amount: float) -> float:
        """Charge (or refund, when negative) ``amount``; the level may pass the brim."""
        self._leak()
        self._level = max(0.0, self._level + amount)
        return float(self._level)

    def charge_checked(self, amount: float) -> float:
        """Charge right after ``has_capacity`` said yes (it just leaked: no second leak)."""
        self._level += amount
        return float(self._level)

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now)."""
        over = self.level() + amount - self.max_rate
        return max(0.0, over / self._rate_per_sec)


# --- tiktoken: offline encodings ----------------------------------------------------------


def tiktoken_constructor_args(
    name: str, load_ranks: Callable[[str, str | None], dict[bytes, int]]
) -> dict[str, Any]:
    """``tiktoken.Encoding``'s arguments for ``name``, with ranks from ``load_ranks``.

    tiktoken keeps each encoding's split pattern and special tokens inside the constructor
    function that also downloads the ranks (``tiktoken_ext.openai_public``); no public call
    gives them without the download. This runs a copy of that function whose
    ``load_tiktoken_bpe`` is ``load_ranks`` (called with the URL and the sha256 tiktoken
    expects), so the pattern and tokens stay tiktoken's own and nothing is patched.
    Private API: ``ENCODING_CONSTRUCTORS`` and the constructor's global
    ``load_tiktoken_bpe(url, expected_hash=...)``.
    """
    from tiktoken_ext import openai_public

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]
    offline = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": load_ranks},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    args: dict[str, Any] = offline()
    return args


def drop_python_ranks(encoding: Encoding) -> None:
    """Free the Python copy of an encoding's merge ranks; counting uses the Rust copy.

    ``Encoding`` keeps the ranks dict only to pickle itself, which the service never does:
    dropping it saves 14 MiB of RSS per worker for cl100k (a loaded encoding: 39.5 -> 25.4
    MiB) and 27 MiB for o200k (75.0 -> 47.7 MiB), measured with tiktoken 0.14. Private API:
    ``Encoding._mergeable_ranks``.
    """
    encoding._mergeable_ranks = {}


# --- hypercorn: the worker processes ------------------------------------------------------


def hypercorn_worker_argument(name: str) -> Any | None:
    """A keyword argument hypercorn's master gave this worker process (None elsewhere).

    A worker cannot ask hypercorn for its ``config`` (how many siblings it has) or its
    ``shutdown_event`` (the master's signal to drain): hypercorn passes them only to the
    worker function, as keyword arguments of the ``multiprocessing`` spawn child, and the
    child's ``Process`` object keeps them. Private API: ``BaseProcess._kwargs`` (the
    standard library) and the names hypercorn's master uses (``hypercorn/run.py``).
    """
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    return kwargs.get(name) if isinstance(kwargs, dict) else None


def hypercorn_worker_kwargs(
    config: Config, sockets: Sockets | None, shutdown_event: Any
) -> dict[str, Any]:
    """The keyword arguments hypercorn's master passes each worker function.

    ``storywriter serve`` starts the workers itself (``quart_app.supervisor``) and must
    pass exactly what hypercorn's own master does, so that the workers - and
    :func:`hypercorn_worker_argument` in them - cannot tell the difference. Undocumented
    API: the worker functions' keyword arguments.
    """
    return {"config": config, "sockets": sockets, "shutdown_event": shutdown_event}


def hypercorn_worker_function(worker_class: str) -> WorkerFunc:
    """Hypercorn's worker function for ``worker_class`` (the service is asyncio only).

    Hypercorn's public API serves in the calling process (``hypercorn.asyncio.serve``);
    the function its master runs in each worker process is internal
    (``hypercorn.asyncio.run``), and it is what the supervisor must run to be hypercorn.
    """
    if worker_class == "uvloop":
        from hypercorn.asyncio.run import uvloop_worker

        return uvloop_worker
    if worker_class == "asyncio":
        from hypercorn.asyncio.run import asyncio_worker

        return asyncio_worker
    raise ValueError(f"worker_class must be 'asyncio' or 'uvloop', not {worker_class!r}")


def hypercorn_run(config: Config) -> int:
    """Hypercorn's own master (what the ``hypercorn`` command runs); its exit code.

    Undocumented API: ``hypercorn.run.run``, used where the supervisor defers to hypercorn
    (``workers = 0``, the reloader).
    """
    from hypercorn.run import run

    return run(config)


def write_hypercorn_pid_file(path: str) -> None:
    """Write this process's pid where hypercorn's ``--pid`` would (same format).

    Undocumented API: ``hypercorn.utils.write_pid_file``.
    """
    from hypercorn.utils import write_pid_file

    write_pid_file(path)


def skip_log_record_caller_lookup() -> None:
    """Stop ``logging`` from walking the stack for each record's file, line and function.

    The logging HOWTO's "Optimization" table documents it (``logging._srcfile = None``),
    beside the public ``logThreads``/``logProcesses``/``logMultiprocessing`` flags: the
    service's formatters print none of those fields, and the access line is logged on every
    request (the walk is a few microseconds of each).
    """
    import logging

    logging._srcfile = None
