"""The OpenAPI 3.1 document of the HTTP API, generated from the app's routes and models.

Why a small generator rather than quart-schema: the hot-path handlers validate with
``ChatRequest.model_validate_json`` themselves (one pass over the bytes, the contract's
error body), and quart-schema's docs pages load their UI from a CDN, which an offline
deployment cannot reach. So routes are walked from ``app.url_map`` and each endpoint is
described in ``ROUTE_DOCS`` with the very pydantic models its handler validates with
(``blueprints.schemas``, ``gateway.sessions``) and returns (``blueprints.responses``).
A route missing from the table still appears (``x-undocumented``), and the test suite
fails on it, so new routes get described. WebSocket routes cannot be described in OpenAPI
and are listed under ``x-websockets``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from pydantic.json_schema import models_json_schema
from quart import Quart

from blueprints.console_models import AccountQuery
from blueprints.console_models import AccountResponse
from blueprints.console_models import CancelResponse
from blueprints.console_models import ConsoleMe
from blueprints.console_models import ConsoleSnapshot
from blueprints.console_models import GrantRequest
from blueprints.console_models import GrantResponse
from blueprints.console_models import StreamsResponse
from blueprints.console_models import TopUsersQuery
from blueprints.console_models import TopUsersResponse
from blueprints.responses import AgentHealthResponse
from blueprints.responses import ChatCompletion
from blueprints.responses import CreditsResponse
from blueprints.responses import LivenessResponse
from blueprints.responses import ModelsResponse
from blueprints.responses import ReadinessResponse
from blueprints.responses import StatusResponse
from blueprints.schemas import ChatRequest
from blueprints.schemas import ErrorBody
from gateway.sessions import TurnMessage

__all__ = [
    "ROUTE_DOCS",
    "Reply",
    "RouteDoc",
    "build_openapi",
    "query_of",
    "undocumented_endpoints",
]

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
SSE = "text/event-stream"
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One response: its description and body per media type (None: any/undescribed)."""

    description: str
    content: Mapping[str, type[BaseModel] | None] = field(default_factory=dict)
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteDoc:
    """What one endpoint accepts and answers."""

    summary: str
    tags: tuple[str, ...]
    responses: Mapping[int, Reply]
    body: type[BaseModel] | None = None
    auth: bool = False
    byok: bool = False
    query: tuple[dict[str, Any], ...] = ()


def _error(description: str, *headers: str) -> Reply:
    return Reply(description, {JSON: ErrorBody}, headers)


_DRAINING = _error("DRAINING: the service is shutting down", "Retry-After")
_AUTH = _error("MISSING_TOKEN, INVALID_TOKEN or TOKEN_EXPIRED", "WWW-Authenticate")
_LIMITED = _error(
    "RATE_LIMITED (the caller's limits) or UPSTREAM_RATE_LIMITED", "Retry-After", "RateLimit-Policy"
)
_UPSTREAM = _error(
    "UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR, UPSTREAM_AUTH_FAILED or UPSTREAM_PROTOCOL_ERROR"
)
_STREAM_ERRORS: dict[int, Reply] = {
    400: _error("INVALID_REQUEST, BYOK_INVALID, BYOK_BASE_URL_FORBIDDEN or UPSTREAM_REJECTED"),
    401: _AUTH,
    402: _error("INSUFFICIENT_CREDITS (detail: needed, available)"),
    404: _error("MODEL_NOT_FOUND"),
    409: _error("AI_BUSY: no provider slot free", "Retry-After"),
    413: _error("PAYLOAD_TOO_LARGE"),
    429: _LIMITED,
    502: _UPSTREAM,
    503: _error("DRAINING or COORDINATION_UNAVAILABLE", "Retry-After"),
    504: _error("UPSTREAM_TIMEOUT"),
}
_SSE_REPLY = Reply(
    "Server-sent events: `data: <chat.completion.chunk>` frames, a final chunk with `usage` "
    "and `cost`, then `data: [DONE]`. A failure after the first frame is one "
    '`data: {"error": {"message", "type"}}` frame.',
    {SSE: None},
)
#: One event of a stream (OpenAPI 3.1 describes text/event-stream per event): its ``data``
#: is one JSON object on one line, or the final ``[DONE]``.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "pattern": r"^(\[DONE\]|\{.*\})$",
            "description": "A JSON object (a chunk, or an error frame) or `[DONE]`.",
        }
    },
}
_CHAT_TAGS = ("completions",)
_OPS_TAGS = ("operations",)
_CONSOLE_TAGS = ("console",)


def query_of(model: type[BaseModel]) -> tuple[dict[str, Any], ...]:
    """Query parameters described from the pydantic model the handler validates them with."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return tuple(
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    )


def _console(
    summary: str,
    ok: Reply,
    *,
    body: type[BaseModel] | None = None,
    query: tuple[dict[str, Any], ...] = (),
    **errors: Reply,
) -> RouteDoc:
    """An admin-only console endpoint: 401 without a valid token, 403 for a non-admin."""
    replies: dict[int, Reply] = {
        200: ok,
        401: _AUTH,
        403: _error("FORBIDDEN: the console is for admins ([console] admin_users, admin_role)"),
        429: _LIMITED,
        503: _error("DRAINING or COORDINATION_UNAVAILABLE", "Retry-After"),
    }
    replies.update({int(code.removeprefix("e")): reply for code, reply in errors.items()})
    return RouteDoc(summary, _CONSOLE_TAGS, replies, body=body, auth=True, query=query)


_INVALID = _error("INVALID_REQUEST: a query or body field is out of range")
_NO_CREDITS = _error("CREDITS_DISABLED")

ROUTE_DOCS: dict[str, RouteDoc] = {
    "proxy.get_status": RouteDoc(
        "Busy flag and provider slots",
        ("proxy",),
        {200: Reply("Slots per provider", {JSON: StatusResponse}), 503: _DRAINING},
    ),
    "proxy.get_models": RouteDoc(
        "Models the caller can use",
        ("proxy",),
        {
            200: Reply("OpenAI's model list", {JSON: ModelsResponse}),
            400: _error("BYOK_INVALID or BYOK_BASE_URL_FORBIDDEN"),
            401: _AUTH,
            404: _error("MODEL_NOT_FOUND: no upstream lists a model"),
            429: _LIMITED,
            502: _UPSTREAM,
            503: _DRAINING,
            504: _error("UPSTREAM_TIMEOUT"),
        },
        auth=True,
        byok=True,
    ),
    "proxy.post_frontend_chat": RouteDoc(
        "Streamed chat completion (the AI buttons' fast path)",
        _CHAT_TAGS,
        {200: _SSE_REPLY, **_STREAM_ERRORS},
        body=ChatRequest,
        auth=True,
        byok=True,
    ),
    "proxy.post_chat": RouteDoc(
        "Chat completion: streamed, or JSON with stream=false and Accept: application/json",
        _CHAT_TAGS,
        {
            200: Reply(
                _SSE_REPLY.description + " With `stream: false` and `Accept: application/json`: "
                "one `chat.completion` object with `usage` and `cost`.",
                {SSE: None, JSON: ChatCompletion},
            ),
            **_STREAM_ERRORS,
        },
        body=ChatRequest,
        auth=True,
        byok=True,
    ),
    "credits.get_my_credits": RouteDoc(
        "The caller's balance and recent usage",
        ("credits",),
        {
            200: Reply("Balance, holds and usage rows", {JSON: CreditsResponse}),
            400: _error("INVALID_REQUEST: limit out of range"),
            401: _AUTH,
            404: _error("CREDITS_DISABLED"),
            429: _LIMITED,
            503: _DRAINING,
        },
        auth=True,
        query=(
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
        ),
    ),
    "agent_sse.get_agent_health": RouteDoc(
        "Whether the scenario agent can answer (the chat panel's switch)",
        ("agent",),
        {
            200: Reply("healthy (state healthy or degraded)", {JSON: AgentHealthResponse}),
            503: Reply("unhealthy: no provider of the agent's model answers", {JSON: None}),
        },
    ),
    "agent_sse.post_scenario_stream": RouteDoc(
        "One scenario-agent turn, streamed (contract 8)",
        ("agent",),
        {
            200: Reply(
                "Server-sent events: `status`, `chat`, `tool_call` frames, then "
                "`status: completed` (or `status: error`). A refusal before the turn starts "
                "(auth, validation, rate limit, credits, busy, no model, unavailable) is sent "
                "here too, as a `chat` frame with the message and a `status` frame with "
                "`metadata.status: error`, `metadata.code` and `metadata.retry_after`; the "
                "error statuses below are answered only with `?errors=status`.",
                {SSE: None},
            ),
            **_STREAM_ERRORS,
        },
        body=TurnMessage,
        auth=True,
        query=(
            {
                "name": "errors",
                "in": "query",
                "required": False,
                "description": "`status`: answer refusals with their HTTP status and JSON "
                "error body instead of in band.",
                "schema": {"type": "string", "enum": ["status"]},
            },
        ),
    ),
    "probes.get_livez": RouteDoc(
        "Liveness: 200 while the process serves",
        _OPS_TAGS,
        {200: Reply("Alive", {JSON: LivenessResponse})},
    ),
    "probes.get_readyz": RouteDoc(
        "Readiness: providers, ledger and Redis; 503 while draining or when nothing can serve",
        _OPS_TAGS,
        {
            200: Reply("Ready", {JSON: ReadinessResponse}),
            503: Reply("Not ready or draining", {JSON: ReadinessResponse}),
        },
    ),
    "probes.get_metrics": RouteDoc(
        "Prometheus metrics (text exposition format)",
        _OPS_TAGS,
        {200: Reply("Metrics", {"text/plain": None}), 404: _error("metrics are disabled")},
    ),
    "console.get_console_page": RouteDoc(
        "The operator console (a static page; it asks for an admin's token)",
        _CONSOLE_TAGS,
        {200: Reply("HTML", {"text/html": None}), 503: _DRAINING},
    ),
    "console.get_console_asset": RouteDoc(
        "A script, style sheet or sample file of the console page",
        _CONSOLE_TAGS,
        {
            200: Reply("The file", {"text/javascript": None, "text/css": None, JSON: None}),
            404: _error("NOT_FOUND: no such asset"),
            503: _DRAINING,
        },
    ),
    "console.get_console_me": _console(
        "The admin and the console's settings", Reply("Admin", {JSON: ConsoleMe})
    ),
    "console.get_console_pool": _console(
        "The pool (slots, queues, readiness, TTFT, error rate) and the streams, now",
        Reply("A snapshot", {JSON: ConsoleSnapshot}),
    ),
    "console.get_console_live": _console(
        "The same snapshot pushed every [console] push_interval_s until the worker drains",
        Reply(
            "Server-sent events: `data: <snapshot>` frames (a `: keep-alive` comment when "
            "nothing changed)",
            {SSE: None},
        ),
    ),
    "console.get_console_streams": _console(
        "The streams in flight on this worker", Reply("Streams", {JSON: StreamsResponse})
    ),
    "console.post_console_cancel": _console(
        "Cancel a stream: its client gets one `cancelled` error frame, its slot comes back",
        Reply("Cancelled", {JSON: CancelResponse}),
        e404=_error("STREAM_NOT_FOUND: not open on this worker (ended, or another worker's)"),
    ),
    "console.get_console_users": _console(
        "Top users by tokens or credits over a window",
        Reply("Users", {JSON: TopUsersResponse}),
        query=query_of(TopUsersQuery),
        e400=_INVALID,
        e404=_NO_CREDITS,
    ),
    "console.get_console_account": _console(
        "One user's balance, pending holds, latest usage and grants",
        Reply("The account", {JSON: AccountResponse}),
        query=query_of(AccountQuery),
        e400=_INVALID,
        e404=_NO_CREDITS,
    ),
    "console.post_console_grant": _console(
        "Grant credits, or remove them with a negative amount (as `storywriter grant`)",
        Reply("The new balance", {JSON: GrantResponse}),
        body=GrantRequest,
        e400=_INVALID,
        e404=_NO_CREDITS,
        e413=_error("PAYLOAD_TOO_LARGE"),
    ),
    "docs.get_openapi": RouteDoc(
        "This document", ("docs",), {200: Reply("OpenAPI 3.1", {JSON: None}), 503: _DRAINING}
    ),
    "docs.get_docs": RouteDoc(
        "A readable page of this document", ("docs",), {200: Reply("HTML", {"text/html": None})}
    ),
}

_BYOK_HEADERS: tuple[dict[str, Any], ...] = (
    {
        "name": "X-BYOK-API-Key",
        "in": "header",
        "required": False,
        "description": "The caller's own upstream key (never logged or echoed).",
        "schema": {"type": "string"},
    },
    {
        "name": "X-BYOK-Base-URL",
        "in": "header",
        "required": False,
        "description": "OpenAI-compatible base URL; private addresses are refused by default.",
        "schema": {"type": "string"},
    },
    {
        "name": "X-BYOK-Provider",
        "in": "header",
        "required": False,
        "schema": {
            "type": "string",
            "enum": ["openai", "github", "openrouter", "ollama", "lmstudio", "vllm", "llamacpp"],
        },
    },
)


def undocumented_endpoints(app: Quart) -> list[str]:
    """HTTP endpoints of ``app`` that ``ROUTE_DOCS`` does not describe."""
    return sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if not rule.websocket and rule.endpoint not in ROUTE_DOCS
        }
    )


def _models(operations: Iterable[RouteDoc]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in operations:
        if op.body is not None:
            seen[(op.body, "validation")] = None
        for reply in op.responses.values():
            for model in reply.content.values():
                if model is not None:
                    seen[(model, "serialization")] = None
    return list(seen)


def _reply(reply: Reply, refs: Mapping[tuple[Any, JsonSchemaMode], Any]) -> Any:
    content: dict[str, Any] = {}
    for media, model in reply.content.items():
        if model is not None:
            schema = refs[(model, "serialization")]
        elif media == SSE:
            schema = _SSE_EVENT
        elif media == JSON:
            schema = {"type": "object"}
        else:
            schema = {"type": "string"}
        content[media] = {"schema": schema}
    out: dict[str, Any] = {"description": reply.description}
    if content:
        out["content"] = content
    if reply.headers:
        out["headers"] = {h: {"schema": {"type": "string"}} for h in reply.headers}
    return out


def build_openapi(app: Quart, *, title: str = "StoryWriter LLM backend") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every HTTP route of ``app``."""
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    operations = [ROUTE_DOCS[r.endpoint] for r in rules if r.endpoint in ROUTE_DOCS]
    refs, defs = models_json_schema(
        _models(operations), ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    websockets: list[str] = []
    for rule in rules:
        if rule.websocket:
            websockets.append(rule.rule)
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        op = ROUTE_DOCS.get(rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            item: dict[str, Any] = {"operationId": rule.endpoint.replace(".", "_")}
            if op is None:
                item["summary"] = rule.endpoint
                item["x-undocumented"] = True
                item["responses"] = {"default": {"description": "undocumented"}}
            else:
                item.update(_operation(op, app, rule.endpoint, refs))
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in sorted(rule.arguments)
            ]
            if op is not None:
                parameters += list(op.query) + (list(_BYOK_HEADERS) if op.byok else [])
            if parameters:
                item["parameters"] = parameters
            paths.setdefault(path, {})[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "OpenAI-compatible LLM proxy and scenario agent for StoryWriter. "
            'Errors before streaming: `{"error", "detail", "code"}` with a real status.',
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "x-websockets": websockets,
    }


def _operation(
    op: RouteDoc,
    app: Quart,
    endpoint: str,
    refs: Mapping[tuple[Any, JsonSchemaMode], Any],
) -> dict[str, Any]:
    view = app.view_functions.get(endpoint)
    item: dict[str, Any] = {"summary": op.summary, "tags": list(op.tags)}
    doc = (getattr(view, "__doc__", None) or "").strip()
    if doc:
        item["description"] = doc
    if op.auth:
        item["security"] = [{"bearerAuth": []}]
    if op.body is not None:
        item["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": refs[(op.body, "validation")]}},
        }
    item["responses"] = {str(code): _reply(r, refs) for code, r in sorted(op.responses.items())}
    return item
