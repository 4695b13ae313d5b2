"""The scenario agent's heavy half - graph, HTTP client, turns in flight - loaded on first use.

Why lazily: langgraph, langchain-core, langchain-openai and the openai SDK under them are
~55 MiB per worker and about a second of imports, and a worker that only proxies completions
(most of the traffic) never needs them. The first agent request - or the frontend's
``/stream/health`` probe, which it sends when a writer opens the chat panel - loads them in
a thread, so the event loop keeps serving meanwhile. ``[agent] preload = true`` loads them
at startup instead, for deployments that would rather pay the memory than the first turn's
wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from agent.graph import AgentGraph
    from providers.agent_models import ActiveTurns

__all__ = ["AgentLoader", "AgentRuntime"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentRuntime:
    """What every agent turn of this worker shares."""

    graph: AgentGraph
    """The compiled graph (built once, like react-agent's)."""
    client: httpx.AsyncClient
    """The openai SDK's pooled HTTP client for the agent's few calls per turn."""
    turns: ActiveTurns
    """Turns in flight, so that shutdown can end them."""


def _import_and_build() -> AgentGraph:
    """Import the agent stack and compile the graph (runs in a worker thread)."""
    import providers.agent_models  # noqa: F401  (langchain-openai, openai, httpx: warm them too)
    from agent.graph import build_graph

    return build_graph()


class AgentLoader:
    """Loads the ``AgentRuntime`` once per worker, on first use; concurrent callers share it."""

    def __init__(self, stack: AsyncExitStack) -> None:
        """Close the runtime's HTTP client with ``stack`` (the services' exit stack)."""
        self._stack = stack
        self._runtime: AgentRuntime | None = None
        self._loading: asyncio.Task[AgentRuntime] | None = None

    @property
    def loaded(self) -> AgentRuntime | None:
        """The runtime if it is loaded; never starts loading it."""
        return self._runtime

    def warm(self) -> None:
        """Start loading in the background (no-op when loaded or already loading)."""
        if self._runtime is None and self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._load())
            self._loading.add_done_callback(self._forget_failure)

    async def get(self) -> AgentRuntime:
        """The runtime, loading it first if needed.

        A caller that is cancelled while waiting does not cancel the load: the next caller
        (or the one after a failed load, which is retried) picks it up.
        """
        if self._runtime is not None:
            return self._runtime
        self.warm()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

    def _forget_failure(self, task: asyncio.Task[AgentRuntime]) -> None:
        if task.cancelled():
            self._loading = None
        elif (error := task.exception()) is not None:
            log.error("the scenario agent could not be loaded: %s", error)
            self._loading = None  # a later request tries again

    async def _load(self) -> AgentRuntime:
        started = time.perf_counter()
        graph = await asyncio.to_thread(_import_and_build)
        import httpx

        from providers.agent_models import ActiveTurns

        client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=10.0), follow_redirects=False, trust_env=False
        )
        self._stack.push_async_callback(client.aclose)
        self._runtime = AgentRuntime(graph=graph, client=client, turns=ActiveTurns(client))
        log.info("scenario agent loaded in %.2f s", time.perf_counter() - started)
        return self._runtime
