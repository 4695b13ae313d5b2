"""The pool of configured upstreams: routing by model, slots, failover and busy status.

A request leases a slot on the least-loaded upstream serving its model and keeps it until
its stream closes (pydantic-ai's ``concurrency.py``). If that upstream refuses or fails
before the first byte, the next one serving the model is tried (``FallbackModel``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from coordination.slots.fair_queue import take_slot
from coordination.slots.rules import SlotHold
from coordination.slots.rules import Slots
from providers.errors import ModelNotFound
from providers.errors import PoolSaturated
from providers.errors import ProviderError
from providers.errors import UpstreamError
from providers.upstream import Upstream

__all__ = ["Lease", "PoolMember", "ProviderPool"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(eq=False)
class PoolMember:
    """An upstream with its slot counter."""

    upstream: Upstream
    slots: Slots

    @property
    def load(self) -> float:  # noqa: D102
        return self.slots.in_use / self.slots.capacity


class Lease:
    """A held slot (or none, for BYOK upstreams); ``release`` is idempotent."""

    __slots__ = ("_hold", "_slots", "upstream")

    def __init__(
        self, upstream: Upstream, slots: Slots | None = None, hold: SlotHold | None = None
    ) -> None:
        self.upstream = upstream
        self._slots = slots
        self._hold = hold

    def release(self) -> None:
        """Give the slot back; safe to call on every ending, any number of times."""
        slots, self._slots = self._slots, None
        if slots is not None and self._hold is not None:
            slots.release(self._hold)

    def __del__(self) -> None:
        # Safety net: a response body that was never iterated still returns its slot.
        self.release()


class ProviderPool:
    """All configured upstreams behind one interface."""

    def __init__(
        self,
        members: list[PoolMember],
        default_model: str | None = None,
        queue_wait_s: float = 0.0,
    ) -> None:
        self.members = members
        self._default_model = default_model
        #: How long a request waits in the fair queue for a slot (0: busy answers at once).
        self.queue_wait_s = queue_wait_s

    async def default_model(self) -> str:
        """The configured default, else the first model of the first upstream."""
        if self._default_model:
            return self._default_model
        for member in self.members:
            try:
                models = await member.upstream.list_models()
            except ProviderError:
                continue
            if models:
                return models[0]
        raise ModelNotFound("no model is configured and no upstream lists one")

    async def candidates(self, model: str) -> list[PoolMember]:
        """Members serving ``model``, least loaded first."""
        found: list[PoolMember] = []
        unreachable: ProviderError | None = None
        for member in self.members:
            try:
                models = await member.upstream.list_models()
            except ProviderError as error:
                unreachable = error
                continue
            if model in models:
                found.append(member)
        if not found:
            if unreachable is not None:
                raise unreachable
            raise ModelNotFound(
                f"model '{model}' is not served here; GET /api/proxy/llm/v1/models lists them"
            )
        return sorted(found, key=lambda m: m.load)

    async def acquire(self, members: list[PoolMember], model: str, user: str = "") -> Lease:
        """Lease a slot for ``user`` on the first member that gives one fairly, or answer busy."""
        taken = await take_slot(members, user, self.queue_wait_s)
        if taken is None:
            raise PoolSaturated(f"every provider serving '{model}' is busy; try again shortly")
        member, hold = taken
        return Lease(member.upstream, member.slots, hold)

    async def call(
        self,
        model: str,
        attempt: Callable[[Upstream], Awaitable[T]],
        members: list[PoolMember] | None = None,
        user: str = "",
        first: Lease | None = None,
    ) -> tuple[Lease, T]:
        """Run ``attempt`` on an upstream serving ``model`` with a slot held, failing over.

        The slot stays held on success (the caller releases the lease when its stream ends)
        and is released on failure. Only retryable failures (refused, timeout, 5xx, 429)
        move on to the next upstream; a 4xx is the caller's problem and is raised at once.
        ``members`` passes candidates the caller already routed, saving a second pass.
        Slots are taken fairly for ``user`` (``coordination.slots.rules``), waiting in the queue
        only before the first attempt and only when ``queue_wait_s`` allows it. ``first`` is
        a slot the caller took earlier: it is tried before the others.
        """
        if members is None:
            members = await self.candidates(model)
        last_error: UpstreamError | None = None
        remaining = list(members)
        while remaining or first is not None:
            if first is not None:
                lease, first = first, None
                remaining = [m for m in remaining if m.upstream is not lease.upstream]
            else:
                wait_s = self.queue_wait_s if last_error is None else 0.0
                taken = await take_slot(remaining, user, wait_s)
                if taken is None:
                    break
                member, hold = taken
                remaining.remove(member)
                lease = Lease(member.upstream, member.slots, hold)
            try:
                return lease, await attempt(lease.upstream)
            except UpstreamError as error:
                lease.release()
                if not error.retryable:
                    raise
                log.warning(
                    "upstream %s failed before the first byte: %s", lease.upstream.name, error.code
                )
                last_error = error
            except BaseException:
                lease.release()
                raise
        if last_error is not None:
            raise last_error
        raise PoolSaturated(f"every provider serving '{model}' is busy; try again shortly")

    async def list_models(self) -> list[tuple[str, str]]:
        """``(model id, provider name)`` pairs; an unreachable upstream raises its error."""
        pairs: list[tuple[str, str]] = []
        for member in self.members:
            for model in await member.upstream.list_models():
                pairs.append((model, member.upstream.name))
        return pairs

    async def status(self) -> dict[str, Any]:
        """Busy flag and per-provider slots and queue for ``/status``, from the shared state.

        ``busy`` is true exactly when a new request would have to wait: no provider has a
        free slot without a queue in front of it.
        """
        usages = await asyncio.gather(*(m.slots.usage() for m in self.members))
        return {
            "busy": bool(usages) and not any(u.free for u in usages),
            "providers": [
                {
                    "name": m.upstream.name,
                    "slots_in_use": u.in_use,
                    "slots_total": u.capacity,
                    "queue_length": u.queue_length,
                }
                for m, u in zip(self.members, usages, strict=True)
            ],
        }
