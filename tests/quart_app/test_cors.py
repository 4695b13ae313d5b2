"""CORS is an allow-list that lets the frontend send Authorization and X-BYOK-* headers."""

from __future__ import annotations

from quart import Quart

from tests.conftest import FRONTEND_CHAT
from tests.conftest import auth
from tests.conftest import chat_body

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-byok-api-key",
}


async def test_preflight_from_allowed_origin(app: Quart) -> None:
    response = await app.test_client().options(
        FRONTEND_CHAT, headers={"Origin": "http://localhost:5173", **PREFLIGHT}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "x-byok-api-key", "x-byok-base-url", "x-byok-provider"):
        assert header in allowed


async def test_preflight_from_unknown_origin_gets_no_cors(app: Quart) -> None:
    response = await app.test_client().options(
        FRONTEND_CHAT, headers={"Origin": "https://evil.example", **PREFLIGHT}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_actual_request_echoes_allowed_origin_never_star(app: Quart, token: str) -> None:
    response = await app.test_client().post(
        FRONTEND_CHAT, json=chat_body(), headers=auth(token, Origin="http://localhost:5173")
    )
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "Origin" in response.headers["Vary"]
    other = await app.test_client().get(
        "/api/proxy/llm/v1/status", headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers
