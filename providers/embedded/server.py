"""The process that runs the embedded model: one per host and model, shared by all workers.

Loading the weights in each of N hypercorn workers would cost N copies of the model and N
llama.cpp thread pools fighting over the cores (offline.md 2). Workers start or find this
small supervisor instead (:mod:`providers.embedded.protocol` describes how): it owns
xllamacpp's OpenAI-compatible HTTP server and lives as long as some worker is attached.

The worker starts it as ``python -P -c BOOTSTRAP CONFIG_JSON``, where the bootstrap imports
this module without running ``providers/__init__.py``, so the model process never loads
the langchain stack; this module needs only the standard library and xllamacpp.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from providers.embedded.protocol import ERROR_MARKER
from providers.embedded.protocol import EXIT_LOCKED
from providers.embedded.protocol import RuntimeFiles
from providers.embedded.protocol import ServerConfig
from providers.embedded.protocol import open_lock_file
from providers.embedded.protocol import read_state
from providers.embedded.protocol import try_flock

__all__ = ["main"]

#: Once the log passes this size it is truncated; llama.cpp logs ~1 KB per request.
_LOG_MAX_BYTES = 8 * 1024 * 1024
#: Longest wait for llama.cpp's own shutdown; workers send SIGKILL after 3 s.
_SHUTDOWN_GRACE_S = 2
#: How long the launcher waits for a previous server with the same key to finish exiting.
_LOCK_WAIT_S = 5.0


def _log(message: str) -> None:
    sys.stderr.write(f"[embedded_server {os.getpid()}] {message}\n")
    sys.stderr.flush()


def _write_state(path: Path, state: dict[str, Any]) -> None:
    # Written to a private temporary file and renamed, so readers never see half a file
    # and the API key is never readable by other users.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(state, out)
    os.replace(tmp, path)


def _remove_own_state(path: Path) -> None:
    if (read_state(path) or {}).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _build_params(config: ServerConfig, api_key: str) -> Any:
    # Imported here: a 34 MB native library that only this process needs.
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = config.model_path
    params.model_alias = {config.model_id}
    params.n_parallel = config.n_parallel
    params.n_ctx = config.n_ctx
    params.cpuparams.n_threads = config.n_threads
    params.cpuparams_batch.n_threads = config.n_threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [api_key]
    params.endpoint_metrics = True
    params.ui = False
    # CPU only and the context is explicit: fitting to device memory would only read the
    # weights a second time (~150 ms of startup) and could shrink n_ctx behind our back.
    params.fit_params = False
    return params


def _ready(address: str, api_key: str) -> bool:
    # xllamacpp returns before its task loop runs, and destroying it before then hangs for
    # good (the stop request is lost): /slots is answered by that loop, so one answer
    # proves it runs (and that the HTTP server does).
    url = urlsplit(address)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=1.0)
        with contextlib.suppress(OSError), contextlib.closing(conn):
            conn.request("GET", "/slots", headers={"Authorization": f"Bearer {api_key}"})
            if conn.getresponse().status == 200:
                return True
        time.sleep(0.02)
    return False


def _serve(config: ServerConfig, files: RuntimeFiles) -> int:
    stopping: list[int] = []

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    clients_fd = open_lock_file(files.clients)
    # A random key per server: llama.cpp binds to loopback, but any local user or browser
    # page could reach it; the key only lives in the private state file.
    api_key = secrets.token_urlsafe(24)
    import xllamacpp

    try:
        server = xllamacpp.Server(_build_params(config, api_key))
    except Exception as exc:
        # xllamacpp only says "Failed to init server"; the worker reads llama.cpp's lines.
        _log(f"{ERROR_MARKER}the model server failed to start: {exc}")
        return 2
    try:
        if not _ready(server.listening_address, api_key):
            _log(f"{ERROR_MARKER}the model server does not answer /slots")
            return 2
        base_url = f"{server.listening_address}/v1"
        state = {"pid": os.getpid(), "base_url": base_url, "api_key": api_key}
        _write_state(files.state, state | dataclasses.asdict(config))
        _log(f"serving {config.model_id} at {base_url}")
        while not stopping:
            time.sleep(config.idle_check_s)
            # Workers take their shared lock before reading the state, and we keep this
            # exclusive lock until we exit: nobody can attach to a server that is leaving.
            if try_flock(clients_fd, exclusive=True):
                _log("no client left; stopping")
                break
            if os.fstat(2).st_size > _LOG_MAX_BYTES:
                os.ftruncate(2, 0)  # the log is opened O_APPEND: writes go to the new end
        if stopping:
            _log(f"stopping on signal {stopping[0]}")
        _remove_own_state(files.state)
    finally:
        # Leave anyway if llama.cpp's shutdown hangs (the OS frees all it holds). An alarm,
        # not a Python timer: the destructor blocks holding the GIL.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(_SHUTDOWN_GRACE_S)
        del server
    return 0


def main(argv: list[str]) -> int:
    """Take the server lock, detach and serve until no client is left.

    The launcher takes ``<key>.lock`` and then forks: the child inherits the locked file,
    so the lock is held from before the model loads until the server exits, and the
    spawning worker learns the server's pid (printed on stdout) without keeping it as a
    child process. The child is re-parented to init and never becomes a zombie of a worker.

    Args:
        argv: ``[CONFIG_JSON]``.

    Returns:
        The exit code: 0, 2 (startup failed) or :data:`EXIT_LOCKED`.
    """
    # Whoever started us may have leaked descriptors (uvloop ignores close_fds): a listening
    # socket kept open here would outlive its server, a pipe would never report EOF.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    config = ServerConfig.from_json(argv[0])
    files = RuntimeFiles.for_key(Path(config.runtime_dir), config.key)
    lock_fd = open_lock_file(files.lock)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while not try_flock(lock_fd, exclusive=True):
        if time.monotonic() > deadline:
            _log(f"another model server holds {files.lock}; not starting")
            return EXIT_LOCKED
        time.sleep(0.05)
    pid = os.fork()
    if pid:
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()
        os._exit(0)
    # stdout is the worker's pipe: point it at the log so the worker's read ends now.
    os.dup2(2, 1)
    _log(f"starting with {config.to_json()}")
    return _serve(config, files)
