"""Every row of contract 5.1, bad input, and the service still serving afterwards."""

from __future__ import annotations

import time

import jwt
import orjson
import pytest
from quart import Quart
from quart.testing.connections import TestHTTPConnection as HTTPConnection

from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream


async def assert_error(response_status: int, body: str | bytes, status: int, code: str) -> None:
    assert response_status == status, body
    parsed = orjson.loads(body)
    assert parsed["code"] == code
    assert isinstance(parsed["error"], str) and parsed["error"]
    assert "detail" in parsed


async def assert_still_serving(app: Quart, upstream: ScriptedUpstream, token: str) -> None:
    upstream.script = Script(tokens=3)
    status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    assert status == 200
    assert frames(writes)[-1] == b"[DONE]"
    assert (await app.test_client().get("/api/proxy/llm/v1/status")).status_code == 200
    assert not (await (await app.test_client().get("/api/proxy/llm/v1/status")).get_json())["busy"]


def _token(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_TOKEN"),
        ({"Authorization": "Basic abc"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer "}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.jwt"}, "INVALID_TOKEN"),
        (
            {
                "Authorization": "Bearer "
                + _token({"sub": "bob"}, "wrong-secret-wrong-secret-wrong-se")
            },
            "INVALID_TOKEN",
        ),
        (
            {"Authorization": "Bearer " + _token({"sub": "bob", "exp": int(time.time()) - 3600})},
            "TOKEN_EXPIRED",
        ),
        ({"Authorization": "Bearer " + _token({"role": "x"})}, "INVALID_TOKEN"),
        (
            {"Authorization": "Bearer " + jwt.encode({"sub": "bob"}, "", algorithm="none")},
            "INVALID_TOKEN",
        ),
    ],
)
@pytest.mark.parametrize("path", [CHAT, FRONTEND_CHAT, "/api/proxy/llm/v1/models"])
async def test_auth_failures_are_401(
    app: Quart, headers: dict[str, str], code: str, path: str
) -> None:
    client = app.test_client()
    if path.endswith("models"):
        response = await client.get(path, headers=headers)
    else:
        response = await client.post(path, json=chat_body(), headers=headers)
    await assert_error(response.status_code, await response.get_data(), 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_identity_claim_is_accepted(app: Quart, upstream: ScriptedUpstream) -> None:
    token = _token({"identity": "carol", "exp": int(time.time()) + 60})
    status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    assert status == 200


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"messages": "hi"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b"[]", "Input should be"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "messages.0"),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', "messages.0.role"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 3}', "temperature"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e30}', "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "x"}], "top_p": -1}', "top_p"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "presence_penalty": 9}',
            "presence_penalty",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "maybe"}', "stream"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    app: Quart, upstream: ScriptedUpstream, token: str, raw: bytes, field: str
) -> None:
    response = await app.test_client().post(CHAT, data=raw, headers=auth(token))
    body = await response.get_data()
    await assert_error(response.status_code, body, 400, "INVALID_REQUEST")
    assert field in orjson.loads(body)["error"] + str(orjson.loads(body)["detail"])
    await assert_still_serving(app, upstream, token)


async def test_ten_megabyte_body_is_413(app: Quart, upstream: ScriptedUpstream, token: str) -> None:
    big = orjson.dumps(chat_body(messages=[{"role": "user", "content": "x" * 10_000_000}]))
    response = await app.test_client().post(CHAT, data=big, headers=auth(token))
    await assert_error(response.status_code, await response.get_data(), 413, "PAYLOAD_TOO_LARGE")
    await assert_still_serving(app, upstream, token)


async def test_a_body_that_never_ends_is_408(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    app.config["BODY_TIMEOUT"] = 0.2
    started = time.monotonic()
    async with app.test_client().request(CHAT, method="POST", headers=auth(token)) as conn:
        await conn.send(b'{"model": "')  # and nothing more, never complete
        body = await conn.receive()
    assert isinstance(conn, HTTPConnection)  # Quart's protocol omits the status
    await assert_error(conn.status_code or 0, body, 408, "REQUEST_TIMEOUT")
    assert time.monotonic() - started < 2.0
    await assert_still_serving(app, upstream, token)


async def test_unknown_model_is_404(app: Quart, upstream: ScriptedUpstream, token: str) -> None:
    response = await app.test_client().post(CHAT, json=chat_body(model="nope"), headers=auth(token))
    await assert_error(response.status_code, await response.get_data(), 404, "MODEL_NOT_FOUND")
    assert len([r for r in upstream.requests if r.path.endswith("completions")]) == 0


async def test_garbage_headers_do_not_break_anything(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    headers = auth(
        token,
        **{
            "X-Request-Id": "\u00e9\u00e9 bad id",
            "Accept": "%%%garbage",
            "X-BYOK-Provider": "",
            "Content-Type": "text/plain; charset=nope",
        },
    )
    status, response_headers, _ = await stream(app, FRONTEND_CHAT, chat_body(), headers)
    assert status == 200
    assert response_headers["X-Request-Id"] != "\u00e9\u00e9 bad id"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("http_status", status=500), 502, "UPSTREAM_ERROR"),
        (Fault("http_status", status=503), 502, "UPSTREAM_ERROR"),
        (Fault("http_status", status=400, message="context too long"), 400, "UPSTREAM_REJECTED"),
        (Fault("http_status", status=401), 502, "UPSTREAM_AUTH_FAILED"),
        (Fault("http_status", status=429), 429, "UPSTREAM_RATE_LIMITED"),
        (Fault("reset_before_response"), 502, "UPSTREAM_UNAVAILABLE"),
        (Fault("wrong_content_type"), 502, "UPSTREAM_PROTOCOL_ERROR"),
    ],
)
@pytest.mark.parametrize("path", [CHAT, FRONTEND_CHAT])
async def test_upstream_failures_before_first_byte_are_real_statuses(
    app: Quart,
    upstream: ScriptedUpstream,
    token: str,
    fault: Fault,
    status: int,
    code: str,
    path: str,
) -> None:
    upstream.script = Script(fault=fault)
    response = await app.test_client().post(path, json=chat_body(), headers=auth(token))
    body = await response.get_data()
    await assert_error(response.status_code, body, status, code)
    if status == 429:
        assert response.headers["Retry-After"]
    if fault.status == 400:
        assert "context too long" in orjson.loads(body)["error"]
    await assert_still_serving(app, upstream, token)


async def test_connection_refused_is_502(make_app: AppFactory, token: str) -> None:
    providers = [{"name": "dead", "base_url": "http://127.0.0.1:9/v1", "models": [MODEL]}]
    async with make_app(settings_for(None, providers=providers)) as app:
        response = await app.test_client().post(CHAT, json=chat_body(), headers=auth(token))
        await assert_error(
            response.status_code,
            await response.get_data(as_text=False),
            502,
            "UPSTREAM_UNAVAILABLE",
        )
        assert not (await (await app.test_client().get("/api/proxy/llm/v1/status")).get_json())[
            "busy"
        ]


async def test_slow_first_byte_is_504(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    providers = [
        {
            "name": "slow",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "first_byte_timeout_s": 0.2,
        }
    ]
    upstream.script = Script(fault=Fault("slow_first_byte"), first_byte_delay_s=2.0)
    async with make_app(settings_for(upstream, providers=providers)) as app:
        started = time.monotonic()
        response = await app.test_client().post(CHAT, json=chat_body(), headers=auth(token))
        await assert_error(response.status_code, await response.get_data(), 504, "UPSTREAM_TIMEOUT")
        assert time.monotonic() - started < 1.5
        await assert_still_serving(app, upstream, token)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("reset_mid_stream", after_chunks=3), "upstream_unavailable"),
        (Fault("malformed_json", after_chunks=3), "upstream_protocol_error"),
        (Fault("stall", after_chunks=3), "upstream_timeout"),
    ],
)
async def test_failures_after_streaming_began_end_with_one_error_frame(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str, fault: Fault, kind: str
) -> None:
    providers = [
        {
            "name": "scripted",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "chunk_timeout_s": 0.3,
        }
    ]
    upstream.script = Script(tokens=10, fault=fault)
    async with make_app(settings_for(upstream, providers=providers)) as app:
        status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200
        payloads = frames(writes)
        errors = [orjson.loads(p) for p in payloads if b'"error"' in p]
        assert len(errors) == 1 and payloads[-1] == orjson.dumps(errors[0])
        assert errors[0]["error"]["type"] == kind
        assert errors[0]["error"]["message"]
        assert b"[DONE]" not in payloads
        for payload in payloads:
            orjson.loads(payload)  # never invalid JSON
        await assert_still_serving(app, upstream, token)


async def test_busy_pool_answers_409_with_retry_after(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    providers = [
        {"name": "one", "base_url": upstream.base_url, "models": [MODEL], "max_concurrency": 1}
    ]
    upstream.script = Script(tokens=50, delay_s=0.02)
    async with make_app(settings_for(upstream, providers=providers)) as app:
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as first:
            await first.send(orjson.dumps(chat_body()))
            await first.send_complete()
            assert (await first.receive()).startswith(b"data: ")
            status = await (await client.get("/api/proxy/llm/v1/status")).get_json()
            assert status["busy"] is True
            assert status["providers"][0]["slots_in_use"] == 1
            response = await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
            await assert_error(response.status_code, await response.get_data(), 409, "AI_BUSY")
            assert response.headers["Retry-After"].isdigit()
            await first.disconnect()
        await assert_still_serving(app, upstream, token)
