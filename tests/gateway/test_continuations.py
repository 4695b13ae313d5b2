"""A story cut by a dying upstream is finished, not silently truncated (issue 17).

Through a real hypercorn on loopback, with a scripted upstream that dies after N chunks
and, asked for the rest, answers it: the client sees one uninterrupted answer and one
``[DONE]``; usage and the ledger cover every attempt; the bound, the opt-outs and a client
leaving during a continuation all behave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.upstream import Fault
from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from gateway.continuation import INSTRUCTION
from gateway.continuation import is_structured
from providers.tokens import count_text_tokens
from quart_app import create_app
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import settings_for
from tests.serving import served

STORY = [
    "Once ", "upon ", "a ", "time ", "a ", "dragon ", "kept ", "a ", "tea ", "shop ",
    "by ", "the ", "sea, ", "and ", "nobody ", "ever ", "paid.",
]  # fmt: skip
TEXT = "".join(STORY)
CUT = 5  # the first attempt dies after this many chunks


def _story_teller(dies: int | None = CUT, *, repeat_words: int = 0) -> Any:
    """A responder: the first request dies after ``dies`` chunks; a continuation gets the
    rest of the story after the answer it carries (``repeat_words`` of it again first)."""

    def responder(body: dict[str, Any]) -> Script:
        messages = body["messages"]
        answer = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), None)
        if answer is None:  # the first attempt
            fault = None if dies is None else Fault("reset_mid_stream", after_chunks=dies)
            return Script(pieces=STORY, fault=fault)
        assert TEXT.startswith(answer), f"the continuation carries the answer so far: {answer!r}"
        done = len(answer.split())
        rest = STORY[done - repeat_words :]
        return Script(pieces=rest)

    return responder


@asynccontextmanager
async def _service(upstream: ScriptedUpstream, **overrides: Any) -> AsyncIterator[str]:
    provider = {
        "name": "local-ish",
        "kind": "llamacpp",
        "base_url": upstream.base_url,
        "models": [MODEL],
        "credit_multiplier": 1.0,
        **overrides.pop("provider", {}),
    }
    providers = [provider, *overrides.pop("more_providers", [])]
    settings = settings_for(upstream, providers=providers, **overrides)
    app = create_app(settings)
    async with served(app) as base:
        yield base


async def _post(base: str, token: str, path: str = FRONTEND_CHAT, **headers: str) -> list[bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base + path, json=chat_body(max_tokens=200), headers=auth(token, **headers)
        ) as response,
    ):
        assert response.status == 200
        return [await response.read()]


async def _ledger_rows(base: str, token: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(base + "/api/credits/me", headers=auth(token)) as response:
                body = await response.json()
            if body["usage"] and body["reserved"] == 0:
                return list(body["usage"])
            await asyncio.sleep(0.05)
    raise AssertionError("the request was not settled")


def _continuations(metrics: str, outcome: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "storywriter_stream_continuations_total"
        and sample.labels.get("outcome") == outcome
    )


@pytest.mark.parametrize("path", [FRONTEND_CHAT, CHAT])
async def test_a_cut_story_is_continued_into_one_answer_and_charged_once(
    upstream: ScriptedUpstream, token: str, path: str
) -> None:
    upstream.responder = _story_teller()
    async with _service(upstream) as base:
        payloads = frames(await _post(base, token, path))
        assert content_of(payloads) == TEXT, "the whole text, exactly once"
        assert payloads.count(b"[DONE]") == 1 and payloads[-1] == b"[DONE]"
        assert not [p for p in payloads if b'"error"' in p]
        final = orjson.loads(payloads[-2])
        assert final["continuations"] == 1
        _, second = upstream.chat_requests
        carried = second.body["messages"][-1]
        assert carried == {"role": "assistant", "content": "".join(STORY[:CUT])}
        # Only what the answer may still get: 200 minus what was written, and within the
        # hold, which the continuation's prompt also draws on.
        written = count_text_tokens("".join(STORY[:CUT]), MODEL)
        assert 150 < second.body["max_tokens"] <= 200 - written
        usage = final["usage"]
        written = count_text_tokens("".join(STORY[:CUT]), MODEL)
        # Both attempts' output: our count of the cut one (it reported nothing), the
        # upstream's report of the rest (one token per chunk).
        assert usage["completion_tokens"] == written + len(STORY) - CUT
        assert usage["prompt_tokens"] > 0
        [row] = await _ledger_rows(base, token)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert row["credits"] == final["cost"]["credits"] > 0
        assert row["status"] == "completed"
        async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as m:
            assert _continuations(await m.text(), "resumed") == 1


async def test_asked_in_words_the_repeated_words_are_dropped_at_the_seam(
    upstream: ScriptedUpstream, token: str
) -> None:
    upstream.responder = _story_teller(repeat_words=3)  # "a time a " again, then the rest
    async with _service(upstream, provider={"kind": "openai-compatible"}) as base:
        payloads = frames(await _post(base, token))
        assert content_of(payloads) == TEXT
        second = upstream.chat_requests[1].body["messages"]
        assert second[-2]["role"] == "assistant" and second[-1] == {
            "role": "user",
            "content": INSTRUCTION,
        }


async def test_vllm_is_told_to_continue_the_final_message(
    upstream: ScriptedUpstream, token: str
) -> None:
    upstream.responder = _story_teller()
    async with _service(upstream, provider={"kind": "vllm"}) as base:
        assert content_of(frames(await _post(base, token))) == TEXT
        body = upstream.chat_requests[1].body
        assert body["continue_final_message"] is True
        assert body["add_generation_prompt"] is False


async def test_think_tags_stay_whole_across_the_seam(
    upstream: ScriptedUpstream, token: str
) -> None:
    def responder(body: dict[str, Any]) -> Script:
        if body["messages"][-1]["role"] == "assistant":
            return Script(pieces=STORY[CUT:])
        return Script(
            reasoning=["Let me ", "think."],
            pieces=STORY,
            fault=Fault("reset_mid_stream", after_chunks=2 + CUT),
        )

    upstream.responder = responder
    async with _service(upstream, server={"show_thinking": True}) as base:
        payloads = frames(await _post(base, token, CHAT))
        assert content_of(payloads) == "<think>Let me think.</think>" + TEXT


async def test_a_provider_dying_on_every_attempt_ends_with_the_error_frame(
    upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(pieces=STORY, fault=Fault("reset_mid_stream", after_chunks=3))
    async with _service(upstream, server={"continuation_backoff_s": 0.01}) as base:
        payloads = frames(await _post(base, token))
        errors = [orjson.loads(p) for p in payloads if b'"error"' in p]
        assert len(errors) == 1 and payloads[-1] == orjson.dumps(errors[0])
        assert errors[0]["error"]["type"] == "upstream_unavailable"
        assert b"[DONE]" not in payloads
        assert len(upstream.chat_requests) == 3, "the first attempt and two continuations"
        [row] = await _ledger_rows(base, token)
        assert row["status"] == "upstream_error"
        per_attempt = count_text_tokens("".join(STORY[:3]), MODEL)  # our count: none reported
        assert row["completion_tokens"] == 3 * per_attempt, "every attempt's output is charged"


async def test_a_continuation_fails_over_to_another_provider(
    upstream: ScriptedUpstream, token: str
) -> None:
    async with ScriptedUpstream(models=[MODEL]) as other:
        upstream.responder = lambda body: (
            Script(fault=Fault("http_status", status=503))
            if body["messages"][-1]["role"] == "assistant"
            else Script(pieces=STORY, fault=Fault("reset_mid_stream", after_chunks=CUT))
        )
        other.responder = _story_teller()
        more = [
            {"name": "other", "kind": "llamacpp", "base_url": other.base_url, "models": [MODEL]}
        ]
        async with _service(upstream, more_providers=more) as base:
            assert content_of(frames(await _post(base, token))) == TEXT
            assert len(other.chat_requests) == 1


@pytest.mark.parametrize(
    "opt_out",
    [{"headers": {"X-Stream-Continuation": "off"}}, {"server": {"stream_continuations": 0}},
     {"provider": {"continuation": "off"}}],
)  # fmt: skip
async def test_continuation_can_be_turned_off(
    upstream: ScriptedUpstream, token: str, opt_out: dict[str, Any]
) -> None:
    upstream.responder = _story_teller()
    headers = opt_out.pop("headers", {})
    async with _service(upstream, **opt_out) as base:
        payloads = frames(await _post(base, token, **headers))
        assert b'"error"' in payloads[-1]
        assert len(upstream.chat_requests) == 1


async def test_a_client_leaving_during_a_continuation_cancels_it_within_a_second(
    upstream: ScriptedUpstream, token: str
) -> None:
    def responder(body: dict[str, Any]) -> Script:
        if body["messages"][-1]["role"] == "assistant":
            return Script(pieces=STORY[CUT:] * 20, delay_s=0.05)  # a slow rest
        return Script(pieces=STORY, fault=Fault("reset_mid_stream", after_chunks=CUT))

    upstream.responder = responder
    async with _service(upstream) as base, aiohttp.ClientSession() as session:
        response = await session.post(base + FRONTEND_CHAT, json=chat_body(), headers=auth(token))
        seen = b""
        while len(upstream.chat_requests) < 2 or seen.count(b"data:") < CUT + 2:
            seen += await asyncio.wait_for(response.content.readany(), 5)
        left = time.monotonic()
        response.close()
        await upstream.wait_for_disconnect(timeout=1.0)  # the continuation's connection
        assert time.monotonic() - left < 1.0
        [row] = await _ledger_rows(base, token)
        assert row["status"] in ("cancelled", "client_disconnect")


def test_structured_requests_are_never_continued() -> None:
    assert is_structured({"response_format": {"type": "json_schema"}})
    assert is_structured({"tools": [{"type": "function"}]})
    assert not is_structured({"messages": [], "max_tokens": 10})
