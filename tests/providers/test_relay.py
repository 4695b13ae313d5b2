"""The frame relay: whole frames, untouched bytes on the fast path, tags never split."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UpstreamError
from providers.errors import UpstreamProtocolError
from providers.relay import ReasoningMode
from providers.relay import StreamRelay
from providers.tokens import load_tokenizer
from providers.usage import Usage
from providers.usage import UsageSource


def chunk(content: str | None = None, finish: str | None = None, **delta: str) -> bytes:
    if content is not None:
        delta["content"] = content
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


#: A call whose prompt the tokenizer counts as 9 tokens ("hi" framed as one user message).
SOURCE = UsageSource("p", "m", [{"role": "user", "content": "hi"}], prompt_estimate=5)


def relay(mode: ReasoningMode = "passthrough") -> StreamRelay:
    return StreamRelay(reasoning=mode, model="m")


def contents(out: bytes) -> list[str]:
    result: list[str] = []
    for event in out.split(b"\n\n"):
        if event:
            parsed = orjson.loads(event[6:])
            result.extend(c["delta"].get("content") or "" for c in parsed["choices"])
    return result


def test_fast_path_forwards_upstream_bytes_unchanged() -> None:
    data = chunk("Hello") + chunk(" world", finish="stop")
    r = relay()
    assert r.feed(data) == data
    assert r.feed(b"data: [DONE]\n\n") == b""
    assert r.done


def test_partial_frames_are_buffered_until_complete() -> None:
    data = chunk("Hello")
    r = relay()
    assert r.feed(data[:10]) == b""
    assert r.feed(data[10:]) == data


def test_crlf_and_comments_and_multiline_data() -> None:
    r = relay()
    out = r.feed(b": keep-alive\r\n\r\n" + chunk("a").replace(b"\n", b"\r\n"))
    assert contents(out) == ["a"]


def test_think_tag_split_is_held_back() -> None:
    r = relay()
    out = r.feed(chunk("Hi <th")) + r.feed(chunk("ink>deep</thi")) + r.feed(chunk("nk>ok"))
    out += r.feed(chunk("", finish="stop")) + r.feed(b"data: [DONE]\n\n")
    pieces = contents(out)
    assert "".join(pieces) == "Hi <think>deep</think>ok"
    assert pieces[:3] == ["Hi ", "<think>deep", "</think>ok"]


def test_held_back_text_flushed_at_end() -> None:
    r = relay()
    out = r.feed(chunk("a <"))
    out += r.feed(chunk(None, finish="stop"))
    tail = r.finish()
    assert "".join(contents(out) + contents(tail)) == "a <"


def test_reasoning_wrapped_in_think() -> None:
    r = relay("think")
    out = r.feed(chunk(reasoning_content="a") + chunk(reasoning_content="b") + chunk("c"))
    out += r.feed(chunk("", finish="stop"))
    assert "".join(contents(out)) == "<think>ab</think>c"


def test_reasoning_only_answer_closes_think_at_finish() -> None:
    r = relay("think")
    out = r.feed(chunk(reasoning_content="a") + chunk(None, finish="stop"))
    assert "".join(contents(out)) == "<think>a</think>"


async def test_reasoning_dropped() -> None:
    await load_tokenizer("m")
    r = relay("drop")
    out = r.feed(chunk(reasoning_content="alpha") + chunk(" beta", finish="stop"))
    assert contents(out) == [" beta"]
    # Dropped reasoning is still billed output: it is part of the text counted.
    assert r.completion_text() == "alpha beta"
    assert SOURCE.now(r.report, r.completion_text()) == Usage(9, 2, reported=False)


def test_usage_chunk_is_absorbed_and_reported() -> None:
    r = relay()
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}\n\n'
    assert r.feed(chunk("x", finish="stop") + usage) == chunk("x", finish="stop")
    u = SOURCE.now(r.report, r.completion_text())
    assert u == Usage(9, 4, reported=True)
    trailer = r.trailer(u, {"cost": {"credits": 1}})
    assert trailer.endswith(b"data: [DONE]\n\n")
    final = orjson.loads(trailer.split(b"\n\n")[0][6:])
    assert final["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


@pytest.mark.parametrize("bad", [b"data: {oops\n\n", b"data: [1,2]\n\n", b"data: 7\n\n"])
def test_garbage_raises_protocol_error(bad: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        relay().feed(bad)


def test_error_object_in_stream_raises() -> None:
    with pytest.raises(UpstreamError, match="overloaded"):
        relay().feed(b'data: {"error": {"message": "overloaded"}}\n\n')


def test_ending_without_finish_is_an_error() -> None:
    r = relay()
    r.feed(chunk("partial"))
    with pytest.raises(UpstreamProtocolError):
        r.finish()
