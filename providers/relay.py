"""Relay of an upstream's SSE stream to the client, frame by frame, with minimal work.

Every upstream frame is parsed once (orjson, ~1 us) so that invalid JSON never reaches the
frontend, but it is forwarded as the upstream's own bytes unless it must change: only frames
that carry ``reasoning_content`` (contract 5.2), a usage report, or a piece of a ``<think>``
tag (the frontend splits content on whole tags and does not buffer between reads) are
re-serialised. Frames that arrived in one read leave in one write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

import orjson

from providers.errors import UpstreamError
from providers.errors import UpstreamProtocolError
from providers.usage import Usage

__all__ = ["ReasoningMode", "StreamRelay", "error_frame", "sse_frame"]

ReasoningMode = Literal["passthrough", "think", "drop"]
"""``passthrough`` forwards ``reasoning_content`` as is (``/frontend``); ``think`` re-emits it
as content inside ``<think>`` tags; ``drop`` removes it (``/chat/completions``, 5.2)."""

_TAGS = ("<think>", "</think>")
#: A continuation's first characters held back to find a repeat of the answer's end.
_SEAM_WINDOW = 48
#: The end of the answer a continuation is compared with, and the shortest repeat dropped.
_SEAM_TAIL = 200
_MIN_OVERLAP = 8
_REASONING_KEYS = ("reasoning_content", "reasoning")
_DATA = b"data:"


def sse_frame(payload: bytes) -> bytes:
    """One SSE event in the contract's exact framing."""
    return b"data: " + payload + b"\n\n"


def error_frame(message: str, error_type: str) -> bytes:
    """The single well-formed error frame sent when a stream fails after it began (5.1)."""
    return sse_frame(orjson.dumps({"error": {"message": message, "type": error_type}}))


def _partial_tag_start(text: str) -> int:
    """Index where a trailing, incomplete ``<think>``/``</think>`` starts, or -1."""
    start = text.rfind("<")
    if start < 0:
        return -1
    tail = text[start:]
    for tag in _TAGS:
        if len(tail) < len(tag) and tag.startswith(tail):
            return start
    return -1


@dataclass
class StreamRelay:
    """Turns upstream SSE bytes into client SSE bytes and keeps what settling needs."""

    reasoning: ReasoningMode
    model: str
    done: bool = False
    finish_reason: str | None = None
    unsent: bytes = b""
    """Whole frames a failed ``feed`` had already made (they precede the failure)."""
    _buffer: bytes = b""
    _texts: list[str] = field(default_factory=list)
    """Generated content and reasoning, as the upstreams sent it (what is counted)."""
    _delivered: list[str] = field(default_factory=list)
    """The answer's content as the client gets it (what a continuation carries on from)."""
    _attempt_start: int = 0
    _reported: dict[str, Any] | None = None
    _holdback: str = ""
    _in_think: bool = False
    _template: dict[str, Any] | None = None
    _seam: str | None = None
    _seam_pending: str = ""

    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the upstream; return the whole frames to write to the client.

        Raises:
            UpstreamProtocolError: the upstream sent something that is not a chunk.
            UpstreamError: the upstream reported an error inside the stream.
        """
        if self.done:
            return b""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        start = 0
        # Frames forwarded exactly as they came are not copied one by one: a run of them
        # leaves as one slice of the upstream's bytes (run = where it began, -1 = none).
        run = -1
        find = buffer.find
        event = self._event
        while not self.done:
            end = find(b"\n\n", start)
            if end < 0:
                break
            try:
                frame = event(buffer, start, end)
            except Exception:
                if run >= 0:
                    out.append(buffer[run:start])
                self.unsent = b"".join(out)  # the frames before the bad one are good
                raise
            if frame is None:
                if run < 0:
                    run = start
            else:
                if run >= 0:
                    out.append(buffer[run:start])
                    run = -1
                if frame:
                    out.append(frame)
            start = end + 2
        if run >= 0:
            out.append(buffer[run:start])
        self._buffer = b"" if self.done else buffer[start:]
        if len(self._buffer) > 4 * 1024 * 1024:
            raise UpstreamProtocolError("upstream sent an event larger than 4 MiB")
        return out[0] if len(out) == 1 else b"".join(out)

    def _event(self, buffer: bytes, start: int, end: int) -> bytes | None:
        """The event ``buffer[start:end]``: None when it leaves as it came, else its bytes."""
        plain = buffer.startswith(b"data: ", start, end)
        if plain:
            payload = buffer[start + 6 : end]
            if b"\n" in payload:  # several data lines form one payload (SSE spec)
                plain = False
                payload = self._join_data_lines(buffer[start:end])
        else:
            payload = self._join_data_lines(buffer[start:end])
            if not payload:
                return b""  # comments, keep-alives, event names
        if payload == b"[DONE]":
            self.done = True
            return b""
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream sent a malformed stream chunk") from None
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError("upstream sent a stream chunk that is not an object")
        frame = self._chunk(chunk, payload)
        if frame is None and not plain:
            return sse_frame(payload)  # unchanged, but re-framed in the contract's framing
        return frame

    @staticmethod
    def _join_data_lines(block: bytes) -> bytes:
        lines = [
            line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(_DATA)
        ]
        return b"\n".join(lines)

    def _chunk(self, chunk: dict[str, Any], payload: bytes) -> bytes | None:
        """The frame to send for ``chunk``, or None to send ``payload`` unchanged."""
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(f"upstream error: {str(message)[:300]}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._reported = usage
        choices = chunk.get("choices")
        if not choices:
            return b""  # the usage-only chunk: ours, with the cost, replaces it at the end
        self._template = chunk
        choice = choices[0]
        if not isinstance(choice, dict):
            raise UpstreamProtocolError("upstream sent a malformed choice")
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        content = delta.get("content")
        changed = False
        if isinstance(content, str) and content:
            self._texts.append(content)
            if self._seam is None:
                self._delivered.append(content)
        if self._seam is not None and (content or choice.get("finish_reason")):
            # A continuation's first words: held until they can be compared with the end
            # of the answer so far (a finishing chunk releases them).
            content = self._past_seam(content or "", bool(choice.get("finish_reason")))
            delta["content"] = content
            changed = True
            if content:
                self._delivered.append(content)
        if self.reasoning != "passthrough":
            changed = self._rewrite_reasoning(delta, choice) or changed
            content = delta.get("content")
        elif isinstance(delta.get("reasoning_content"), str):
            self._texts.append(delta["reasoning_content"])
        if isinstance(content, str) and content and (self._holdback or "<" in content):
            content = self._holdback + content
            # Nothing follows a finishing chunk, so nothing is held back from it.
            cut = -1 if choice.get("finish_reason") else _partial_tag_start(content)
            self._holdback = content[cut:] if cut >= 0 else ""
            delta["content"] = content[:cut] if cut >= 0 else content
            changed = True
        if not changed:
            return None
        if not delta.get("content") and not delta.get("role") and not choice.get("finish_reason"):
            return b""  # nothing left to say in this frame
        choice["delta"] = delta
        return sse_frame(orjson.dumps(chunk))

    def _past_seam(self, content: str, last: bool) -> str:
        """Content of a continuation, minus what repeats the end of the answer so far.

        A model asked in words to continue may start by repeating its last words: the
        first characters are held until there are enough to compare (or the answer ends),
        then the longest overlap (at least ``_MIN_OVERLAP`` characters) is dropped.
        """
        seam = self._seam or ""
        pending = self._seam_pending + content
        if len(pending) < _SEAM_WINDOW and not last:
            self._seam_pending = pending
            return ""
        self._seam, self._seam_pending = None, ""
        for size in range(min(len(seam), len(pending)), _MIN_OVERLAP - 1, -1):
            if seam.endswith(pending[:size]):
                return pending[size:]
        return pending

    def delivered_text(self) -> str:
        """The answer's content so far, as the client has it or will (held-back tags too)."""
        return "".join(self._delivered) + self._seam_pending

    def attempt_text(self) -> str:
        """What the current attempt generated (content and reasoning), for counting."""
        return "".join(self._texts[self._attempt_start :])

    def continue_after_failure(self, *, repeats: bool) -> None:
        """Start relaying a continuation of the same answer from a new upstream stream.

        A frame cut by the failure is dropped; ``<think>`` and held-back tag state carry
        over, so the client sees one answer. ``repeats``: the continuation may repeat the
        answer's last words (asked in words rather than by prefill): strip them.
        """
        self._buffer = b""
        self.unsent = b""
        self.done = False
        self.finish_reason = None
        self._reported = None
        self._attempt_start = len(self._texts)
        self._seam = self.delivered_text()[-_SEAM_TAIL:] if repeats else None
        self._seam_pending = ""

    def _rewrite_reasoning(self, delta: dict[str, Any], choice: dict[str, Any]) -> bool:
        reasoning = None
        changed = False
        for key in _REASONING_KEYS:
            if key in delta:
                value = delta.pop(key)
                changed = True
                if isinstance(value, str) and value:
                    reasoning = value
        raw_content = delta.get("content")
        content = raw_content if isinstance(raw_content, str) else ""
        if self.reasoning == "drop":
            if reasoning:
                self._texts.append(reasoning)
            return changed
        text = ""
        if reasoning:
            self._texts.append(reasoning)
            text = reasoning if self._in_think else "<think>" + reasoning
            self._in_think = True
        if self._in_think and (content or choice.get("finish_reason")):
            text += "</think>"
            self._in_think = False
        if text:
            delta["content"] = text + content
            return True
        return changed

    def finish(self) -> bytes:
        """Frames still owed once the upstream body ended (a held-back tag, a closing tag).

        Raises:
            UpstreamProtocolError: the upstream ended before finishing its answer.
        """
        if not self.done and self.finish_reason is None:
            raise UpstreamProtocolError("upstream ended the stream before it finished")
        tail = self._holdback + self._seam_pending + ("</think>" if self._in_think else "")
        self._seam, self._seam_pending = None, ""
        self._holdback = ""
        self._in_think = False
        return self._synthetic_frame(tail) if tail else b""

    def _synthetic_frame(self, text: str) -> bytes:
        template = self._template or {}
        return sse_frame(
            orjson.dumps(
                {
                    "id": template.get("id", "chatcmpl-relay"),
                    "object": "chat.completion.chunk",
                    "created": template.get("created", int(time.time())),
                    "model": template.get("model", self.model),
                    "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
                }
            )
        )

    @property
    def report(self) -> dict[str, Any] | None:
        """The upstream's usage report, when it sent one (validated by ``providers.usage``)."""
        return self._reported

    def completion_text(self) -> str:
        """Everything the model generated so far (content and reasoning), for counting."""
        return "".join(self._texts)

    def trailer(self, usage: Usage, extra: dict[str, Any]) -> bytes:
        """The final usage chunk (OpenAI's ``include_usage`` shape plus ``extra``) and [DONE]."""
        template = self._template or {}
        chunk = {
            "id": template.get("id", "chatcmpl-relay"),
            "object": "chat.completion.chunk",
            "created": template.get("created", int(time.time())),
            "model": template.get("model", self.model),
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            **extra,
        }
        return sse_frame(orjson.dumps(chunk)) + b"data: [DONE]\n\n"
