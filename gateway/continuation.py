"""Finishing an answer whose upstream died mid-stream, instead of cutting it short.

StoryWriter's stories are long generations, and the frontend's story generator ignores the
error frame that ends a failed stream: a writer would keep a half story that looks
finished. So when a stream fails after content was relayed (connection reset, read timeout
between chunks, malformed chunk, an in-band upstream error), the gateway asks again - the
same provider after a short backoff, or another serving the model - for the rest of the
same answer, and relays only the new text on the same client stream.

How to ask for the rest depends on the upstream (``[[providers]] continuation``): with
``prefill`` the answer so far goes as a final assistant message that the server extends
(llama.cpp, LM Studio and Ollama do so by themselves; vLLM is told with
``continue_final_message``); with ``instruction`` it is followed by a user message asking
to go on, and the relay drops whatever the model repeats at the seam. Structured output
(JSON schema, tools) is never continued: a JSON document cannot be resumed by guessing.
Each continuation is bounded (``[server] stream_continuations``), counted, logged and
paid for like the first attempt, within the request's credit hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.settings import ContinuationMode
from providers.upstream import Upstream

__all__ = ["INSTRUCTION", "ContinuationPolicy", "continuation_payload", "is_structured"]

INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped - in the "
    "middle of a word or sentence if that is where it stopped - without repeating anything "
    "and without any comment: write only the rest."
)
#: Fields that ask for structured output; such requests are never continued.
_STRUCTURED = ("response_format", "tools", "tool_choice", "functions", "function_call")


def is_structured(payload: Mapping[str, Any]) -> bool:
    """Whether a request asks for structured output (JSON schema, tool calls)."""
    return any(payload.get(name) for name in _STRUCTURED)


@dataclass(frozen=True, slots=True)
class ContinuationPolicy:
    """How many continuations a stream may have and how long to wait before each."""

    limit: int
    """``[server] stream_continuations``; 0 turns them off."""
    backoff_s: float
    """The pause before the first continuation, doubled for each next one."""

    def allows(self, done: int, payload: Mapping[str, Any], opted_out: bool) -> bool:
        """Whether a stream that already had ``done`` continuations may have another."""
        return not opted_out and done < self.limit and not is_structured(payload)

    def pause(self, done: int) -> float:
        """Seconds to wait before continuation number ``done + 1``."""
        return float(self.backoff_s * (2**done))


def continuation_payload(
    payload: Mapping[str, Any],
    answer_so_far: str,
    upstream: Upstream,
    max_tokens: int,
) -> dict[str, Any] | None:
    """The request that asks ``upstream`` for the rest of the answer (None: mode ``off``).

    Args:
        payload: The original request's fields (messages, sampling, max_tokens).
        answer_so_far: The content the client has received (or will, held-back tags too).
        upstream: Where the continuation goes (its ``continuation`` mode decides how).
        max_tokens: What the continuation may still generate.
    """
    mode: ContinuationMode = upstream.settings.continuation_mode
    if mode == "off":
        return None
    messages = list(payload.get("messages") or [])
    if answer_so_far:
        messages.append({"role": "assistant", "content": answer_so_far})
    body = {**payload, "messages": messages, "max_tokens": max_tokens}
    if not answer_so_far:
        return body  # nothing to extend: the same request again
    if mode == "instruction":
        messages.append({"role": "user", "content": INSTRUCTION})
    elif upstream.settings.kind == "vllm":
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return body
