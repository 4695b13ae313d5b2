"""The processes of a benchmark run: the scripted upstream and the service, pinned to cores.

Why a module of its own: the runner (``bench.run``) and the soak (``bench.soak``) start the
same two processes the same way, and targets.md fixes that way: one service worker pinned to
core 1 (``taskset -c 1``), the upstream and the load generator sharing core 0. The service
runs under hypercorn exactly as deployed (``--worker-class uvloop``) from files written
here: a service config pointing at the upstream with the embedded model off and a known JWT
secret (the ledger, the access log, Redis and the workers as ``StackOptions`` says), and a
hypercorn config with a listen backlog for 1,000 connections. Several stacks can share one
upstream (``shared_upstream``), so configurations compared in one run call the same one.

Only loopback addresses are used. Everything started here is stopped by its own pid.
"""

from __future__ import annotations

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
from types import TracebackType
from typing import Final

from bench.catalog import AGENT
from bench.catalog import MODELS
from quart_app.auth import mint_token

__all__ = [
    "HOST",
    "SECRET",
    "Stack",
    "StackOptions",
    "cpu_seconds",
    "free_port",
    "rss_kib",
    "worker_pids",
]

HOST: Final = "127.0.0.1"
SECRET: Final = "bench-secret-that-is-long-enough-for-hs256"
ROOT: Final = Path(__file__).resolve().parent.parent
_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on loopback (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def worker_pids(parent: int, count: int = 1, timeout_s: float = 30.0) -> list[int]:
    """The ``count`` hypercorn workers under ``parent`` (not multiprocessing's helpers)."""
    deadline = time.monotonic() + timeout_s
    found: list[int] = []
    while time.monotonic() < deadline:
        found = []
        for child in _children(parent):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(child)
        if len(found) >= count:
            return sorted(found)[:count]
        time.sleep(0.05)
    raise RuntimeError(f"{len(found)} of {count} hypercorn workers appeared under pid {parent}")


def _http_status(url: str) -> int:
    """The status ``GET url`` answers, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def _wait_until(check: str, url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until ``url`` answers anything: the process is serving HTTP."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{check} exited with status {proc.returncode} while starting")
        if _http_status(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{check} did not answer {url} within {timeout_s:g} s")


def _stop(proc: subprocess.Popen[bytes] | None, grace_s: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True, slots=True)
class StackOptions:
    """How to start the stack.

    Attributes:
        workdir: Where the config files and the logs go.
        service_core: ``taskset`` CPU list for the service ("" = not pinned).
        upstream_core: ``taskset`` CPU list for the upstream ("" = not pinned).
        workers: Hypercorn workers.
        max_concurrency: Provider slots (a slot is held for a whole stream).
        log_level: The service's root log level (its default, INFO, unless asked).
        credits: Run the credit ledger (SQLite in ``workdir``, every user rich); off by
            default, as LiteLLM was measured without a database.
        access_log: The service's own access log (on in the shipped configuration; its
            lines go to ``service.log`` in ``workdir``, as they would go to a file).
        ledger_url: The credit ledger's database ("" = SQLite in ``workdir``).
        redis_url: ``[coordination] redis_url`` ("" = in-memory, one worker's own).
        tree: The checkout whose code the service runs (another commit's worktree measures
            "before" beside "after"); its own ``.venv`` when it has one.
        app: The ASGI app hypercorn serves (``bench.ceiling`` serves a bare relay instead).
    """

    workdir: Path
    service_core: str = "1"
    upstream_core: str = "0"
    workers: int = 1
    max_concurrency: int = 2048
    log_level: str = "INFO"
    credits: bool = False
    access_log: bool = False
    ledger_url: str = ""
    redis_url: str = ""
    tree: Path = ROOT
    app: str = "quart_app:create_app()"


@dataclass
class Stack:
    """The scripted upstream and the service, started together and stopped together."""

    options: StackOptions
    upstream_port: int = 0
    service_port: int = 0
    upstream: subprocess.Popen[bytes] | None = None
    service: subprocess.Popen[bytes] | None = None
    service_pid: int = 0
    """The hypercorn worker's pid (the process that serves requests; the first of several)."""
    service_pids: list[int] = field(default_factory=list)
    """Every hypercorn worker's pid."""
    shared_upstream: Stack | None = None
    """Another stack whose upstream this one's service calls (one upstream for every
    configuration of a run, so they are compared against the same one)."""
    token: str = field(default_factory=lambda: mint_token(SECRET.encode(), "bench", 86400))

    @property
    def upstream_base(self) -> str:
        """The upstream's OpenAI base URL."""
        return f"http://{HOST}:{self.upstream_port}/v1"

    @property
    def service_root(self) -> str:
        """The service's root URL."""
        return f"http://{HOST}:{self.service_port}"

    def _pinned(self, core: str, command: list[str]) -> list[str]:
        return ["taskset", "-c", core, *command] if core else command

    def write_configs(self) -> tuple[Path, Path]:
        """Write the service's TOML config and hypercorn's; return their paths."""
        opts = self.options
        opts.workdir.mkdir(parents=True, exist_ok=True)
        models = ", ".join(f'"{m}"' for m in MODELS)
        ledger = opts.ledger_url or f"sqlite:///{opts.workdir.resolve() / 'credits.db'}"
        coordination = f'[coordination]\nredis_url = "{opts.redis_url}"' if opts.redis_url else ""
        config = opts.workdir / "service.toml"
        config.write_text(
            f"""# Written by bench/stack.py for a benchmark run.
[server]
default_model = "{AGENT}"
log_level = "{opts.log_level}"
access_log = {"true" if opts.access_log else "false"}  # the app's own (hypercorn's is off)

[auth]
jwt_secret = "{SECRET}"

[embedded]
enabled = false

[credits]
enabled = {"true" if opts.credits else "false"}
database_url = "{ledger}"
welcome_credits = 1000000000000

[limits]
# On with limits no benchmark reaches: their bookkeeping is measured but never refuses.
requests_per_minute = 100_000_000
concurrent_requests = 100_000
tokens_per_minute = 1_000_000_000_000

[[providers]]
name = "bench"
kind = "openai-compatible"
base_url = "{self.upstream_base}"
models = [{models}]
max_concurrency = {opts.max_concurrency}
first_byte_timeout_s = 30
chunk_timeout_s = 30
{coordination}
"""
        )
        hypercorn = opts.workdir / "hypercorn.toml"
        hypercorn.write_text(
            f"""# Written by bench/stack.py: as hypercorn.toml (whose own access log is off too: the
# service writes its access lines itself when [server] access_log is on).
bind = ["{HOST}:{self.service_port}"]
workers = {opts.workers}
worker_class = "uvloop"
errorlog = "-"
backlog = 4096
graceful_timeout = 5
keep_alive_timeout = 75
"""
        )
        return config, hypercorn

    def start(self) -> Stack:
        """Start the upstream, then the service, and wait until both answer."""
        opts = self.options
        if self.shared_upstream is not None:
            self.upstream_port = self.shared_upstream.upstream_port
            self.upstream = self.shared_upstream.upstream
        else:
            self.upstream_port = free_port()
        self.service_port = free_port()
        config, hypercorn = self.write_configs()
        env = {**os.environ, "STORYWRITER_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        env.pop("STORYWRITER_JWT_SECRET", None)
        if opts.workers > 1:
            # Several workers share their metrics through files, as README's deployment does.
            shared = opts.workdir / "metrics"
            shared.mkdir(exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        if self.shared_upstream is None:
            self._start_upstream(opts)
        service_log = (opts.workdir / "service.log").open("wb")
        python = opts.tree / ".venv" / "bin" / "python"
        self.service = subprocess.Popen(
            self._pinned(
                opts.service_core,
                [
                    str(python) if python.exists() else sys.executable,
                    "-m",
                    "hypercorn",
                    "-c",
                    str(hypercorn),
                    opts.app,
                ],
            ),
            cwd=opts.tree,
            env=env,
            stdout=service_log,
            stderr=subprocess.STDOUT,
        )
        # Generous: on a busy machine the first start imports everything without .pyc files.
        _wait_until(
            "the service", f"{self.service_root}/api/proxy/llm/v1/status", self.service, 180
        )
        self.service_pids = worker_pids(self.service.pid, opts.workers)
        self.service_pid = self.service_pids[0]
        return self

    def _start_upstream(self, opts: StackOptions) -> None:
        upstream_log = (opts.workdir / "upstream.log").open("wb")
        self.upstream = subprocess.Popen(
            self._pinned(
                opts.upstream_core,
                [
                    sys.executable,
                    "-m",
                    "bench.catalog",
                    "--uvloop",
                    "--port",
                    str(self.upstream_port),
                ],
            ),
            cwd=ROOT,
            stdout=upstream_log,
            stderr=subprocess.STDOUT,
        )
        _wait_until("the upstream", f"http://{HOST}:{self.upstream_port}/health", self.upstream, 30)

    def stop(self) -> None:
        """Stop the service, then the upstream (SIGTERM, then SIGKILL after a grace period)."""
        _stop(self.service)
        if self.shared_upstream is None:
            _stop(self.upstream)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def has_route(self, path: str) -> bool:
        """Whether the service answers 200 to ``GET path`` (e.g. the agent's health)."""
        return _http_status(f"{self.service_root}{path}") == 200
