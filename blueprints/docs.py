"""``GET /openapi.json`` and ``GET /docs``: the API description, served by the app itself.

The docs page is rendered on the server from the same document, as plain HTML with inline
CSS and no script: it works offline (no CDN) and under a strict Content-Security-Policy.
The document is built once per app, on first use: routes do not change while serving.
"""

from __future__ import annotations

import html
import json
from typing import Any

from quart import Blueprint
from quart import Response
from quart import current_app

from blueprints.openapi import build_openapi
from quart_app.facade import rate_exempt

__all__ = ["blueprint", "render_docs"]

blueprint = Blueprint("docs", __name__)
_CACHE_KEY = "storywriter.openapi"
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}.op{border:1px solid #ddd;border-radius:6px;
padding:.5rem 1rem;margin:1rem 0}.m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}
.m.get{color:#0a7}.m.post{color:#06c}code,pre{background:#f6f6f6;border-radius:4px}
pre{padding:.5rem;overflow:auto;font-size:13px}td{padding:.1rem .6rem;vertical-align:top}
"""


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] | None = current_app.extensions.get(_CACHE_KEY)
    if document is None:
        document = build_openapi(current_app)
        current_app.extensions[_CACHE_KEY] = document
    return document


@blueprint.get("/openapi.json")
@rate_exempt
async def get_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this service."""
    return _openapi()


@blueprint.get("/docs")
@rate_exempt
async def get_docs() -> Response:
    """A readable page of the OpenAPI document."""
    return Response(render_docs(_openapi()), content_type="text/html; charset=utf-8")


def _schema_name(schema: Any) -> str:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        name = ref.rsplit("/", 1)[-1]
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    return html.escape(json.dumps(schema))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        f'<div class="op"><p><span class="m {e(method)}">{e(method)}</span>'
        f"<code>{e(path)}</code> {e(op.get('summary', ''))}"
        + (" &middot; <em>Bearer token</em>" if op.get("security") else "")
        + "</p>"
    ]
    if op.get("description"):
        parts.append(f"<p>{e(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
            f"<td>{_schema_name(p.get('schema'))}</td><td>{e(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(f"<p>Parameters</p><table>{rows}</table>")
    body = op.get("requestBody", {}).get("content", {})
    for media, spec in body.items():
        parts.append(f"<p>Body <code>{e(media)}</code>: {_schema_name(spec.get('schema'))}</p>")
    replies: list[str] = []
    for status, reply in op.get("responses", {}).items():
        media = ", ".join(
            f"<code>{e(m)}</code> {_schema_name(s.get('schema'))}"
            for m, s in reply.get("content", {}).items()
        )
        replies.append(
            f"<tr><td><b>{e(status)}</b></td><td>{e(reply.get('description', ''))}</td>"
            f"<td>{media}</td></tr>"
        )
    parts.append(f"<table>{''.join(replies)}</table></div>")
    return "".join(parts)


def render_docs(document: dict[str, Any]) -> str:
    """The HTML page for ``document`` (an OpenAPI 3.1 dict)."""
    e = html.escape
    info = document.get("info", {})
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(info.get('title', 'API'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(info.get('title', 'API'))}</h1><p>{e(info.get('description', ''))}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p><h2>Operations</h2>',
    ]
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            out.append(_operation(path, method, op))
    websockets = document.get("x-websockets", [])
    if websockets:
        out.append("<h2>WebSockets</h2><ul>")
        out.extend(f"<li><code>{e(p)}</code></li>" for p in websockets)
        out.append("</ul>")
    out.append("<h2>Schemas</h2>")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out.append(
            f'<details id="schema-{e(name)}"><summary><code>{e(name)}</code></summary>'
            f"<pre>{e(json.dumps(schema, indent=2))}</pre></details>"
        )
    out.append("</body></html>")
    return "".join(out)
