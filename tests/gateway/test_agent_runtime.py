"""The agent stack (langgraph, langchain, openai) loads on first use, once, off the loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from gateway import agent_runtime
from gateway.agent_runtime import AgentLoader

_HEAVY = ("langgraph", "langchain_core", "langchain_openai", "openai", "httpx")

_FRESH_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from tests.conftest import settings_for

    HEAVY = {heavy!r}

    def loaded():
        from providers import tokens
        packages = {{m.split(".")[0] for m in sys.modules}} & set(HEAVY)
        return sorted(packages | {{"tokenizer:" + name for name in tokens._loaded}})

    async def main():
        from quart_app import create_app
        providers = [{{"name": "p", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}}]
        app = create_app(settings_for(None, providers=providers))
        async with app.test_app():
            print("served", loaded())
            client = app.test_client()
            health = await client.get("/api/streaming_agent/scenario/stream/health")
            print("health", health.status_code, (await health.get_json())["status"])
            services = app.extensions["storywriter.services"]
            await services.turns.loader.get()
            print("loaded", loaded(), services.turns.count)

    asyncio.run(main())
    """
)


def test_a_proxy_worker_never_imports_the_agent_stack() -> None:
    # A fresh interpreter: the suite itself has imported everything long ago.
    script = _FRESH_WORKER.format(heavy=_HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "served []", "serving must not import the agent stack or a tokenizer"
    # Its one provider does not answer: the health says so (and the stack is not loaded).
    assert lines[1] == "health 503 unhealthy"
    loaded = lines[2]
    for package in _HEAVY:
        assert package in loaded, lines
    assert "tokenizer" not in loaded, "only a call whose usage is not reported loads one"


async def test_concurrent_first_turns_share_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = 0
    real = agent_runtime._import_and_build

    def counting_build() -> object:
        nonlocal builds
        builds += 1
        return real()

    monkeypatch.setattr(agent_runtime, "_import_and_build", counting_build)
    loader = AgentLoader()
    assert loader.loaded is None
    first, second = await asyncio.gather(loader.get(), loader.get())
    assert first is second is loader.loaded
    assert await loader.get() is first
    assert builds == 1


async def test_a_failed_load_is_logged_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = agent_runtime._import_and_build
    attempts = 0

    def flaky_build() -> object:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ImportError("langgraph is broken")
        return real()

    monkeypatch.setattr(agent_runtime, "_import_and_build", flaky_build)
    loader = AgentLoader()
    with pytest.raises(ImportError):
        await loader.get()
    await asyncio.sleep(0)  # the done-callback runs
    assert "could not be loaded: langgraph is broken" in caplog.text
    graph = await loader.get()
    assert graph is loader.loaded
    assert attempts == 2


async def test_a_cancelled_waiter_does_not_cancel_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = agent_runtime._import_and_build

    def slow_build() -> object:
        time.sleep(0.2)  # a first import of the stack takes about a second
        return real()

    monkeypatch.setattr(agent_runtime, "_import_and_build", slow_build)
    loader = AgentLoader()
    waiter = asyncio.create_task(loader.get())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    graph = await loader.get()
    assert graph is loader.loaded
