"""Structured logs and request ids: JSON lines, one access line per request, no secrets."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import orjson
import pytest
from quart import Quart

from quart_app.logs import REQUEST_ID
from quart_app.logs import DeferredStreamHandler
from quart_app.logs import JsonFormatter
from quart_app.logs import TextFormatter
from quart_app.logs import configure_logging
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.conftest import stream

PROMPT = "my very private prompt about a dragon"
KEY = "sk-byok-key-never-logged-0123456789"


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("storywriter.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_extras_and_the_request_id() -> None:
    token = REQUEST_ID.set("req-1")
    try:
        line = JsonFormatter().format(_record("hello %s", event="x", count=3))
    finally:
        REQUEST_ID.reset(token)
    entry = orjson.loads(line)
    assert entry["msg"] == "hello %s"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "storywriter.test"
    assert entry["request_id"] == "req-1"
    assert entry["event"] == "x" and entry["count"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])


def test_text_format_is_readable_with_the_same_fields() -> None:
    line = TextFormatter().format(_record("hello", event="x", request_id="req-2"))
    assert line.endswith("storywriter.test: hello [request_id=req-2 event=x]")


class _CountingStream(io.StringIO):
    """A stream that counts its writes (one per loop step is the point of the handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _deferred() -> tuple[logging.Logger, DeferredStreamHandler, _CountingStream]:
    stream = _CountingStream()
    handler = DeferredStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("storywriter.test.deferred")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler, stream


async def test_lines_of_one_loop_step_are_written_after_it_in_one_write() -> None:
    logger, _, stream = _deferred()
    token = REQUEST_ID.set("req-a")
    try:
        logger.info("first %s", "line")
    finally:
        REQUEST_ID.reset(token)
    items = ["mutable"]
    logger.info("second %s", items)
    items.append("changed later")  # the line reads as it would have when logged
    assert stream.getvalue() == ""  # nothing on the path of the step that logged
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    entries = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["msg"] for e in entries] == ["first line", "second ['mutable']"]
    assert entries[0]["request_id"] == "req-a"  # captured when logged, not when written
    assert "request_id" not in entries[1]
    assert stream.writes == 1


async def test_flush_writes_what_is_pending_in_order() -> None:
    logger, handler, stream = _deferred()
    logger.info("pending")
    handler.flush()  # what logging.shutdown does at exit
    assert [orjson.loads(x)["msg"] for x in stream.getvalue().splitlines()] == ["pending"]
    await asyncio.sleep(0)
    assert len(stream.getvalue().splitlines()) == 1  # not written twice


def test_outside_a_loop_lines_are_written_at_once() -> None:
    logger, _, stream = _deferred()
    logger.info("at once")
    assert orjson.loads(stream.getvalue())["msg"] == "at once"


def test_configure_logging_is_idempotent_and_switches_format() -> None:
    root = logging.getLogger()
    level = root.level
    try:
        first = configure_logging("warning", "text")
        second = configure_logging("info", "json")
        assert first is second
        assert isinstance(second.formatter, JsonFormatter)
        assert root.level == logging.INFO
        assert sum(h is first for h in root.handlers) == 1
    finally:
        root.setLevel(level)


async def test_one_access_line_per_request_without_secrets(
    app: Quart, upstream: ScriptedUpstream, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = chat_body(messages=[{"role": "user", "content": PROMPT}])
    headers = auth(token, **{"X-Request-Id": "trace-abc.1"})
    status, response_headers, _ = await stream(
        app, FRONTEND_CHAT + "?token=qs-secret", body, headers
    )
    assert status == 200
    assert response_headers["X-Request-Id"] == "trace-abc.1"
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [orjson.loads(x) for x in lines if '"event":"access"' in x]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "trace-abc.1"
    assert entry["method"] == "POST" and entry["status"] == 200
    assert entry["path"] == FRONTEND_CHAT
    assert entry["user"] == "alice"
    assert entry["streamed"] is True and entry["aborted"] is False
    assert entry["duration_ms"] > 0
    everything = "\n".join(lines)
    for secret in (PROMPT, "qs-secret", token, KEY):
        assert secret not in everything


async def test_byok_keys_never_reach_the_logs(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_app(settings_for(upstream, byok={"allow_private_addresses": True})) as app:
        headers = auth(token, **{"X-BYOK-API-Key": KEY, "X-BYOK-Base-URL": upstream.base_url})
        status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), headers)
        assert status == 200
    assert KEY not in "\n".join(JsonFormatter().format(r) for r in caplog.records)


@pytest.mark.parametrize("incoming", [None, "bad id with spaces", "x" * 65])
async def test_a_request_id_is_made_when_missing_or_invalid_and_sent_upstream(
    app: Quart, upstream: ScriptedUpstream, token: str, incoming: str | None
) -> None:
    headers = auth(token) if incoming is None else auth(token, **{"X-Request-Id": incoming})
    status, response_headers, _ = await stream(app, FRONTEND_CHAT, chat_body(), headers)
    assert status == 200
    request_id = response_headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert upstream.requests[-1].headers["x-request-id"] == request_id


async def test_a_valid_request_id_is_forwarded_upstream_and_echoed_on_errors(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    client = app.test_client()
    ok = await client.post(
        FRONTEND_CHAT, json=chat_body(), headers=auth(token, **{"X-Request-Id": "abc-1"})
    )
    assert ok.headers["X-Request-Id"] == "abc-1"
    assert upstream.requests[-1].headers["x-request-id"] == "abc-1"
    refused = await client.post(FRONTEND_CHAT, json={}, headers={"X-Request-Id": "abc-2"})
    assert refused.status_code == 401
    assert refused.headers["X-Request-Id"] == "abc-2"
