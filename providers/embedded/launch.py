"""How a worker starts the embedded model server, waits for it, and reports a failure.

:mod:`providers.embedded.handle` calls :func:`spawn_server` when no live server exists. The
server is detached (its own session, re-parented to init), so it outlives the worker that
started it; a failed start stops it again and raises one :class:`EmbeddedModelError` whose
message says why, with the tail of the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from providers.embedded.attach import POLL_S
from providers.embedded.attach import healthy
from providers.embedded.attach import server_alive
from providers.embedded.protocol import ERROR_MARKER
from providers.embedded.protocol import EXIT_LOCKED
from providers.embedded.protocol import RuntimeFiles
from providers.embedded.protocol import ServerConfig
from providers.embedded.protocol import read_state
from providers.embedded.settings import SETTINGS_HINT
from providers.embedded.settings import EmbeddedModelError

__all__ = ["spawn_server", "startup_error", "terminate"]

# Imports providers.embedded.server without running providers/embedded/__init__.py, which
# pulls in the worker side (pydantic settings, asyncio spawning) the model process does not
# need: a bare package module whose __path__ is this directory. With -P, the working
# directory is not put on sys.path.
_PACKAGE = __name__.rpartition(".")[0]
_BOOTSTRAP = f"""
import sys, types
package = types.ModuleType({_PACKAGE!r})
package.__path__ = [{str(Path(__file__).parent)!r}]
sys.modules[{_PACKAGE!r}] = package
from {_PACKAGE}.server import main
sys.exit(main(sys.argv[1:]))
"""
_TERM_GRACE_S = 3.0
_LAUNCH_GRACE_S = 10.0
_TAIL_LINES = 12


def _log_tail(log: Path) -> str:
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 8192))
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # llama.cpp echoes bytes of a corrupt file: keep the error one printable line per line.
    lines = ["".join(c if c.isprintable() else "?" for c in line) for line in text.splitlines()]
    return "\n".join(f"  {line}" for line in lines[-_TAIL_LINES:])


def _reason(tail: str, model_path: str, fallback: str) -> str:
    # xllamacpp only raises "Failed to init server"; llama.cpp's own lines say why.
    if "unknown model architecture" in tail:
        return f"unsupported model architecture in {model_path}"
    if "failed to load model" in tail:
        return f"could not load {model_path} (corrupt or not a GGUF model file?)"
    for line in reversed(tail.splitlines()):
        if ERROR_MARKER in line:
            return line.split(ERROR_MARKER, 1)[1].strip()
    return fallback


async def startup_error(
    files: RuntimeFiles, config: ServerConfig, fallback: str
) -> EmbeddedModelError:
    """Build the error for a failed start from what the server logged, if anything."""
    tail = await asyncio.to_thread(_log_tail, files.log)
    reason = _reason(tail, config.model_path, fallback)
    log_tail = f"last lines of {files.log}:\n{tail}" if tail else ""
    return EmbeddedModelError(f"embedded model: {reason}; {SETTINGS_HINT}", log_tail)


async def terminate(pid: int, files: RuntimeFiles) -> None:
    """Stop a server this worker spawned: SIGTERM, then SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE_S), (signal.SIGKILL, _TERM_GRACE_S)):
        # Only signal while it still holds its lock, so a recycled pid is never hit.
        if not await asyncio.to_thread(server_alive, files):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _ in range(int(grace / POLL_S)):
            if not await asyncio.to_thread(server_alive, files):
                break
            await asyncio.sleep(POLL_S)
    state = await asyncio.to_thread(read_state, files.state)
    if state is not None and state.get("pid") == pid:
        await asyncio.to_thread(files.state.unlink, missing_ok=True)


def _launch(config: ServerConfig, log: Path, timeout_s: float) -> tuple[int | None, bytes]:
    # The stdlib's Popen, not asyncio's subprocess API: uvloop ignores close_fds, and the
    # server would inherit the worker's listening socket and a copy of the pipe read here.
    with contextlib.suppress(FileNotFoundError):
        log.replace(log.with_suffix(".log.1"))
    # O_APPEND, so the server can truncate the log when it grows too big.
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        launcher = subprocess.Popen(
            (sys.executable, "-P", "-c", _BOOTSTRAP, config.to_json()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_fd,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    with launcher:
        try:
            # Returns once the server has forked (after at most 5 s waiting for its lock).
            out, _ = launcher.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            launcher.kill()
            return None, b""
    return launcher.returncode, out


async def spawn_server(
    config: ServerConfig, files: RuntimeFiles, deadline: float, timeout_s: float
) -> dict[str, Any]:
    """Start a detached model server and wait until it listens and answers ``/health``.

    Returns:
        The server's state.

    Raises:
        EmbeddedModelError: It failed or did not start by ``deadline``; it is then stopped.
    """
    loop = asyncio.get_running_loop()
    launch_timeout = max(0.0, deadline - loop.time()) + _LAUNCH_GRACE_S
    launch = asyncio.ensure_future(asyncio.to_thread(_launch, config, files.log, launch_timeout))
    try:
        code, out = await asyncio.shield(launch)
    except asyncio.CancelledError:
        # The launch goes on in its thread: let it finish, then stop the server it started
        # before our locks are released, so the next worker does not race it.
        with contextlib.suppress(OSError):
            code, out = await launch
            if code == 0 and out.strip().isdigit():
                os.kill(int(out), signal.SIGTERM)
        raise
    except OSError as exc:
        raise EmbeddedModelError(f"embedded model: cannot run {sys.executable}: {exc}") from None
    pid = int(out) if code == 0 and out.strip().isdigit() else None
    if pid is None and code != EXIT_LOCKED:
        fallback = f"the model server launcher failed (exit code {code})"
        if code is None:
            fallback = "the model server launcher hung"
        raise await startup_error(files, config, fallback)
    # EXIT_LOCKED: a server for these settings is already starting (the worker that spawned
    # it was cancelled); wait for that one rather than fail.
    try:
        while True:
            state = await asyncio.to_thread(read_state, files.state)
            if (
                state is not None
                and pid in (None, state.get("pid"))
                and await healthy(str(state.get("base_url")))
            ):
                return state
            if not await asyncio.to_thread(server_alive, files):
                raise await startup_error(files, config, "the model server exited during startup")
            if loop.time() > deadline:
                if pid is not None:
                    await terminate(pid, files)
                raise await startup_error(
                    files, config, f"the model server did not start within {timeout_s:g} s"
                )
            await asyncio.sleep(POLL_S)
    except asyncio.CancelledError:
        # Nobody will attach to it: it would stop once loaded, but stop it loading now
        # (synchronously, a non-blocking check, so a second cancellation cannot skip it).
        if pid is not None and server_alive(files):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        raise
