"""BYOK model lists, kept briefly per (upstream, key digest): the frontend polls ``/models``.

A BYOK upstream is built for each request (its key comes with the request), so its own
models cache dies with the request and every poll of ``/models`` called the user's
upstream. This cache keeps each list for the upstream's ``models_cache_ttl_s`` (the same
as for configured providers), keyed by kind, base URL and a digest of the key - never the
key itself: a BLAKE2b keyed with random bytes of this process, so a digest means nothing
outside this worker's memory. Concurrent misses for one upstream share one fetch; a
failure is not kept (the next poll asks again), and the cache holds a bounded number of
lists, dropping the oldest first.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable

from providers.upstream import Upstream

__all__ = ["BYOK_MODELS", "ModelListCache"]

_Key = tuple[str, str, str]
_SALT = os.urandom(32)


class ModelListCache:
    """Model lists of BYOK upstreams, shared by this worker's requests."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic):
        self._max = max_entries
        self._clock = clock
        self._lists: dict[_Key, tuple[float, list[str]]] = {}
        self._fetching: dict[_Key, asyncio.Future[list[str]]] = {}

    def __len__(self) -> int:
        return len(self._lists)

    def cache_keys(self) -> list[_Key]:
        """What the cache is keyed by (for tests and debugging: never a key in clear)."""
        return list(self._lists)

    async def models(self, upstream: Upstream) -> list[str]:
        """The upstream's model ids, from the cache while fresh.

        Raises:
            ProviderError: the upstream could not list them (not cached).
        """
        settings = upstream.settings
        key = (settings.kind, settings.base_url, _digest(upstream.secret))
        kept = self._lists.get(key)
        if kept is not None and self._clock() < kept[0]:
            return list(kept[1])
        fetching = self._fetching.get(key)
        if fetching is None:
            fetching = asyncio.ensure_future(upstream.list_models())
            self._fetching[key] = fetching
            ttl = settings.models_cache_ttl_s
            fetching.add_done_callback(lambda done: self._landed(key, done, ttl))
        # Shielded: a caller that goes away does not cancel the others' fetch.
        return list(await asyncio.shield(fetching))

    def _landed(self, key: _Key, done: asyncio.Future[list[str]], ttl_s: float) -> None:
        self._fetching.pop(key, None)
        if done.cancelled() or done.exception() is not None or ttl_s <= 0:
            return
        self._lists.pop(key, None)
        if len(self._lists) >= self._max:
            now = self._clock()
            for stale in [k for k, (until, _) in self._lists.items() if until <= now]:
                del self._lists[stale]
            while len(self._lists) >= self._max:
                del self._lists[next(iter(self._lists))]  # the oldest
        self._lists[key] = (self._clock() + ttl_s, done.result())


def _digest(secret: str | None) -> str:
    if not secret:
        return ""
    return hashlib.blake2b(secret.encode(), key=_SALT, digest_size=16).hexdigest()


#: This worker's cache (the lists are plain data: no loop or session is kept).
BYOK_MODELS = ModelListCache()
