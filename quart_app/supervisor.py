"""``storywriter serve``: hypercorn's workers, kept running when one of them dies.

Hypercorn's own master (``hypercorn.run.run``) stops the whole instance when one worker
exits with an error: after a SIGKILL or a crash it stops the healthy siblings too (their
streams drained or cut), closes the listening socket and exits. This module is that master
with another exit policy, built from hypercorn's own pieces so the workers cannot tell the
difference: the listening sockets are created once here (``Config.create_sockets``) and
shared, each worker is a ``spawn`` child running hypercorn's worker function
(``asyncio_worker`` or ``uvloop_worker``) with the keyword arguments hypercorn passes
(``config``, ``sockets``, ``shutdown_event``), which ``quart_app.lifecycle`` and
``coordination.workers`` read. What this takes from hypercorn's internals lives in
``internals``. What changes:

- a worker that exits while the service runs is replaced at once; the socket stays open
  here, so connections arriving meanwhile wait in its backlog and the other workers never
  notice. Exit code 0 (hypercorn's ``max_requests``) is replaced the same way.
- a worker that dies within ``STEADY_S`` of its start counts as a failed start; each one in
  a row doubles the wait before the next start (0.5 s, 1 s, 2 s ... capped at 30 s), and
  the log says so, so a worker that cannot start does not burn the CPU in a loop.
- a dead worker's live gauges (open streams, WebSocket sessions) are removed from
  ``PROMETHEUS_MULTIPROC_DIR`` (``[server] metrics_multiprocess_dir``; gunicorn's
  ``child_exit`` hook does this), which a worker
  killed outright cannot do for itself.
- SIGTERM and SIGINT are what they were: every worker's shutdown event is set, each drains
  (``quart_app.lifecycle``) and the master exits once they all have (0 when all exited 0).
- SIGHUP restarts the workers the way gunicorn does: the service configuration is loaded
  first (when it does not load the log says why and nothing changes), then a new worker is
  started in every slot and the old ones drain. New code and ``STORYWRITER_CONFIG`` are
  picked up; ``hypercorn.toml`` (bind, workers) needs a restart.

Each worker has its own shutdown event (hypercorn shares one) so that one generation can
drain while the next serves. Workers ignore SIGINT and SIGHUP (started with them ignored,
as hypercorn does for SIGINT): a Ctrl+C or a closed terminal reaches the master, which
decides. Why not supervisord or circus: supervisord shares a listening socket only with
FastCGI programs, circus needs ZeroMQ and tornado and would run each worker as a
single-process hypercorn, where ``quart_app.lifecycle`` sees no shutdown event and the
graceful drain (503 ``DRAINING``, the grace period, the ``shutting_down`` frame) is lost.
``workers = 0`` and ``use_reloader`` are left to hypercorn's own ``run``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from pickle import PicklingError
from types import FrameType
from typing import Any

from hypercorn.config import Config
from hypercorn.config import Sockets
from hypercorn.typing import WorkerFunc
from prometheus_client.multiprocess import mark_process_dead

from internals import hypercorn_run
from internals import hypercorn_worker_function
from internals import hypercorn_worker_kwargs
from internals import write_hypercorn_pid_file
from quart_app.config import ConfigError
from quart_app.config import Settings

__all__ = ["BACKOFF_FIRST_S", "BACKOFF_MAX_S", "STEADY_S", "restart_delay", "serve"]

log = logging.getLogger("storywriter.supervisor")

STEADY_S = 10.0
"""A worker that lived less than this failed to start (supervisord's ``startsecs``)."""
BACKOFF_FIRST_S = 0.5
"""The wait before restarting a worker after one failed start."""
BACKOFF_MAX_S = 30.0
"""The longest wait between two starts of a worker that keeps failing."""

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HANDLED = (*_STOP_SIGNALS, signal.SIGHUP)
_WORKER_IGNORES = (signal.SIGINT, signal.SIGHUP)


def serve(config: Config, metrics_dir: Path | None = None) -> int:
    """Serve ``config.application_path`` as hypercorn would, replacing workers that die.

    Args:
        config: Hypercorn's configuration.
        metrics_dir: The workers' shared metrics directory (``[server]
            metrics_multiprocess_dir``), where a dead worker's live gauges are removed.

    Returns:
        The exit code: 0 after a graceful shutdown in which every worker exited 0.
    """
    if config.workers < 1 or config.use_reloader:
        return hypercorn_run(config)
    worker_func = hypercorn_worker_function(config.worker_class)
    if config.pid_path is not None:
        write_hypercorn_pid_file(config.pid_path)
    return _Supervisor(config, worker_func, metrics_dir).run()


def restart_delay(failed_starts: int) -> float:
    """Seconds to wait before the next start after ``failed_starts`` failed ones in a row."""
    if failed_starts < 1:
        return 0.0
    doublings = min(failed_starts - 1, 32)  # a day-long crash loop must not overflow a float
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**doublings))


@dataclass
class _Worker:
    """One worker process and the event that tells it (alone) to drain."""

    slot: int
    process: BaseProcess
    shutdown_event: Event
    started: float

    @property
    def pid(self) -> int | None:
        return self.process.pid


@dataclass
class _Slot:
    """A place for one worker: ``config.workers`` of them, each kept filled."""

    index: int
    worker: _Worker | None = None
    failed_starts: int = 0
    start_at: float = 0.0


def _forget(worker: _Worker, metrics_dir: Path | None) -> None:
    """Reap an exited worker and drop what it left in the shared metrics directory."""
    worker.process.join()
    if metrics_dir is not None:
        with contextlib.suppress(OSError):
            mark_process_dead(worker.pid, str(metrics_dir))  # type: ignore[no-untyped-call]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Supervisor:
    """The master process: a loop over worker exits, restart deadlines and signals."""

    def __init__(self, config: Config, worker_func: WorkerFunc, metrics_dir: Path | None) -> None:
        self._config = config
        self._metrics_dir = metrics_dir
        self._worker_func = worker_func
        self._ctx: SpawnContext = get_context("spawn")
        self._slots = [_Slot(index) for index in range(1, config.workers + 1)]
        self._leaving: list[_Worker] = []  # told to drain by SIGHUP; not replaced
        self._signals: deque[int] = deque()
        self._stopping = False
        self._failed_exit = False
        self._sockets: Sockets | None = None

    def run(self) -> int:
        """Start the workers and keep them running until SIGTERM or SIGINT; then drain."""
        self._sockets = self._config.create_sockets()
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in _HANDLED}
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        log.info(
            "serving %s with %d worker(s); a worker that dies is replaced",
            ", ".join(self._config.bind),
            len(self._slots),
            extra={"event": "supervisor_start", "workers": len(self._slots)},
        )
        try:
            while True:
                if not self._stopping:
                    self._start_due(time.monotonic())
                elif not self._running():
                    break
                self._wait(wake_read)
                self._handle_signals()
                self._reap()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            wake_read.close()
            wake_write.close()
            for sock in (*self._sockets.secure_sockets, *self._sockets.insecure_sockets):
                sock.close()
        log.info("all workers stopped", extra={"event": "supervisor_stop"})
        return 1 if self._failed_exit else 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only queued here; the loop (woken by the wakeup fd) acts on it.
        self._signals.append(signum)

    def _workers(self) -> list[_Worker]:
        current = [slot.worker for slot in self._slots if slot.worker is not None]
        return current + self._leaving

    def _running(self) -> bool:
        return bool(self._workers())

    def _wait(self, wake: socket.socket) -> None:
        """Sleep until a worker exits, a signal arrives or the next restart is due."""
        timeout: float | None = None
        if not self._stopping:
            due = [slot.start_at for slot in self._slots if slot.worker is None]
            if due:
                timeout = max(0.0, min(due) - time.monotonic())
        sentinels: list[Any] = [worker.process.sentinel for worker in self._workers()]
        wait([*sentinels, wake], timeout)
        try:
            while wake.recv(512):
                pass
        except BlockingIOError:
            pass

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            if signum in _STOP_SIGNALS:
                self._stop(signal.Signals(signum).name)
            elif not self._stopping:
                self._reload()

    def _stop(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.warning(
            "%s: the workers drain, then the service stops",
            reason,
            extra={"event": "supervisor_stopping", "reason": reason},
        )
        for worker in self._workers():
            worker.shutdown_event.set()

    def _reload(self) -> None:
        try:
            Settings.load()
        except ConfigError as error:
            log.error(
                "SIGHUP: the workers keep running, the configuration does not load: %s",
                error,
                extra={"event": "reload_refused"},
            )
            return
        log.warning(
            "SIGHUP: new workers start and the current ones drain",
            extra={"event": "reload"},
        )
        now = time.monotonic()
        for slot in self._slots:
            old, slot.worker = slot.worker, self._spawn(slot.index)
            slot.failed_starts, slot.start_at = 0, now
            if old is not None:
                old.shutdown_event.set()
                self._leaving.append(old)

    def _start_due(self, now: float) -> None:
        for slot in self._slots:
            if slot.worker is None and slot.start_at <= now:
                slot.worker = self._spawn(slot.index)

    def _spawn(self, index: int) -> _Worker:
        shutdown_event = self._ctx.Event()
        process = self._ctx.Process(
            target=self._worker_func,
            kwargs=hypercorn_worker_kwargs(self._config, self._sockets, shutdown_event),
        )
        process.daemon = self._config.daemon
        # The child keeps dispositions set to "ignore" across exec (hypercorn does the same).
        handlers = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _WORKER_IGNORES}
        try:
            process.start()
        except PicklingError as error:
            raise RuntimeError("hypercorn's Config cannot be pickled for the workers") from error
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        log.info(
            "worker %d started (pid %s)",
            index,
            process.pid,
            extra={"event": "worker_start", "slot": index, "pid": process.pid},
        )
        return _Worker(index, process, shutdown_event, time.monotonic())

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            worker = slot.worker
            if worker is not None and worker.process.exitcode is not None:
                _forget(worker, self._metrics_dir)
                slot.worker = None
                self._exited(slot, worker, now)
        leaving = []
        for worker in self._leaving:
            if worker.process.exitcode is None:
                leaving.append(worker)
                continue
            _forget(worker, self._metrics_dir)
            log.info(
                "worker %d of the previous generation stopped (pid %s, %s)",
                worker.slot,
                worker.pid,
                _describe_exit(worker.process.exitcode),
                extra={"event": "worker_stop", "slot": worker.slot, "pid": worker.pid},
            )
        self._leaving = leaving

    def _exited(self, slot: _Slot, worker: _Worker, now: float) -> None:
        code = worker.process.exitcode
        assert code is not None
        fields: dict[str, Any] = {
            "slot": slot.index,
            "pid": worker.pid,
            "exitcode": code,
            "lived_s": round(now - worker.started, 1),
        }
        if self._stopping:
            self._failed_exit = self._failed_exit or code != 0
            log.info(
                "worker %d stopped (pid %s, %s)",
                slot.index,
                worker.pid,
                _describe_exit(code),
                extra={"event": "worker_stop", **fields},
            )
            return
        if now - worker.started < STEADY_S:
            slot.failed_starts += 1
        else:
            slot.failed_starts = 0
        delay = restart_delay(slot.failed_starts)
        slot.start_at = now + delay
        when = f"in {delay:g} s" if delay else "now"
        why = (
            f" (it failed to start {slot.failed_starts} time(s) in a row: "
            f"each exited within {STEADY_S:g} s)"
            if delay
            else ""
        )
        log.log(
            logging.ERROR if slot.failed_starts > 1 else logging.WARNING,
            "worker %d (pid %s) exited (%s) after %.1f s; starting another %s%s",
            slot.index,
            worker.pid,
            _describe_exit(code),
            now - worker.started,
            when,
            why,
            extra={
                "event": "worker_exit",
                "restart_in_s": delay,
                "failed_starts": slot.failed_starts,
                **fields,
            },
        )
