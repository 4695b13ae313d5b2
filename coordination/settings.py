"""The ``[limits]`` and ``[coordination]`` settings, owned by the coordination layer.

``quart_app.config`` nests them in ``Settings`` (as it does ``[embedded]``); this package takes
them as constructor arguments and never reads the environment. The defaults never bother a
single writer - 120 requests and a million tokens a minute, 8 at once - and keep the
frontend's immediate 409 when the pool is full (``queue_wait_s = 0``). Without ``redis_url``
everything is counted in the worker's own memory: zero configuration, exact for one worker.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

__all__ = ["READS_PER_REQUEST", "CoordinationSettings", "LimitsSettings"]

_PREFIX = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


#: ``reads_per_minute`` when unset: a multiple of the request budget.
READS_PER_REQUEST = 10


class LimitsSettings(BaseModel):
    """``[limits]``: per-user rate limits (0 turns one off) and fair sharing of pool slots."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int = Field(default=120, ge=0)
    """Requests (HTTP requests and WebSocket messages) a user may start per minute; a leaky
    bucket, so a burst of this many is fine and then one every ``60 / n`` seconds."""
    concurrent_requests: int = Field(default=8, ge=0)
    """Requests of one user in flight at once (a stream counts until it ends)."""
    tokens_per_minute: int = Field(default=1_000_000, ge=0)
    """Tokens a user may use per minute: prompt + ``max_tokens`` are charged at admission
    and corrected to the real usage when the call settles."""
    reads_per_minute: int | None = Field(default=None, ge=0)
    """Cheap, cached reads (``GET /models``) a user may make per minute. They neither spend
    nor are refused by ``requests_per_minute`` - the frontend polls the model list, and a
    user at their request limit must still see it - and have this separate, generous
    bucket against floods instead. Default: 10 x ``requests_per_minute``; 0 turns it off."""
    address_reads_per_minute: int = Field(default=0, ge=0)
    """``GET /status`` polls per client address per minute (``/status`` needs no token, so
    no user). 0, the default, is off: behind a reverse proxy every client has the proxy's
    address (the service reads no forwarded headers), so one bucket would be shared by
    all users' frontends. Set it when clients reach the service directly."""
    max_user_share: float = Field(default=1.0, gt=0, le=1)
    """Largest share of one provider's slots one user may hold: at most
    ``ceil(capacity * share)`` (at least 1). Independently of it, while another user is
    waiting for (or was just refused) a slot there, nobody may take a provider's last free
    slot if they already hold one, so no single user can hold every slot."""
    fair_window_s: float = Field(default=30.0, gt=0)
    """How long a user refused for lack of a slot counts as waiting for the rule above."""
    queue_wait_s: float = Field(default=0.0, ge=0, le=600)
    """How long a request that finds no free slot waits for one, in a queue served
    round-robin across users. 0 answers 409 at once (the frontend's "AI busy" modal)."""
    queue_max: int = Field(default=32, ge=1)
    """Requests that may wait per provider; more are answered 409 at once."""

    @property
    def reads_quota(self) -> int:
        """``reads_per_minute``, or its default from ``requests_per_minute``."""
        if self.reads_per_minute is not None:
            return self.reads_per_minute
        return READS_PER_REQUEST * self.requests_per_minute


class CoordinationSettings(BaseModel):
    """``[coordination]``: where limits, slots and the busy status live (memory or Redis)."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str | None = None
    """``redis://host:6379/0`` shares rate limits, pool slots and the busy status between
    workers and hosts. Unset: each worker counts in its own memory (the log says so when
    hypercorn runs several workers)."""
    on_redis_error: Literal["fail", "local"] = "fail"
    """When Redis is down or slow: ``fail`` answers 503 ``COORDINATION_UNAVAILABLE`` at
    once; ``local`` falls back to per-worker limits (logged once) until Redis is back."""
    redis_timeout_s: float = Field(default=0.25, gt=0, le=10)
    """Bound on every Redis call, so Redis trouble never hangs a request."""
    retry_interval_s: float = Field(default=1.0, gt=0, le=60)
    """After a Redis failure, how long requests skip Redis before it is tried again."""
    lease_ttl_s: float = Field(default=15.0, ge=1, le=3600)
    """A held slot or in-flight entry expires this long after its worker stops renewing it
    (renewed every third of it), so a killed worker never leaks one."""
    key_prefix: str = "storywriter"
    """Prefix of every Redis key (several deployments can share one Redis)."""

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError("key_prefix: 1-64 characters from A-Z a-z 0-9 . _ : -")
        return value
