"""The scripted upstream (testing/upstream.py) behaves like an OpenAI-compatible server.

The service's fault-handling tests and the benchmarks trust this server, so each behaviour
they rely on is checked here from the client side, with aiohttp's client (what the proxy
uses) against the real server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from testing.upstream import DEFAULT_MODEL
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from testing.upstream import default_pieces
from testing.upstream import prompt_token_count

MESSAGES = [
    {"role": "system", "content": "You write stories."},
    {"role": "user", "content": "Tell me about a fox"},
]
# 3 words + 3, 5 words + 3
PROMPT_TOKENS = 14
REPO_ROOT = Path(__file__).resolve().parents[1]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m1", "messages": MESSAGES, **extra}


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(models=["m1", "m2"]) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


async def read_frames(resp: aiohttp.ClientResponse) -> list[str]:
    """Return the payloads of the `data: ` frames, checking the blank-line framing."""
    frames: list[str] = []
    expect_blank = False
    async for line in resp.content:
        if expect_blank:
            assert line == b"\n"
            expect_blank = False
            continue
        assert line.startswith(b"data: "), line
        assert line.endswith(b"\n")
        frames.append(line[6:-1].decode())
        expect_blank = True
    return frames


async def stream(
    session: aiohttp.ClientSession, upstream: ScriptedUpstream, **extra: Any
) -> list[str]:
    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, json=chat_body(stream=True, **extra)) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        return await read_frames(resp)


def contents(frames: list[str]) -> list[str]:
    out: list[str] = []
    for frame in frames:
        if frame == "[DONE]":
            continue
        chunk = json.loads(frame)
        if chunk["choices"] and "content" in chunk["choices"][0]["delta"]:
            out.append(chunk["choices"][0]["delta"]["content"])
    return out


# -- plain endpoints ---------------------------------------------------------------------


async def test_models_tags_and_health(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    assert upstream.base_url == f"http://127.0.0.1:{upstream.port}/v1"
    assert upstream.root_url == f"http://127.0.0.1:{upstream.port}"
    async with session.get(f"{upstream.base_url}/models") as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "object": "list",
            "data": [
                {"id": "m1", "object": "model", "owned_by": "scripted"},
                {"id": "m2", "object": "model", "owned_by": "scripted"},
            ],
        }
    upstream.models = ["llama3"]
    async with session.get(f"{upstream.root_url}/api/tags") as resp:
        assert resp.status == 200
        assert await resp.json() == {"models": [{"name": "llama3", "model": "llama3"}]}
    async with session.get(f"{upstream.root_url}/health") as resp:
        assert resp.status == 200
    async with session.get(f"{upstream.root_url}/nope") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()
    async with session.get(f"{upstream.base_url}/chat/completions") as resp:
        assert resp.status == 405


async def test_default_model_list() -> None:
    async with (
        ScriptedUpstream() as upstream,
        aiohttp.ClientSession() as session,
        session.get(f"{upstream.base_url}/models") as resp,
    ):
        data = await resp.json()
    assert [m["id"] for m in data["data"]] == [DEFAULT_MODEL]


# -- non-streamed ------------------------------------------------------------------------


async def test_non_streamed_json_with_usage(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, json=chat_body(stream=False)) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        answer = await resp.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "m1"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "".join(default_pieces(8))}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"] == {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": 8,
        "total_tokens": PROMPT_TOKENS + 8,
    }
    # A request without "stream" is non-streamed too (OpenAI's default).
    upstream.script = Script(pieces=["a", "b"], reasoning=["r"], usage="never")
    async with session.post(url, json=chat_body()) as resp:
        answer = await resp.json()
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "ab",
        "reasoning_content": "r",
    }
    assert "usage" not in answer


async def test_max_tokens_truncates_with_finish_reason_length(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, json=chat_body(max_tokens=3)) as resp:
        answer = await resp.json()
    assert answer["choices"][0]["message"]["content"] == "".join(default_pieces(3))
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3

    frames = await stream(session, upstream, max_tokens=3)
    assert contents(frames) == default_pieces(3)
    assert json.loads(frames[-2])["choices"][0]["finish_reason"] == "length"

    # max_tokens equal to the script length is a normal stop.
    frames = await stream(session, upstream, max_tokens=8)
    assert json.loads(frames[-2])["choices"][0]["finish_reason"] == "stop"


def test_prompt_token_count_counts_words_and_parts() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "one two  three"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "four five"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                ],
            },
        ]
    }
    assert prompt_token_count(body) == 3 + 3 + 2 + 3
    assert prompt_token_count({}) == 0


# -- streamed ----------------------------------------------------------------------------


async def test_stream_frames_parse_and_end_with_done(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=5)
    frames = await stream(session, upstream)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert len(chunks) == 5  # no usage chunk: the request did not ask for one
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m1" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]
    assert contents(frames) == default_pieces(5)
    assert upstream.completed_streams == 1
    assert upstream.active_streams == 0
    assert upstream.client_disconnects == 0


@pytest.mark.parametrize(
    ("usage", "include_usage", "expected"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("auto", None, False),
        ("always", None, True),
        ("never", True, False),
    ],
)
async def test_stream_usage_chunk(
    upstream: ScriptedUpstream,
    session: aiohttp.ClientSession,
    usage: Any,
    include_usage: bool | None,
    expected: bool,
) -> None:
    upstream.script = Script(tokens=3, reasoning=["x"], usage=usage)
    extra: dict[str, Any] = {}
    if include_usage is not None:
        extra["stream_options"] = {"include_usage": include_usage}
    frames = await stream(session, upstream, **extra)
    assert frames[-1] == "[DONE]"
    last = json.loads(frames[-2])
    if expected:
        assert last["choices"] == []
        assert last["usage"] == {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": 4,
            "total_tokens": PROMPT_TOKENS + 4,
        }
        assert len(frames) == 1 + 3 + 1 + 1
    else:
        assert "usage" not in last
        assert last["choices"][0]["finish_reason"] == "stop"
        assert len(frames) == 1 + 3 + 1


async def test_reasoning_chunks_come_first_and_pieces_are_verbatim(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    pieces = ["<think>", "hmm", "</think>", "Once", " upon"]
    upstream.script = Script(reasoning=["Let", " me", " think"], pieces=pieces)
    frames = await stream(session, upstream)
    deltas = [json.loads(f)["choices"][0]["delta"] for f in frames[:-1]]
    assert deltas[0] == {"role": "assistant", "reasoning_content": "Let"}
    assert [d.get("reasoning_content") for d in deltas[:3]] == ["Let", " me", " think"]
    assert all("content" not in d for d in deltas[:3])
    assert [d["content"] for d in deltas[3:]] == pieces


async def test_frames_arrive_as_they_are_written(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=3, delay_s=0.15)
    url = f"{upstream.base_url}/chat/completions"
    arrivals: list[float] = []
    async with session.post(url, json=chat_body(stream=True)) as resp:
        start = time.monotonic()
        async for line in resp.content:
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 4  # 3 content + [DONE]
    assert arrivals[0] < 0.1
    assert 0.1 < arrivals[1] < 0.3
    assert arrivals[2] - arrivals[1] > 0.1


async def test_first_byte_delay_and_slow_first_byte_fault(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=2, first_byte_delay_s=0.2, fault=Fault("slow_first_byte"))
    url = f"{upstream.base_url}/chat/completions"
    start = time.monotonic()
    async with session.post(url, json=chat_body(stream=True)) as resp:
        headers_after = time.monotonic() - start
        frames = await read_frames(resp)
    assert headers_after >= 0.18
    assert frames[-1] == "[DONE]"
    assert upstream.active_streams == 0
    with pytest.raises(ValueError, match="first_byte_delay_s"):
        Script(fault=Fault("slow_first_byte"))


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [True, False])
async def test_fault_http_status(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession, streamed: bool
) -> None:
    upstream.enqueue(Script(fault=Fault("http_status", status=503, message="overloaded")))
    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, json=chat_body(stream=streamed)) as resp:
        assert resp.status == 503
        assert resp.content_type == "application/json"
        assert await resp.json() == {"error": {"message": "overloaded", "type": "server_error"}}
    # The connection is still usable and the next request is normal.
    async with session.post(url, json=chat_body(stream=streamed)) as resp:
        assert resp.status == 200
        await resp.read()
    assert upstream.connections == 1


@pytest.mark.parametrize("streamed", [True, False])
async def test_fault_reset_before_response(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession, streamed: bool
) -> None:
    upstream.enqueue(Script(fault=Fault("reset_before_response")))
    url = f"{upstream.base_url}/chat/completions"
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.post(url, json=chat_body(stream=streamed)) as resp:
            await resp.read()
    assert upstream.client_disconnects == 0  # our own reset is not a client disconnect
    assert upstream.active_streams == 0


async def test_fault_reset_mid_stream(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=10, fault=Fault("reset_mid_stream", after_chunks=2))
    url = f"{upstream.base_url}/chat/completions"
    received: list[bytes] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.post(url, json=chat_body(stream=True)) as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.startswith(b"data: "):
                    received.append(line)
    assert len(received) == 2
    assert upstream.completed_streams == 0
    assert upstream.client_disconnects == 0
    assert upstream.active_streams == 0


async def test_fault_reset_mid_body_non_streamed(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=50, fault=Fault("reset_mid_stream"))
    url = f"{upstream.base_url}/chat/completions"
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.post(url, json=chat_body()) as resp:
            assert resp.status == 200
            await resp.read()


async def test_fault_stall_then_client_gives_up(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=10, fault=Fault("stall", after_chunks=1))
    url = f"{upstream.base_url}/chat/completions"
    resp = await session.post(url, json=chat_body(stream=True))
    assert resp.status == 200
    first = await resp.content.readline()
    assert json.loads(first[6:])["choices"][0]["delta"]["content"] == default_pieces(1)[0]
    assert await resp.content.readline() == b"\n"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await resp.content.readline()
    assert upstream.active_streams == 1
    assert upstream.client_disconnects == 0
    resp.close()
    await upstream.wait_for_disconnect(timeout=2.0)
    assert upstream.client_disconnects == 1
    assert upstream.active_streams == 0
    assert upstream.completed_streams == 0


async def test_fault_stall_non_streamed_sends_nothing(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Script(fault=Fault("stall")))
    url = f"{upstream.base_url}/chat/completions"
    with pytest.raises(TimeoutError):
        await session.post(url, json=chat_body(), timeout=aiohttp.ClientTimeout(total=0.3))
    await upstream.wait_for_disconnect(timeout=2.0)


@pytest.mark.parametrize("after", [0, 2, 99])
async def test_fault_malformed_json_stream(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession, after: int
) -> None:
    upstream.script = Script(tokens=4, fault=Fault("malformed_json", after_chunks=after))
    frames = await stream(session, upstream)
    assert frames[-1] == "{not json"
    assert len(frames) == min(after, 4) + 1
    assert "[DONE]" not in frames
    assert upstream.completed_streams == 0
    # The response ended cleanly: the connection is reused.
    frames = await stream(session, upstream)
    assert frames[-1] == "{not json"
    assert upstream.connections == 1


async def test_fault_malformed_json_non_streamed(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Script(fault=Fault("malformed_json")))
    async with session.post(f"{upstream.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            await resp.json()


@pytest.mark.parametrize("streamed", [True, False])
async def test_fault_wrong_content_type(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession, streamed: bool
) -> None:
    upstream.enqueue(Script(fault=Fault("wrong_content_type")))
    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, json=chat_body(stream=streamed)) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert await resp.text() == "<html>oops</html>"


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault("http_status", status=200)
    with pytest.raises(ValueError, match="tokens"):
        Script(tokens=-1)


# -- disconnects and connections ---------------------------------------------------------


async def test_client_disconnect_mid_stream_is_counted(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=100, delay_s=0.05)
    with pytest.raises(TimeoutError):
        await upstream.wait_for_disconnect(timeout=0.05)
    resp = await session.post(f"{upstream.base_url}/chat/completions", json=chat_body(stream=True))
    assert (await resp.content.readline()).startswith(b"data: ")
    assert upstream.active_streams == 1
    resp.close()
    started = time.monotonic()
    await upstream.wait_for_disconnect(timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert upstream.client_disconnects == 1
    assert upstream.active_streams == 0
    assert upstream.completed_streams == 0
    # A completed stream is not a disconnect; waiting for a second one times out.
    upstream.script = Script(tokens=2)
    await stream(session, upstream)
    with pytest.raises(TimeoutError):
        await upstream.wait_for_disconnect(timeout=0.1, count=2)
    assert upstream.client_disconnects == 1


async def test_keep_alive_reuses_one_connection(upstream: ScriptedUpstream) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"{upstream.base_url}/chat/completions"
        for _ in range(3):
            async with session.post(url, json=chat_body()) as resp:
                await resp.read()
            await stream(session, upstream)
            async with session.get(f"{upstream.base_url}/models") as resp:
                await resp.read()
    assert upstream.connections == 1
    assert len(upstream.requests) == 9
    assert upstream.request_count == 9


async def test_close_aborts_stalled_streams_promptly(session: aiohttp.ClientSession) -> None:
    upstream = ScriptedUpstream(script=Script(fault=Fault("stall", after_chunks=1)))
    await upstream.start()
    resp = await session.post(f"{upstream.base_url}/chat/completions", json=chat_body(stream=True))
    await resp.content.readline()
    assert upstream.active_streams == 1
    started = time.monotonic()
    await upstream.close()
    assert time.monotonic() - started < 1.0
    assert upstream.active_streams == 0
    assert upstream.client_disconnects == 0  # closing the server is not a client disconnect
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    resp.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.get(f"{upstream.root_url}/health")


# -- choosing the script -----------------------------------------------------------------


async def test_queue_then_responder_then_default(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> Script | None:
        seen.append(body)
        if "classify" in body["messages"][-1]["content"]:
            return Script(pieces=['{"intent": "edit"}'])
        return None

    upstream.responder = responder
    upstream.script = Script(pieces=["default"])
    upstream.enqueue(Script(pieces=["first"]), Script(pieces=["second"]))
    assert upstream.pending_scripts == 2

    async def ask(prompt: str) -> str:
        body = {"model": "m1", "messages": [{"role": "user", "content": prompt}]}
        url = f"{upstream.base_url}/chat/completions"
        async with session.post(url, json=body) as resp:
            answer = await resp.json()
        return str(answer["choices"][0]["message"]["content"])

    assert await ask("please classify") == "first"
    assert await ask("please classify") == "second"
    assert upstream.pending_scripts == 0
    assert await ask("please classify this") == '{"intent": "edit"}'
    assert await ask("write prose") == "default"
    # The queue is consumed by chat requests only, and the responder sees each body.
    upstream.enqueue(Script(pieces=["queued"]))
    async with session.get(f"{upstream.base_url}/models") as resp:
        await resp.read()
    assert await ask("write prose") == "queued"
    assert [b["messages"][-1]["content"] for b in seen] == [
        "please classify this",
        "write prose",
    ]


async def test_responder_error_is_a_500(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    def responder(body: dict[str, Any]) -> Script | None:
        raise RuntimeError("boom")

    upstream.responder = responder
    async with session.post(f"{upstream.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 500
        assert "boom" in (await resp.json())["error"]["message"]


# -- requests as received ----------------------------------------------------------------


async def test_requests_are_recorded(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer sk-test", "X-Custom": "1"}
    url = f"{upstream.base_url}/chat/completions?trace=1"
    async with session.post(url, json=chat_body(temperature=0.5), headers=headers) as resp:
        await resp.read()
    async with session.post(url, data=b"not json", headers=headers) as resp:
        assert resp.status == 400
    first, second = upstream.requests
    assert (first.method, first.path, first.query) == ("POST", "/v1/chat/completions", "trace=1")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["x-custom"] == "1"
    assert first.body == chat_body(temperature=0.5)
    assert json.loads(first.raw_body) == first.body
    assert second.body is None
    assert second.raw_body == b"not json"
    assert upstream.chat_requests == [first, second]


async def test_chunked_request_body_and_expect_continue(
    upstream: ScriptedUpstream, session: aiohttp.ClientSession
) -> None:
    payload = json.dumps(chat_body()).encode()

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 7):
            yield payload[i : i + 7]
            await asyncio.sleep(0)

    url = f"{upstream.base_url}/chat/completions"
    async with session.post(url, data=body(), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        await r.read()
    assert upstream.requests[-1].headers["transfer-encoding"] == "chunked"
    assert upstream.requests[-1].body == chat_body()

    async with session.post(url, json=chat_body(), expect100=True) as r:
        assert r.status == 200
        await r.read()
    assert upstream.requests[-1].body == chat_body()


async def test_pipelining_http10_and_bad_requests(upstream: ScriptedUpstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", upstream.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\n\r\n")
        await writer.drain()
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()

    # HTTP/1.0 streams are close-delimited (no chunked encoding).
    reader, writer = await asyncio.open_connection("127.0.0.1", upstream.port)
    try:
        body = json.dumps(chat_body(stream=True)).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        raw = await reader.read()  # until the server closes
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert rest.endswith(b"data: [DONE]\n\n")
    assert rest.count(b"data: ") == 8 + 1

    reader, writer = await asyncio.open_connection("127.0.0.1", upstream.port)
    try:
        writer.write(b"garbage\r\n\r\n")
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.1 400 ")


# -- command line ------------------------------------------------------------------------


async def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testing.upstream",
        "--port",
        "0",
        "--tokens",
        "4",
        "--model",
        "cli-model",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("scripted upstream listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base_url}/models") as resp:
                assert (await resp.json())["data"][0]["id"] == "cli-model"
            body = {"messages": MESSAGES, "stream": True}
            async with session.post(f"{base_url}/chat/completions", json=body) as resp:
                assert len(contents(await read_frames(resp))) == 4
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
