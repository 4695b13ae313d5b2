"""The OpenAI-compatible LLM proxy the frontend calls (contract 1, 4-6)."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint
from quart import Response
from quart import g
from quart import request

from blueprints.schemas import ChatRequest
from blueprints.sse import sse_response
from gateway.completions import new_request_id
from gateway.proxy_call import ChatCall
from providers.byok_models import BYOK_MODELS
from providers.relay import ReasoningMode
from quart_app.facade import byok_upstream
from quart_app.facade import chat_tokens
from quart_app.facade import cheap_read
from quart_app.facade import current_caller
from quart_app.facade import get_services
from quart_app.facade import rate_limit

__all__ = ["blueprint"]

blueprint = Blueprint("proxy", __name__, url_prefix="/api/proxy/llm/v1")


@blueprint.get("/status")
@cheap_read(by="address")  # no token: flood-guarded per client address, when configured
async def get_status() -> dict[str, Any]:
    """``busy`` is true exactly when a new request would have to wait for a provider slot."""
    return await get_services().pool.status()


@blueprint.get("/models")
@cheap_read  # the frontend polls it: a user at their request limit still sees the list
async def get_models() -> dict[str, Any]:
    """The model ids the caller can use (their own upstream's with BYOK headers)."""
    current_caller()
    byok = await byok_upstream()
    if byok is not None:
        pairs = [(model, "byok") for model in await BYOK_MODELS.models(byok)]
    else:
        pairs = await get_services().pool.list_models()
    data = [{"id": model, "object": "model", "owned_by": owner} for model, owner in pairs]
    return {"object": "list", "data": data}


@blueprint.post("/frontend/chat/completions")
@rate_limit(tokens=chat_tokens)
async def post_frontend_chat() -> Response:
    """The AI buttons' fast path: reasoning deltas pass through untouched."""
    return await _chat("passthrough")


@blueprint.post("/chat/completions")
@rate_limit(tokens=chat_tokens)
async def post_chat() -> Response:
    """The "robust" endpoint: ``<think>``-wrapped or dropped reasoning, JSON when asked."""
    show = get_services().settings.server.show_thinking
    return await _chat("think" if show else "drop")


async def _chat(reasoning: ReasoningMode) -> Response:
    caller = current_caller()
    headers = request.headers  # once: each use of the ``request`` proxy is a context lookup
    chat = ChatRequest.model_validate_json(await request.get_data())
    byok = await byok_upstream()
    call = ChatCall(
        request_id=new_request_id(),  # ours: the client's id may be reused (issue 14, 6)
        correlation_id=g.request_id,
        user_id=caller.user_id,
        model=chat.model,
        messages=chat.wire_messages(),
        max_tokens=chat.max_tokens,
        params=chat.sampling_params(),
        reasoning=reasoning,
        keep_alive=chat.keep_alive,
        continuation=headers.get("X-Stream-Continuation", "").lower() != "off",
    )
    gateway = get_services().gateway
    if not chat.stream and "application/json" in headers.get("Accept", ""):
        # orjson, unsorted: ~10x cheaper than jsonify's json.dumps(sort_keys=True).
        answer = orjson.dumps(await gateway.complete(call, byok))
        return Response(answer, content_type="application/json")
    opened = await gateway.open_stream(call, byok)
    return sse_response(opened.body)
