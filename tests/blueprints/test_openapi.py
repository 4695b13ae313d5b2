"""The OpenAPI document and the docs page: complete, built from the handlers' own models."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart

from blueprints.openapi import build_openapi
from blueprints.openapi import undocumented_endpoints
from blueprints.responses import CreditsResponse
from blueprints.responses import LivenessResponse
from blueprints.responses import ModelsResponse
from blueprints.responses import ReadinessResponse
from blueprints.responses import StatusResponse
from blueprints.schemas import ChatRequest
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import auth


async def _document(app: Quart) -> dict[str, Any]:
    response = await app.test_client().get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = await response.get_json()
    return document


async def test_every_http_route_is_documented(app: Quart) -> None:
    assert undocumented_endpoints(app) == []
    document = await _document(app)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            assert rule.rule in document["x-websockets"]
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <name> -> {name}
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented


async def test_completions_use_the_handlers_request_model_and_stream(app: Quart) -> None:
    document = await _document(app)
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    for path in (FRONTEND_CHAT, CHAT):
        op = document["paths"][path]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ChatRequest"}
        assert "text/event-stream" in op["responses"]["200"]["content"]
        assert op["security"] == [{"bearerAuth": []}]
        for status in ("400", "401", "402", "404", "409", "413", "429", "502", "503", "504"):
            error = op["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}
    chat = document["paths"][CHAT]["post"]["responses"]["200"]["content"]
    assert chat["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    assert set(schemas["ChatRequest"]["properties"]) == set(ChatRequest.model_fields)
    assert schemas["ChatRequest"]["required"] == ["messages"]


async def test_the_document_is_built_once_and_is_stable(app: Quart) -> None:
    assert await _document(app) == build_openapi(app)


async def test_the_docs_page_is_self_contained(app: Quart) -> None:
    response = await app.test_client().get("/docs")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    page = (await response.get_data()).decode()
    assert "<script" not in page and "https://" not in page and "http://" not in page
    document = await _document(app)
    for path in document["paths"]:
        assert path in page
    assert 'id="schema-ChatRequest"' in page


async def test_real_answers_match_their_response_models(app: Quart, token: str) -> None:
    client = app.test_client()
    status = await client.get("/api/proxy/llm/v1/status")
    StatusResponse.model_validate(await status.get_json())
    models = await client.get("/api/proxy/llm/v1/models", headers=auth(token))
    ModelsResponse.model_validate(await models.get_json())
    credits = await client.get("/api/credits/me", headers=auth(token))
    CreditsResponse.model_validate(await credits.get_json())
    LivenessResponse.model_validate(await (await client.get("/livez")).get_json())
    ReadinessResponse.model_validate(await (await client.get("/readyz")).get_json())
