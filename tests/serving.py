"""The service under a real hypercorn on loopback, for tests that need a real server.

Graceful shutdown can only be tested where hypercorn's own signal handling runs, and the
API fuzz wants real HTTP. The service reads a TOML written here (the embedded model off,
a known JWT secret, the ledger in a file of the test's temporary directory); hypercorn's
output goes to ``hypercorn.log`` there for post-mortems. Stopped by its own pid.
``supervised=True`` runs ``storywriter serve`` (hypercorn's workers under
``quart_app.supervisor``) instead of hypercorn's own command.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import asynccontextmanager
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from quart_app.auth import mint_token
from tests.conftest import FRONTEND_CHAT
from tests.conftest import SECRET
from tests.conftest import chat_body

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and lists are valid TOML


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """Write ``sections`` (tables and arrays of tables) as TOML."""
    lines: list[str] = []
    for name, values in sections.items():
        if isinstance(values, list):
            for item in values:
                lines.append(f"[[{name}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
        else:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Served:
    """A running hypercorn master."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        """What hypercorn and the service wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def port(self) -> int:
        """The port the service listens on."""
        return int(self.base_url.rsplit(":", 1)[1])


@contextmanager
def hypercorn_service(
    tmp_path: Path,
    service: dict[str, Any],
    *,
    graceful_timeout_s: float = 10.0,
    workers: int = 1,
    start_timeout_s: float = 60.0,
    supervised: bool = False,
    hypercorn_extra: dict[str, Any] | None = None,
) -> Iterator[Served]:
    """Start ``hypercorn "quart_app:create_app()"`` with ``service`` as its configuration.

    ``hypercorn_extra`` adds settings to hypercorn's TOML (``max_requests``, for example).
    """
    port = free_port()
    config = write_config(tmp_path / "service.toml", service)
    hyper = tmp_path / "hypercorn.toml"
    hyper.write_text(
        f'bind = ["{HOST}:{port}"]\nworkers = {workers}\nworker_class = "asyncio"\n'
        f'errorlog = "-"\ngraceful_timeout = {graceful_timeout_s}\n'
        + "".join(f"{k} = {_toml_value(v)}\n" for k, v in (hypercorn_extra or {}).items()),
        encoding="utf-8",
    )
    if supervised:
        argv = [sys.executable, "-m", "quart_app", "serve", "--config", str(hyper)]
    else:
        argv = [sys.executable, "-m", "hypercorn", "-c", str(hyper), "quart_app:create_app()"]
    log_path = tmp_path / "hypercorn.log"
    env = {**os.environ, "STORYWRITER_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://{HOST}:{port}", log_path)
    try:
        _wait_until_live(served, start_timeout_s)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=graceful_timeout_s + 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_live(served: Served, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"hypercorn exited at startup:\n{served.log()}")
        try:
            with urllib.request.urlopen(f"{served.base_url}/livez", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"hypercorn did not start within {timeout_s} s:\n{served.log()}")


async def stream_and_act(
    served: Served, request_id: str, at_second_frame: Callable[[], Awaitable[None]]
) -> list[bytes]:
    """Stream a completion, run ``at_second_frame`` once it flows, read it to the end.

    Returns:
        The payloads of the stream's events (``data: `` removed), the last one included.
    """
    headers = {
        "Authorization": f"Bearer {mint_token(SECRET.encode(), 'alice')}",
        "X-Request-Id": request_id,
    }
    payloads: list[bytes] = []
    buffer = b""
    acted = False
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            served.base_url + FRONTEND_CHAT, json=chat_body(max_tokens=500), headers=headers
        ) as response,
    ):
        assert response.status == 200
        async with asyncio.timeout(30):
            async for data in response.content.iter_any():
                buffer += data
                *events, buffer = buffer.split(b"\n\n")
                payloads.extend(e.removeprefix(b"data: ") for e in events)
                if not acted and len(payloads) >= 2:
                    acted = True
                    await at_second_frame()
    assert acted
    return payloads


@asynccontextmanager
async def served(app: Quart) -> AsyncIterator[str]:
    """Run the app under a real hypercorn on loopback."""
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown.wait))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(base + "/api/proxy/llm/v1/status") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 10)
