"""Bring-your-own-key: per-request upstreams, the SSRF guard, and keys kept secret."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError

from providers import byok
from quart_app import create_app
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream
from tests.serving import served

KEY = "sk-user-own-key-0123456789abcdef"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:1234/v1",
        "http://localhost:11434/v1",
        "http://[::1]:8000/v1",
        "http://169.254.169.254/latest",
        "http://10.0.0.5/v1",
        "http://192.168.1.10:1234/v1",
        "http://0x7f000001/v1",
        "http://[::ffff:127.0.0.1]/v1",
        # IPv4 carried in IPv6: NAT64, IPv4-compatible, 6to4 (issue 14, point 7).
        "http://[64:ff9b::a9fe:a9fe]/latest",
        "http://[64:ff9b::127.0.0.1]:1234/v1",
        "http://[::169.254.169.254]/latest",
        "http://[2002:7f00:1::1]/v1",
    ],
)
async def test_internal_base_urls_are_refused(app: Quart, token: str, base_url: str) -> None:
    headers = auth(token, **{"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": base_url})
    response = await app.test_client().post(FRONTEND_CHAT, json=chat_body(), headers=headers)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "BYOK_BASE_URL_FORBIDDEN"
    assert KEY not in str(body)


async def test_provider_default_pointing_inside_is_refused(app: Quart, token: str) -> None:
    headers = auth(token, **{"X-BYOK-API-Key": KEY, "X-BYOK-Provider": "ollama"})
    response = await app.test_client().get("/api/proxy/llm/v1/models", headers=headers)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "BYOK_BASE_URL_FORBIDDEN"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-BYOK-API-Key": KEY, "X-BYOK-Provider": "acme"}, "BYOK_INVALID"),
        ({"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": "ftp://example.com"}, "BYOK_INVALID"),
        ({"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": "http://u:p@example.com/v1"}, "BYOK_INVALID"),
        ({"X-BYOK-API-Key": "bad key with spaces"}, "BYOK_INVALID"),
    ],
)
async def test_malformed_byok_headers_are_400(
    app: Quart, token: str, headers: dict[str, str], code: str
) -> None:
    response = await app.test_client().post(
        FRONTEND_CHAT, json=chat_body(), headers=auth(token, **headers)
    )
    assert response.status_code == 400
    assert (await response.get_json())["code"] == code


async def test_byok_upstream_used_with_users_key_and_never_logged(
    upstream: ScriptedUpstream,
    make_app: AppFactory,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream.models = ["user-model"]
    upstream.script = Script(pieces=["own", " key"])
    settings = settings_for(upstream, providers=[], byok={"allowed_networks": ["127.0.0.0/8"]})
    headers = auth(
        token,
        **{
            "X-BYOK-API-Key": KEY,
            "X-BYOK-Base-URL": upstream.base_url,
            "X-BYOK-Provider": "lmstudio",
        },
    )
    async with make_app(settings) as app:
        models = await app.test_client().get("/api/proxy/llm/v1/models", headers=headers)
        assert [m["id"] for m in (await models.get_json())["data"]] == ["user-model"]
        status, _, writes = await stream(app, CHAT, chat_body(model="user-model"), headers)
        assert status == 200
        payloads = frames(writes)
        assert content_of(payloads) == "own key"
        assert b'"credits":0' in payloads[-2], "BYOK costs no credits"
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {KEY}"

        upstream.script = Script(
            fault=Fault("http_status", status=401, message=f"Incorrect API key provided: {KEY}")
        )
        response = await app.test_client().post(
            CHAT, json=chat_body(model="user-model"), headers=headers
        )
        assert response.status_code == 502
        body = await response.get_data()
        assert KEY.encode() not in body and KEY[:8].encode() not in body
    assert KEY not in caplog.text


async def test_byok_needs_model(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    settings = settings_for(upstream, byok={"allow_private_addresses": True})
    headers = auth(token, **{"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": upstream.base_url})
    async with make_app(settings) as app:
        response = await app.test_client().post(
            FRONTEND_CHAT, json={"messages": [{"role": "user", "content": "x"}]}, headers=headers
        )
        assert response.status_code == 400
        assert "model" in (await response.get_json())["error"]


@pytest.fixture(name="defaults")
async def _defaults(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, ScriptedUpstream]]:
    """One scripted upstream per provider a bare key can go to, in the defaults table.

    The table is the only thing swapped: what is under test is which of its entries a key
    selects, for listing models and for completions alike.
    """
    async with AsyncExitStack() as stack:
        upstreams: dict[str, ScriptedUpstream] = {}
        for provider in ("openai", "github", "openrouter"):
            upstream = ScriptedUpstream(models=[f"{provider}-model"])
            upstreams[provider] = await stack.enter_async_context(upstream)
            monkeypatch.setitem(byok.BYOK_DEFAULT_BASE_URLS, provider, upstream.base_url)
        yield upstreams


@pytest.mark.parametrize(
    ("key", "provider_header", "provider"),
    [
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", None, "github"),
        ("github_pat_11ABCDEFG0123456789_abcdefghij", None, "github"),
        ("gho_0123456789abcdefghijABCDEFGHIJ012345", None, "github"),
        ("ghu_0123456789abcdefghijABCDEFGHIJ012345", None, "github"),
        ("ghs_0123456789abcdefghijABCDEFGHIJ012345", None, "github"),
        ("sk-or-v1-0123456789abcdef0123456789", None, "openrouter"),
        ("sk-proj-0123456789abcdef0123456789", None, "openai"),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "openai", "openai"),
    ],
)
async def test_a_bare_key_goes_to_its_issuer_for_models_and_completions(
    defaults: dict[str, ScriptedUpstream],
    token: str,
    key: str,
    provider_header: str | None,
    provider: str,
) -> None:
    """What StoryWriter's frontend sends: the key alone (issue 13, point 5), over real HTTP."""
    headers = auth(token, **{"X-BYOK-API-Key": key})
    if provider_header is not None:
        headers["X-BYOK-Provider"] = provider_header
    settings = settings_for(None, byok={"allowed_networks": ["127.0.0.0/8"]})
    async with (
        served(create_app(settings, freeze_heap=False)) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(base + "/api/proxy/llm/v1/models", headers=headers) as models:
            assert models.status == 200
            listed = [m["id"] for m in (await models.json())["data"]]
        assert listed == [f"{provider}-model"]
        body = chat_body(model=listed[0])
        async with session.post(base + FRONTEND_CHAT, json=body, headers=headers) as answer:
            assert answer.status == 200
            assert content_of(frames([await answer.read()])) != ""
    used = defaults[provider]
    assert [r.path for r in used.requests] == ["/v1/models", "/v1/chat/completions"]
    assert {r.headers["authorization"] for r in used.requests} == {f"Bearer {key}"}
    for other, upstream in defaults.items():
        if other != provider:
            assert upstream.requests == [], f"{other} was called for a {provider} key"


@pytest.mark.parametrize(
    "base_url",
    ["http://ⓛocalhost:5621/v1", "http://" + "a" * 64 + ".example/v1", "http://[::1/v1"],
)
async def test_a_host_that_does_not_encode_is_400_over_real_http(
    upstream: ScriptedUpstream, token: str, base_url: str
) -> None:
    """The header's bytes as a client sends them (UTF-8), read by hypercorn (issue 14, 8)."""
    headers = auth(token, **{"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": base_url})
    settings = settings_for(upstream, byok={"allowed_hosts": ["localhost"]})
    async with (
        served(create_app(settings, freeze_heap=False)) as base,
        aiohttp.ClientSession() as session,
    ):
        for method, path, body in (
            ("POST", FRONTEND_CHAT, chat_body()),
            ("GET", "/api/proxy/llm/v1/models", None),
        ):
            async with session.request(method, base + path, json=body, headers=headers) as got:
                assert got.status == 400, await got.text()
                answer = await got.json()
            assert answer["code"] == "BYOK_INVALID"
            assert "X-BYOK-Base-URL" in answer["error"]
            assert KEY not in str(answer)
    assert upstream.requests == []


async def test_a_host_that_does_not_encode_closes_a_websocket_1008(app: Quart, token: str) -> None:
    """The WebSocket handshake takes the same headers: a refusal (1008), not a crash (1011)."""
    base_url = "http://" + "a" * 64 + ".example/v1"
    headers = {"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": base_url}
    ws_path = f"/api/streaming_agent/scenario/ws?token={token}"
    async with app.test_client().websocket(ws_path, headers=headers) as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.receive()
    assert closed.value.args[0] == 1008
