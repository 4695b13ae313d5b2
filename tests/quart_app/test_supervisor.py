"""``storywriter serve`` keeps serving when a worker dies (real SIGKILLs, real processes).

Hypercorn's own master stops every worker when one exits with an error; the supervisor
replaces the dead one and leaves the others alone. Worker processes are found as the
master's ``spawn`` children in ``/proc``; which one serves a stream, by the sockets it holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from typing import TypeVar

import aiohttp
import pytest

from bench.stack import cpu_seconds
from bench.workers_cluster import connections_served
from quart_app.supervisor import BACKOFF_FIRST_S
from quart_app.supervisor import BACKOFF_MAX_S
from quart_app.supervisor import restart_delay
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.serving import Served
from tests.serving import hypercorn_service
from tests.serving import stream_and_act

STATUS = "/api/proxy/llm/v1/status"
T = TypeVar("T")


def _service(upstream: ScriptedUpstream, tmp_path: Path) -> dict[str, Any]:
    return {
        "server": {"shutdown_grace_s": 8.0, "log_format": "json"},
        "auth": {"jwt_secret": SECRET},
        "embedded": {"enabled": False},
        "credits": {"database_url": f"sqlite:///{tmp_path / 'credits.db'}"},
        "providers": [{"name": "scripted", "base_url": upstream.base_url, "models": [MODEL]}],
    }


def _supervised(
    tmp_path: Path, upstream: ScriptedUpstream, workers: int, **hypercorn_extra: Any
) -> AbstractContextManager[Served]:
    """``storywriter serve`` with ``workers`` workers and the scripted upstream."""
    return hypercorn_service(
        tmp_path,
        _service(upstream, tmp_path),
        workers=workers,
        supervised=True,
        hypercorn_extra=hypercorn_extra,
    )


async def _started(served: Served, count: int) -> set[int]:
    """The pids of the master's ``count`` workers, once that many run."""
    return await _until(
        lambda: w if len(w := _workers(served.process.pid)) == count else None,
        30,
        f"{count} worker(s)",
    )


def _workers(master: int) -> set[int]:
    """Live worker processes of ``master`` (its spawn children, not the resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == master and state != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


async def _until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.02)
    return value


def _events(served: Served) -> list[dict[str, Any]]:
    """The supervisor's JSON log lines so far."""
    lines = (line for line in served.log().splitlines() if line.startswith("{"))
    records = (json.loads(line) for line in lines)
    return [r for r in records if r.get("logger") == "storywriter.supervisor"]


def _completed(payloads: list[bytes]) -> bool:
    return payloads[-1] == b"[DONE]" and all(b'"error"' not in p for p in payloads)


async def _status(served: Served, timeout_s: float = 30.0) -> int:
    """GET /status on a new connection (so the kernel may hand it to any worker)."""
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.get(served.base_url + STATUS) as response,
    ):
        return response.status


async def _probe_until(served: Served, stop: asyncio.Event) -> list[int]:
    """Statuses of back-to-back new requests until ``stop`` (0 when a request failed)."""
    statuses = []
    while not stop.is_set():
        try:
            statuses.append(await _status(served, timeout_s=10))
        except aiohttp.ClientError:
            statuses.append(0)
        await asyncio.sleep(0.05)
    return statuses


async def _exit_code(served: Served) -> int:
    return await asyncio.to_thread(served.process.wait, 30)


def test_restarts_back_off_exponentially_up_to_a_cap() -> None:
    delays = [restart_delay(n) for n in range(12)]
    assert delays[:5] == [
        0.0,
        BACKOFF_FIRST_S,
        2 * BACKOFF_FIRST_S,
        4 * BACKOFF_FIRST_S,
        8 * BACKOFF_FIRST_S,
    ]
    assert max(delays) == BACKOFF_MAX_S == delays[-1] == restart_delay(10_000)
    assert delays == sorted(delays)


@pytest.mark.slow
async def test_a_killed_worker_is_replaced_while_the_others_keep_streaming(
    tmp_path: Path, upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.script = Script(tokens=60, delay_s=0.05)  # 3 s
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics))
    with _supervised(tmp_path, upstream, workers=2) as served:
        master = served.process.pid
        before = await _started(served, 2)
        live_gauges = {pid: metrics / f"gauge_livesum_{pid}.db" for pid in before}
        await _until(
            lambda: all(p.exists() for p in live_gauges.values()) or None, 30, "both apps up"
        )
        stop_probing = asyncio.Event()
        probes: list[asyncio.Task[list[int]]] = []
        replaced: list[asyncio.Task[float]] = []

        async def kill_the_other_worker() -> None:
            serving = {pid for pid in before if connections_served(pid, served.port)}
            assert len(serving) == 1, "the stream's connection is held by one worker"
            (victim,) = before - serving
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()

            async def replacement() -> float:
                await _until(lambda: (_workers(master) - before) or None, 2.0, "a replacement")
                return time.monotonic() - killed_at

            replaced.append(asyncio.create_task(replacement()))
            probes.append(asyncio.create_task(_probe_until(served, stop_probing)))

        payloads = await stream_and_act(served, "bystander", kill_the_other_worker)
        replaced_after_s = await replaced[0]
        await _started(served, 2)
        stop_probing.set()
        statuses = await probes[0]

        assert _completed(payloads), "the stream on the other worker was not disturbed"
        assert [path.exists() for path in live_gauges.values()].count(True) == 1, (
            "the dead worker's live gauges are gone, the other's stay"
        )
        assert replaced_after_s < 2.0
        assert len(statuses) >= 5 and set(statuses) == {200}, statuses
        (exit_event,) = [e for e in _events(served) if e["event"] == "worker_exit"]
        assert exit_event["exitcode"] == -signal.SIGKILL
        assert "killed by SIGKILL" in exit_event["msg"]

        # SIGTERM still drains: a stream in flight finishes, then the master exits 0.
        upstream.script = Script(tokens=40, delay_s=0.025)  # 1 s, inside the 8 s grace

        async def sigterm() -> None:
            os.kill(master, signal.SIGTERM)

        payloads = await stream_and_act(served, "drained", sigterm)
        assert await _exit_code(served) == 0, served.log()
    assert _completed(payloads)
    events = [e["event"] for e in _events(served)]
    assert events.count("supervisor_stopping") == 1 and events[-1] == "supervisor_stop"
    assert served.log().count('"event":"drain"') == 2, "both workers drained"


@pytest.mark.slow
async def test_a_worker_that_cannot_start_is_backed_off_and_comes_back(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    with _supervised(tmp_path, upstream, workers=1) as served:
        master = served.process.pid
        (first,) = await _started(served, 1)
        os.kill(first, signal.SIGKILL)
        # One worker and it is dead: the socket stays open, so this waits for the next one.
        assert await _status(served) == 200
        (second,) = _workers(master)
        assert second != first

        config = tmp_path / "service.toml"
        good = config.read_text()
        config.write_text("[server\n")  # every new worker now fails in create_app()
        os.kill(master, signal.SIGHUP)
        await _until(
            lambda: any(e["event"] == "reload_refused" for e in _events(served)) or None,
            10,
            "the refused reload in the log",
        )
        assert _workers(master) == {second} and await _status(served) == 200

        cpu_before = cpu_seconds(master)
        os.kill(second, signal.SIGKILL)
        started = len([e for e in _events(served) if e["event"] == "worker_start"])
        exits = await _until(
            lambda: (
                e
                if len(e := [x for x in _events(served) if x["event"] == "worker_exit"]) >= 4
                else None
            ),
            30,
            "two failed starts after the kill",
        )
        cpu_used = cpu_seconds(master) - cpu_before
        config.write_text(good)
        assert await _status(served) == 200, "the next start, with a good configuration, serves"

    failing = exits[1:]  # the kill of `second`, then two workers that failed in create_app
    delays = [e["restart_in_s"] for e in failing]
    assert delays[1] == 2 * delays[0] and delays[2] == 2 * delays[1], delays
    assert [e["exitcode"] for e in failing] == [-signal.SIGKILL, 1, 1]
    assert all(e["level"] == "ERROR" and "failed to start" in e["msg"] for e in failing[1:])
    events = _events(served)
    starts = [e for e in events if e["event"] == "worker_start"][started:]
    for exit_event, start in zip(failing, starts, strict=False):
        assert _seconds(start["ts"]) - _seconds(exit_event["ts"]) >= exit_event["restart_in_s"]
    assert cpu_used < 1.0, f"the master used {cpu_used:.2f} s of CPU while workers crashed"


def _seconds(ts: str) -> float:
    return time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:-1])


@pytest.mark.slow
async def test_sighup_replaces_every_worker_and_lets_streams_finish(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.script = Script(tokens=40, delay_s=0.05)  # 2 s
    with _supervised(tmp_path, upstream, workers=2) as served:
        master = served.process.pid
        old = await _started(served, 2)

        async def sighup() -> None:
            os.kill(master, signal.SIGHUP)

        payloads = await stream_and_act(served, "reload", sighup)
        await _until(
            lambda: w if len(w := _workers(master)) == 2 and not w & old else None,
            15,
            "two new workers and no old one",
        )
        assert await _status(served) == 200
    assert _completed(payloads), "the stream on the old worker finished"
    events = [e["event"] for e in _events(served)]
    assert events.count("reload") == 1 and events.count("worker_exit") == 0


@pytest.mark.slow
async def test_a_worker_retired_by_max_requests_is_replaced(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    with _supervised(
        tmp_path, upstream, workers=1, max_requests=4, max_requests_jitter=0
    ) as served:
        statuses = [await _status(served) for _ in range(8)]
        exits = [e for e in _events(served) if e["event"] == "worker_exit"]
    assert set(statuses) == {200}
    assert exits and exits[0]["exitcode"] == 0
