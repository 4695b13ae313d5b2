"""Streaming and non-streamed completions through the proxy against a scripted upstream."""

from __future__ import annotations

import orjson
from quart import Quart

from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from testing.upstream import default_pieces
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream


async def test_streams_tokens_with_usage_and_cost(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=12, delay_s=0.03)
    status, headers, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    payloads = frames(writes)
    # Tokens 30 ms apart leave as they arrive (a loaded machine may merge a few reads).
    assert len(writes) >= 8, "tokens must arrive as they are generated, not re-chunked"
    assert payloads[-1] == b"[DONE]"
    assert content_of(payloads) == "".join(default_pieces(12))
    final = orjson.loads(payloads[-2])
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 12
    assert final["usage"]["total_tokens"] == final["usage"]["prompt_tokens"] + 12
    assert final["cost"]["provider"] == "scripted"
    assert final["cost"]["credits"] > 0
    assert final["cost"]["usd"] > 0
    finish = [orjson.loads(p)["choices"][0].get("finish_reason") for p in payloads[:-2]]
    assert finish[-1] == "stop"


async def test_counts_completion_tokens_when_upstream_reports_none(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(pieces=["hello", " world"], usage="never")
    _, _, writes = await stream(app, CHAT, chat_body(), auth(token))
    final = orjson.loads(frames(writes)[-2])
    assert final["usage"]["completion_tokens"] == 2  # tiktoken: "hello world" = 2 tokens
    assert final["usage"]["prompt_tokens"] > 0


async def test_forwards_every_supported_field(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    body = chat_body(
        temperature=0.3,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        seed=7,
        max_tokens=5,
        keep_alive="5m",
        unknown_field=1,
    )
    await stream(app, FRONTEND_CHAT, body, auth(token))
    sent = upstream.requests[-1].body
    assert sent["temperature"] == 0.3
    assert sent["top_p"] == 0.9
    assert sent["presence_penalty"] == 0.5
    assert sent["frequency_penalty"] == -0.5
    assert sent["seed"] == 7
    assert sent["max_tokens"] == 5
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert "keep_alive" not in sent, "keep_alive is Ollama-only"
    assert "unknown_field" not in sent


async def test_keep_alive_goes_to_ollama(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    providers = [
        {"name": "ollama", "kind": "ollama", "base_url": upstream.base_url, "keep_alive": "10m"}
    ]
    upstream.models = ["llama3:8b"]
    async with make_app(settings_for(upstream, providers=providers)) as app:
        models = await app.test_client().get("/api/proxy/llm/v1/models", headers=auth(token))
        assert [m["id"] for m in (await models.get_json())["data"]] == ["llama3:8b"]
        assert upstream.requests[-1].path == "/api/tags"
        await stream(app, FRONTEND_CHAT, chat_body(model="llama3:8b"), auth(token))
        assert upstream.requests[-1].body["keep_alive"] == "10m"
        await stream(app, FRONTEND_CHAT, chat_body(model="llama3:8b", keep_alive=0), auth(token))
        assert upstream.requests[-1].body["keep_alive"] == 0


async def test_reasoning_passes_through_on_frontend_endpoint(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(reasoning=["Let me", " think"], pieces=["Answer"])
    _, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    payloads = frames(writes)
    reasoning = [
        orjson.loads(p)["choices"][0]["delta"].get("reasoning_content") for p in payloads[:-2]
    ]
    assert "".join(r for r in reasoning if r) == "Let me think"
    assert content_of(payloads) == "Answer"


async def test_reasoning_dropped_on_chat_endpoint_by_default(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(reasoning=["Let me", " think"], pieces=["Answer"])
    _, _, writes = await stream(app, CHAT, chat_body(), auth(token))
    payloads = frames(writes)
    assert content_of(payloads) == "Answer"
    assert b"reasoning_content" not in b"".join(payloads)


async def test_reasoning_wrapped_in_think_tags_when_shown(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    upstream.script = Script(reasoning=["Let me", " think"], pieces=["Answer", "!"])
    async with make_app(settings_for(upstream, server={"show_thinking": True})) as app:
        _, _, writes = await stream(app, CHAT, chat_body(), auth(token))
    payloads = frames(writes)
    assert content_of(payloads) == "<think>Let me think</think>Answer!"
    assert b"reasoning_content" not in b"".join(payloads)


async def test_think_tags_never_split_across_frames(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    pieces = ["<th", "ink>idea", "s</thi", "nk", ">Story <", "b>bold"]
    upstream.script = Script(pieces=pieces, delay_s=0.002)
    _, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    payloads = frames(writes)
    contents = [
        orjson.loads(p)["choices"][0]["delta"].get("content") or ""
        for p in payloads
        if p != b"[DONE]" and orjson.loads(p)["choices"]
    ]
    assert "".join(contents) == "".join(pieces)
    for content in contents:
        for tag in ("<think>", "</think>"):
            for cut in range(1, len(tag)):
                assert not content.endswith(tag[:cut]), f"split tag in {content!r}"
                assert not content.startswith(tag[cut:]) or tag[cut:] == ">", content


async def test_non_streamed_json_when_client_accepts_json(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=5, reasoning=["hmm"])
    response = await app.test_client().post(
        CHAT, json=chat_body(stream=False), headers=auth(token, Accept="application/json")
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "".join(default_pieces(5))
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert body["usage"]["completion_tokens"] == 6  # reasoning tokens are completion tokens
    assert body["cost"]["credits"] >= 1
    assert upstream.requests[-1].body["stream"] is False


async def test_stream_false_without_json_accept_answers_sse(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    status, headers, writes = await stream(app, CHAT, chat_body(stream=False), auth(token))
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert frames(writes)[-1] == b"[DONE]"


async def test_default_model_used_when_request_names_none(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    status, _, _ = await stream(app, FRONTEND_CHAT, body, auth(token))
    assert status == 200
    assert upstream.requests[-1].body["model"] == "scripted-model"


async def test_multipart_content_with_image_is_forwarded(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    body = chat_body(messages=[{"role": "user", "content": content}])
    status, _, _ = await stream(app, FRONTEND_CHAT, body, auth(token))
    assert status == 200
    assert upstream.requests[-1].body["messages"][0]["content"] == content
