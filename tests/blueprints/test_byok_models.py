"""The BYOK model list is kept briefly per upstream and key: polling does not hammer it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bench.upstream import ScriptedUpstream
from providers.byok_models import BYOK_MODELS
from providers.byok_models import ModelListCache
from providers.errors import UpstreamUnavailable
from providers.settings import UpstreamSettings
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import settings_for

MODELS = "/api/proxy/llm/v1/models"
KEY = "sk-user-own-key-0123456789abcdef"


def listings(upstream: ScriptedUpstream) -> int:
    return sum(1 for r in upstream.requests if r.method == "GET" and r.path.endswith("/models"))


async def test_polling_the_byok_model_list_asks_the_upstream_once(
    upstream: ScriptedUpstream,
    make_app: AppFactory,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(upstream, byok={"allow_private_addresses": True})
    byok = {"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": upstream.base_url}
    async with make_app(settings) as app:
        client = app.test_client()
        for _ in range(5):
            response = await client.get(MODELS, headers=auth(token, **byok))
            assert response.status_code == 200
            assert [m["id"] for m in (await response.get_json())["data"]] == [MODEL]
        assert listings(upstream) == 1
        other = {**byok, "X-BYOK-API-Key": KEY + "-other"}  # another key: its own list
        assert (await client.get(MODELS, headers=auth(token, **other))).status_code == 200
        assert listings(upstream) == 2
    kept = [key for key in BYOK_MODELS.cache_keys() if key[1] == upstream.base_url]
    assert len(kept) == 2
    assert not any(KEY in part for key in kept for part in key), "the key is never kept"
    assert KEY not in caplog.text


class Listing:
    """A stand-in upstream that counts its listings and may fail."""

    def __init__(self, secret: str, fail: int = 0, ttl_s: float = 60.0) -> None:
        self.settings = UpstreamSettings(
            name="byok",
            kind="openai",
            base_url="https://api.example.com/v1",
            models_cache_ttl_s=ttl_s,
        )
        self.secret = secret
        self.calls = 0
        self._fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def list_models(self) -> list[str]:
        self.calls += 1
        await self.gate.wait()
        if self.calls <= self._fail:
            raise UpstreamUnavailable("upstream byok is unreachable (ClientConnectorError)")
        return ["m1", "m2"]


async def test_a_failure_is_not_kept_and_a_fresh_list_expires() -> None:
    now = [0.0]
    cache = ModelListCache(clock=lambda: now[0])
    upstream: Any = Listing(KEY, fail=1, ttl_s=60.0)
    with pytest.raises(UpstreamUnavailable):
        await cache.models(upstream)
    assert await cache.models(upstream) == ["m1", "m2"]
    assert await cache.models(upstream) == ["m1", "m2"]
    assert upstream.calls == 2
    now[0] = 61.0
    assert await cache.models(upstream) == ["m1", "m2"]
    assert upstream.calls == 3


async def test_concurrent_misses_share_one_fetch_and_the_cache_is_bounded() -> None:
    cache = ModelListCache(max_entries=2)
    upstream: Any = Listing(KEY)
    upstream.gate.clear()
    waiting = [asyncio.create_task(cache.models(upstream)) for _ in range(5)]
    await asyncio.sleep(0)
    upstream.gate.set()
    assert await asyncio.gather(*waiting) == [["m1", "m2"]] * 5
    assert upstream.calls == 1
    for n in range(3):
        await cache.models(Listing(f"{KEY}-{n}"))  # type: ignore[arg-type]
    assert len(cache) == 2
