"""Worker-side API of the embedded model: attach to this host's model server or start it.

A fresh clone writes stories with zero configuration because each worker calls
:func:`start_or_attach` and gets an OpenAI-compatible upstream backed by SmolLM2 (or any
GGUF). However many hypercorn workers call it, one model server runs per host and model
(:mod:`providers.embedded.protocol` describes how), and it stops by
itself once the last worker has closed its handle or died.

File operations and the spawn go through ``asyncio.to_thread`` and asyncio's subprocess
API, so the event loop never blocks, even while another worker loads the model.

.. code-block:: python

    handle = await start_or_attach(EmbeddedModelSettings())
    # POST f"{handle.base_url}/chat/completions" with model=handle.upstream_model and
    # "Authorization: Bearer {handle.api_key}", at most handle.slots at once.
    await handle.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import hashlib
import json
import os
from pathlib import Path
from types import TracebackType

from providers.embedded.attach import acquire_lock
from providers.embedded.attach import live_state
from providers.embedded.launch import spawn_server
from providers.embedded.protocol import RuntimeFiles
from providers.embedded.protocol import ServerConfig
from providers.embedded.settings import EmbeddedModelError
from providers.embedded.settings import EmbeddedModelSettings
from providers.embedded.settings import default_runtime_dir
from providers.embedded.settings import prepare_runtime_dir
from providers.embedded.settings import resolve_model_path

__all__ = ["EmbeddedHandle", "EmbeddedModelError", "EmbeddedModelSettings", "start_or_attach"]


@dataclasses.dataclass(eq=False)
class EmbeddedHandle:
    """One worker's attachment to the embedded model server.

    While the handle is open the worker holds a shared lock that keeps the server alive;
    :meth:`close` (or the worker's death) releases it.
    """

    base_url: str
    """OpenAI-compatible base URL on loopback, ending with ``/v1``."""
    model_id: str
    """The id ``/models`` lists."""
    upstream_model: str
    """The ``model`` to send upstream: llama.cpp's alias, equal to ``model_id``."""
    slots: int
    """Requests the server decodes in parallel (``n_parallel``); more wait in its queue."""
    api_key: str = dataclasses.field(repr=False)
    """Send as ``Authorization: Bearer``; the server refuses requests without it."""
    pid: int
    """The model server's process id, shared by every worker of the host."""
    _clients_fd: int | None = dataclasses.field(default=None, repr=False)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._clients_fd is None

    async def close(self) -> None:
        """Detach; the server stops shortly after its last client has detached."""
        fd, self._clients_fd = self._clients_fd, None
        if fd is not None:
            await asyncio.to_thread(_release, fd)

    async def __aenter__(self) -> EmbeddedHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _release(fd: int) -> None:
    # Unlock explicitly: a child forked by this worker would otherwise share the lock.
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _server_config(
    settings: EmbeddedModelSettings, model_path: Path, runtime_dir: Path
) -> ServerConfig:
    config = ServerConfig(
        model_path=str(model_path),
        model_id=settings.model_id,
        n_parallel=settings.n_parallel,
        n_threads=settings.n_threads,
        n_ctx=settings.n_ctx,
        runtime_dir=str(runtime_dir),
        key="",
    )
    # Another GGUF or other parameters get a server (and files) of their own.
    identity = dataclasses.asdict(config)
    for name in ("runtime_dir", "key", "idle_check_s"):
        del identity[name]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return dataclasses.replace(config, key=f"model-{digest[:16]}")


async def start_or_attach(settings: EmbeddedModelSettings) -> EmbeddedHandle:
    """Attach to the live model server for these settings, starting it if there is none.

    Concurrent calls from any number of processes end up sharing one server: they queue
    on a spawn lock, the first starts the server (detached, so it outlives the worker
    that started it) and the others find its state file. Startup failures stop the
    server and raise once; nothing is retried.

    Args:
        settings: The ``[embedded]`` settings; ``enabled`` is the caller's business.

    Returns:
        An open handle; close it when the worker stops.

    Raises:
        EmbeddedModelError: Weights missing, corrupt model, startup failure or timeout.
            ``message`` is one line; ``log_tail`` has the server's last log lines.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.startup_timeout_s
    model_path = await asyncio.to_thread(resolve_model_path, settings.model_path)
    # Absolute: the server process and every worker must name the same files.
    runtime_dir = (settings.runtime_dir or default_runtime_dir()).expanduser().absolute()
    await asyncio.to_thread(prepare_runtime_dir, runtime_dir)
    config = _server_config(settings, model_path, runtime_dir)
    files = RuntimeFiles.for_key(runtime_dir, config.key)
    # Client lock first: from then on a live server cannot decide to stop, and one we
    # spawn sees a client from its first idle check.
    clients_fd = await acquire_lock(
        files.clients,
        exclusive=False,
        deadline=deadline,
        waiting_for="the old model server to stop",
    )
    try:
        spawn_fd = await acquire_lock(
            files.spawn,
            exclusive=True,
            deadline=deadline,
            waiting_for="another worker starting the model",
        )
        try:
            state = await live_state(files, config, deadline)
            if state is None:
                state = await spawn_server(config, files, deadline, settings.startup_timeout_s)
        finally:
            os.close(spawn_fd)  # never blocks; must also run when cancelled
        return EmbeddedHandle(
            base_url=str(state["base_url"]),
            model_id=settings.model_id,
            upstream_model=str(state["model_id"]),
            slots=int(state["n_parallel"]),
            api_key=str(state["api_key"]),
            pid=int(state["pid"]),
            _clients_fd=clients_fd,
        )
    except BaseException:
        _release(clients_fd)
        raise
