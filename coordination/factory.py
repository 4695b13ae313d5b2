"""Choose where limits and slots live - this worker's memory or Redis - from the settings.

Memory is the zero-configuration default and exact for one worker; with several hypercorn
workers it says so at startup, because then every limit and every provider's capacity is
counted once per worker. With ``redis_url`` everything is shared through one client whose
retries are off and whose sockets time out like the guard, plus one lease-renewal task.
The service starts even when Redis is down (the guard answers 503 or falls back), so a
Redis restart never takes the service with it.

The pool turns redis-py's maintenance notifications off. They are on by default with RESP3
(redis-py 8) and, while on, the pool skips its check that a pooled connection was not
closed by the server, so after a Redis restart every pooled connection failed its next
command (redis/redis-py#4128). With the check, a stale connection is replaced silently
when it is taken from the pool; the guard's one retry covers a close it could not see yet.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from coordination.guard import RedisGuard
from coordination.leases import LeaseKeeper
from coordination.limits.admission import RateLimits
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import LimitPolicy
from coordination.limits.shared import RedisRateLimiter
from coordination.lua import SCRIPTS
from coordination.settings import CoordinationSettings
from coordination.settings import LimitsSettings
from coordination.slots.host import HostSlots
from coordination.slots.local import LocalSlots
from coordination.slots.rules import Slots
from coordination.slots.shared import RedisSlots
from coordination.workers import worker_count

__all__ = ["PER_WORKER_WARNING", "Coordination", "open_coordination"]

log = logging.getLogger("coordination")
_MAX_CONNECTIONS = 64
_WARM_CONNECTIONS = 8
_WARM_UP_S = 2.0
PER_WORKER_WARNING = (
    "rate limits and slots are per worker process; set [coordination] redis_url to share them"
)


@dataclass(eq=False)
class Coordination:
    """The limits and the slot factory of one worker."""

    limits: RateLimits
    make_slots: Callable[[str, int], Slots]
    shared: bool
    keeper: LeaseKeeper | None = None

    def slots(
        self, provider: str, capacity: int, *, per_host: bool = False, lock_dir: Path | None = None
    ) -> Slots:
        """The slots of one provider; ``per_host`` for an upstream each host runs itself.

        Without Redis, a per-host upstream's slots are also file locks in ``lock_dir``, so the
        host's workers together never send it more than ``capacity`` requests.
        """
        slots = self.make_slots(
            f"{provider}@{socket.gethostname()}" if per_host else provider, capacity
        )
        if per_host and lock_dir is not None and isinstance(slots, LocalSlots):
            return HostSlots(slots, lock_dir)
        return slots


def policy_of(limits: LimitsSettings) -> LimitPolicy:
    """The quotas of ``[limits]``."""
    return LimitPolicy(
        requests_per_minute=limits.requests_per_minute,
        concurrent_requests=limits.concurrent_requests,
        tokens_per_minute=limits.tokens_per_minute,
        reads_per_minute=limits.reads_quota,
        address_reads_per_minute=limits.address_reads_per_minute,
    )


async def open_coordination(
    limits: LimitsSettings, settings: CoordinationSettings, stack: AsyncExitStack
) -> Coordination:
    """Build the worker's coordination; ``stack`` stops its tasks and client at shutdown."""
    policy = policy_of(limits)
    if settings.redis_url is None:
        workers = worker_count()
        if workers is None or workers > 1:
            log.warning(PER_WORKER_WARNING)

        def local_slots(name: str, capacity: int) -> Slots:
            return LocalSlots(
                capacity,
                max_user_share=limits.max_user_share,
                fair_window_s=limits.fair_window_s,
                queue_max=limits.queue_max,
            )

        return Coordination(RateLimits(policy, LocalRateLimiter(policy)), local_slots, False)

    timeout = settings.redis_timeout_s
    # A bounded pool (a burst waits for a warm connection instead of opening hundreds) and
    # no retries: every call must fit in ``redis_timeout_s`` (the guard retries a call
    # once on a fresh connection). Without maintenance notifications the pool checks each
    # connection it hands out and replaces one the server closed (module docstring).
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=_MAX_CONNECTIONS,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    redis = Redis(connection_pool=pool)
    stack.push_async_callback(redis.aclose)
    stack.push_async_callback(pool.disconnect)
    where = _describe(redis)
    guard = RedisGuard(
        mode=settings.on_redis_error,
        timeout_s=timeout,
        retry_interval_s=settings.retry_interval_s,
        where=where,
    )
    keeper = LeaseKeeper(redis, guard, settings.lease_ttl_s, settings.key_prefix)
    keeper.start()
    stack.push_async_callback(keeper.aclose)
    stack.push_async_callback(guard.drain)
    workers = _fallback_workers(settings)
    if await _warm_up(redis):
        log.info("rate limits and pool slots are shared through Redis at %s", where)
    else:
        log.error("Redis at %s does not answer at startup: requests get on_redis_error", where)

    def shared_slots(name: str, capacity: int) -> Slots:
        return RedisSlots(
            redis=redis,
            guard=guard,
            keeper=keeper,
            prefix=settings.key_prefix,
            name=name,
            capacity=capacity,
            max_user_share=limits.max_user_share,
            fair_window_s=limits.fair_window_s,
            queue_max=limits.queue_max,
            lease_ttl_s=settings.lease_ttl_s,
            workers=workers,
        )

    limiter = RedisRateLimiter(
        redis=redis,
        guard=guard,
        keeper=keeper,
        prefix=settings.key_prefix,
        policy=policy,
        lease_ttl_s=settings.lease_ttl_s,
        workers=workers,
    )
    return Coordination(RateLimits(policy, limiter), shared_slots, True, keeper)


def _fallback_workers(settings: CoordinationSettings) -> int:
    """How many workers share the limits when each falls back to its own memory."""
    workers = worker_count()
    if workers is None:
        if settings.on_redis_error == "local":
            log.warning(
                "cannot tell how many workers hypercorn runs: while Redis is down, each "
                "worker's fallback admits up to the whole of every limit"
            )
        return 1
    return workers


async def _warm_up(redis: Redis) -> bool:
    """Load the scripts (no NOSCRIPT round trip later) and open a few connections.

    A restart empties Redis's script cache too; redis-py's ``Script`` answers NOSCRIPT
    by loading the script and calling it again, so a restart costs one round trip more.
    This worker's marker is set by its first decision (``LeaseKeeper.call``), not here:
    a slow start must not open the guard.
    """
    try:
        async with asyncio.timeout(_WARM_UP_S):
            async with redis.pipeline(transaction=False) as pipe:
                for script in SCRIPTS:
                    pipe.script_load(script)
                await pipe.execute()
            await asyncio.gather(*(redis.ping() for _ in range(_WARM_CONNECTIONS)))
    except (RedisError, OSError, TimeoutError):
        return False
    return True


def _describe(redis: Redis) -> str:
    """``host:port/db`` of the client, never its password."""
    kwargs = redis.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
