"""The scenario agent's heavy half - its compiled graph - loaded on first use.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.graph import AgentGraph

__all__ = ["AgentLoader"]

log = logging.getLogger(__name__)


def _import_and_build() -> AgentGraph:
    """Import the agent stack and compile the graph (runs in a worker thread)."""
    import agent.stream  # noqa: F401  (the producer the turns run)
    import providers.chat_models  # noqa: F401  (langchain-openai, openai, httpx: warm them too)
    from agent.graph import build_graph

    return build_graph()


class AgentLoader:
    """Loads the agent's graph once per worker, on first use; concurrent callers share it."""

    def __init__(self) -> None:
        self._graph: AgentGraph | None = None
        self._loading: asyncio.Task[AgentGraph] | None = None

    @property
    def loaded(self) -> AgentGraph | None:
        """The graph if it is loaded; never starts loading it."""
        return self._graph

    def warm(self) -> None:
        """Start loading in the background (no-op when loaded or already loading)."""
        if self._graph is None and self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._load())
            self._loading.add_done_callback(self._forget_failure)

    async def get(self) -> AgentGraph:
        """The graph, loading it first if needed.

        A caller that is cancelled while waiting does not cancel the load: the next caller
        (or the one after a failed load, which is retried) picks it up.
        """
        if self._graph is not None:
            return self._graph
        self.warm()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

    def _forget_failure(self, task: asyncio.Task[AgentGraph]) -> None:
        if task.cancelled():
            self._loading = None
        elif (error := task.exception()) is not None:
            log.error("the scenario agent could not be loaded: %s", error)
            self._loading = None  # a later request tries again

    async def _load(self) -> AgentGraph:
        started = time.perf_counter()
        graph = await asyncio.to_thread(_import_and_build)
        self._graph = graph
        log.info("scenario agent loaded in %.2f s", time.perf_counter() - started)
        return graph
