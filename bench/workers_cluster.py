"""Hypercorn instances with several workers sharing one Redis, for the workers load test.

Why a module of its own: ``bench.loadtest_workers`` needs what ``bench.stack`` does not
give - several workers per instance, two instances on one Redis (two "hosts"), the worker
processes of an instance (to SIGKILL one) and how many sockets each holds (to pick one that
serves streams). Everything binds to loopback; every process is stopped by its own pid.

Hypercorn (0.18) stops *all* workers of an instance when one dies with a non-zero exit code
(``hypercorn/run.py``: ``_join_exited``), gracefully: in-flight requests on the other
workers finish, new ones are no longer accepted. Deployments run it under a supervisor that
restarts it; this module only reports that the master exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Final

__all__ = ["HOST", "SECRET", "Instance", "free_port", "write_config"]

HOST: Final = "127.0.0.1"
SECRET: Final = "loadtest-secret-that-is-long-enough-for-hs256"
ROOT: Final = Path(__file__).resolve().parent.parent
STATUS: Final = "/api/proxy/llm/v1/status"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    path: Path,
    *,
    upstream_base: str,
    model: str,
    capacity: int,
    redis_url: str,
    prefix: str,
    lease_ttl_s: float,
    limits: dict[str, int],
) -> Path:
    """The service's TOML: one scripted provider, Redis coordination, credits off."""
    lines = [
        "[server]",
        'log_level = "WARNING"',
        "[auth]",
        f"jwt_secret = {json.dumps(SECRET)}",
        "[embedded]",
        "enabled = false",
        "[credits]",
        "enabled = false",
        "[limits]",
        *(f"{key} = {value}" for key, value in limits.items()),
        "[coordination]",
        f"redis_url = {json.dumps(redis_url)}",
        f"key_prefix = {json.dumps(prefix)}",
        f"lease_ttl_s = {lease_ttl_s}",
        # Eight workers, the load generator and the upstream share two cores here: a Redis
        # answer can wait for a CPU longer than the default 0.25 s, which would be a 503 by
        # design. The invariants checked here do not depend on that bound, so it is wider.
        "redis_timeout_s = 1.0",
        "[[providers]]",
        'name = "scripted"',
        f"base_url = {json.dumps(upstream_base)}",
        f"models = [{json.dumps(model)}]",
        f"max_concurrency = {capacity}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Instance:
    """One ``hypercorn --workers N`` process tree."""

    name: str
    workers: int
    config: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Launch; returns at once (see :meth:`wait_ready`)."""
        env = dict(os.environ, STORYWRITER_CONFIG=str(self.config), PYTHONUNBUFFERED="1")
        command = [
            sys.executable,
            "-m",
            "hypercorn",
            "--workers",
            str(self.workers),
            "--bind",
            f"{HOST}:{self.port}",
            "--graceful-timeout",
            "20",
            "--backlog",
            "1024",
            "quart_app:create_app()",
        ]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        log.close()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every worker answers ``/status`` (so all have built their services)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup:\n{self.log_tail()}")
            if len(self.worker_pids()) >= self.workers and self._answers(tries=2 * self.workers):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout_s} s:\n{self.log_tail()}")

    def _answers(self, tries: int) -> bool:
        for _ in range(tries):
            try:
                with urllib.request.urlopen(self.base + STATUS, timeout=2) as response:
                    if response.status != 200:
                        return False
            except (urllib.error.URLError, OSError):
                return False
        return True

    def worker_pids(self) -> list[int]:
        """The worker processes (spawn children running hypercorn's worker)."""
        if self.proc is None:
            return []
        found = []
        for pid in _children(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(pid)
        return found

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker: no cleanup runs in it, its Redis leases are left behind."""
        os.kill(pid, signal.SIGKILL)

    def exited(self) -> bool:
        """The master has exited."""
        return self.proc is None or self.proc.poll() is not None

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL the tree after a grace period."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the instance's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def connections_served(pid: int, port: int) -> int:
    """Established client connections a worker accepted on ``port`` (Linux ``/proc``).

    Workers share the listening socket; an accepted connection belongs to the worker that
    accepted it, so its socket inode is among that worker's file descriptors.
    """
    inodes = set()
    try:
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count
