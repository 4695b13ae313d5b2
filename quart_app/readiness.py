"""Readiness: can this worker serve a completion now? Providers, the ledger and Redis.

A load balancer polls readiness every few seconds from every instance, so each check is
cheap and bounded: a provider is probed with one ``GET /models`` at most every
``[server] readiness_cache_s`` (concurrent polls share one probe), the ledger with a
one-row read, Redis with ``PING``; each check gives up after ``_TIMEOUT_S``. Ready means
not draining, at least one provider up, and the ledger and Redis up when they are
configured. An upstream that answers at all (even 404 for a model list it does not have)
is up; refused, timed out, 5xx or rejected credentials is down.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal

from redis.asyncio import Redis

from providers.errors import ProviderError
from providers.errors import UpstreamHTTPError
from providers.upstream import Upstream

__all__ = ["Check", "Readiness"]

_TIMEOUT_S = 2.0
State = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's state, when it was checked, and why it is down."""

    state: State
    checked_at: float
    detail: str | None = None

    def as_dict(self, now: float) -> dict[str, Any]:
        """The JSON shape of ``/readyz`` (``ReadinessCheck``)."""
        return {
            "state": self.state,
            "detail": self.detail,
            "age_s": round(max(0.0, now - self.checked_at), 3),
        }


class _Cached:
    """A check run at most once per ``ttl_s``; concurrent callers share the run."""

    def __init__(self, run: Callable[[], Awaitable[Check]], ttl_s: float) -> None:
        self._run = run
        self._ttl = ttl_s
        self._last: Check | None = None
        self._pending: asyncio.Task[Check] | None = None

    async def get(self) -> Check:
        last = self._last
        if last is not None and time.monotonic() - last.checked_at < self._ttl:
            return last
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_task(self._refresh())
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> Check:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                check = await self._run()
        except TimeoutError:
            check = Check("down", time.monotonic(), f"no answer within {_TIMEOUT_S:g} s")
        except Exception as error:  # a check must report, never raise
            # A stable code when the error has one (LEDGER_UNAVAILABLE), else its class:
            # a driver's message may quote a URL with its password.
            code = getattr(error, "code", None)
            detail = code if isinstance(code, str) else type(error).__name__
            check = Check("down", time.monotonic(), detail)
        finally:
            self._pending = None
        self._last = check
        return check


async def _probe_upstream(upstream: Upstream) -> Check:
    try:
        await upstream.probe()
    except UpstreamHTTPError as error:
        reachable = error.upstream_status < 500 and error.upstream_status not in (401, 403)
        if reachable:
            return Check("up", time.monotonic(), f"answered {error.upstream_status}")
        return Check("down", time.monotonic(), error.code)
    except ProviderError as error:
        return Check("down", time.monotonic(), error.code)
    return Check("up", time.monotonic())


class Readiness:
    """The checks of one worker, built once its services exist."""

    def __init__(
        self,
        upstreams: list[Upstream],
        *,
        ledger_ping: Callable[[], Awaitable[object]] | None,
        redis_url: str | None,
        ttl_s: float,
    ) -> None:
        self._providers = {
            u.name: _Cached(functools.partial(_probe_upstream, u), ttl_s) for u in upstreams
        }
        self._database = self._wrap(ledger_ping, ttl_s) if ledger_ping is not None else None
        self._redis_client: Redis | None = None
        self._redis: _Cached | None = None
        if redis_url:
            self._redis_client = Redis.from_url(
                redis_url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
            )
            self._redis = self._wrap(self._redis_client.ping, ttl_s)

    @staticmethod
    def _wrap(call: Callable[[], Awaitable[object]], ttl_s: float) -> _Cached:
        async def run() -> Check:
            note = await call()
            return Check("up", time.monotonic(), note if isinstance(note, str) else None)

        return _Cached(run, ttl_s)

    async def providers(self, names: list[str]) -> dict[str, Check]:
        """The (cached) checks of the named providers, probed concurrently when stale."""
        known = [name for name in names if name in self._providers]
        checks = await asyncio.gather(*(self._providers[name].get() for name in known))
        return dict(zip(known, checks, strict=True))

    async def report(self, draining: bool) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)`` for ``/readyz``; every check runs concurrently."""
        names = list(self._providers)
        optional = [c for c in (self._database, self._redis) if c is not None]
        results = await asyncio.gather(
            *(self._providers[n].get() for n in names), *(c.get() for c in optional)
        )
        providers = dict(zip(names, results[: len(names)], strict=True))
        rest = iter(results[len(names) :])
        database = next(rest) if self._database is not None else None
        redis = next(rest) if self._redis is not None else None
        now = time.monotonic()
        ready = (
            not draining
            and any(c.state == "up" for c in providers.values())
            and all(c.state == "up" for c in (database, redis) if c is not None)
        )
        status = "draining" if draining else ("ready" if ready else "not_ready")
        body = {
            "status": status,
            "checks": {
                "providers": {name: check.as_dict(now) for name, check in providers.items()},
                "database": database.as_dict(now) if database is not None else None,
                "redis": redis.as_dict(now) if redis is not None else None,
            },
        }
        return ready, body

    async def close(self) -> None:
        """Close the Redis connection used for ``PING``."""
        if self._redis_client is not None:
            await self._redis_client.aclose()
