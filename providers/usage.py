"""The tokens a call used: the upstream's report when it is plausible, else our own count.

One place for the rule every caller shares - the proxy's streams and JSON answers, and the
agent's calls - so that they can never drift apart:

- A count the upstream reports is used when it is an integer within reason (not negative,
  not a bool, not beyond the ``max_tokens`` the upstream was sent plus a little, not absurd
  for the prompt). Anything else is replaced by the service's own count and logged once
  per upstream: a buggy or hostile upstream must never break a stream or a settlement.
- Counting needs the tokenizer (~40 MiB, loaded on first need): ``now`` answers without
  waiting when it can (usage reported, or the tokenizer loaded and the prompt small);
  ``counted`` loads it off the event loop first. Counting never fails a settlement: if the
  tokenizer cannot load, the pre-call estimate stands (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.tokens import count_message_tokens
from providers.tokens import count_text_tokens
from providers.tokens import load_tokenizer
from providers.tokens import tokenizer_loaded

__all__ = ["Usage", "UsageSource"]

log = logging.getLogger(__name__)

#: Prompts longer than this are tokenised in a thread so the event loop keeps serving.
_INLINE_COUNT_CHARS = 200_000
#: Upstreams may overshoot ``max_tokens`` by a token or a closing tag; more is not plausible.
_COMPLETION_SLACK = 64
#: No upstream reports a prompt far beyond a third of its bytes (our estimate) times this.
_PROMPT_FACTOR = 16
_PROMPT_SLACK = 200_000
_ABSURD = 2**31
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call."""

    prompt_tokens: int
    completion_tokens: int
    reported: bool
    """Both counts are the upstream's own."""

    @property
    def total_tokens(self) -> int:  # noqa: D102
        return self.prompt_tokens + self.completion_tokens


def _count(value: Any, limit: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


@dataclass(frozen=True, slots=True)
class UsageSource:
    """What one call's usage is worked out from, besides the upstream's report."""

    provider: str
    """The upstream's name (for the log line about implausible reports)."""
    model: str
    """Decides the tokenizer."""
    messages: Sequence[Mapping[str, Any]]
    """The prompt, counted when the upstream does not report it."""
    prompt_estimate: int
    """The pre-call estimate (``providers.tokens.estimate_prompt_tokens``): the fallback."""
    max_tokens: int | None = None
    """The completion limit the upstream was sent, when known."""

    def reported(self, report: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
        """The plausible ``(prompt, completion)`` of an upstream's report (None: count it)."""
        if not isinstance(report, Mapping):
            return None, None
        prompt_limit = max(
            self.prompt_estimate * _PROMPT_FACTOR, self.prompt_estimate + _PROMPT_SLACK
        )
        completion_limit = (
            self.max_tokens + _COMPLETION_SLACK if self.max_tokens is not None else _ABSURD
        )
        raw_prompt = report.get("prompt_tokens")
        raw_completion = report.get("completion_tokens")
        prompt = _count(raw_prompt, min(prompt_limit, _ABSURD))
        completion = _count(raw_completion, min(completion_limit, _ABSURD))
        if (prompt is None and raw_prompt is not None) or (
            completion is None and raw_completion is not None
        ):
            self._warn(raw_prompt, raw_completion)
        return prompt, completion

    def _warn(self, prompt: Any, completion: Any) -> None:
        if self.provider in _warned:
            return
        _warned.add(self.provider)
        log.warning(
            "upstream %s reported implausible usage (prompt_tokens=%.40r, completion_tokens="
            "%.40r): the service counts the tokens itself (logged once per upstream)",
            self.provider,
            prompt,
            completion,
        )

    def _inline(self) -> bool:
        if not tokenizer_loaded(self.model):
            return False
        size = sum(len(str(m.get("content", ""))) for m in self.messages)
        return size <= _INLINE_COUNT_CHARS

    def now(self, report: Mapping[str, Any] | None, completion_text: str) -> Usage | None:
        """The usage without waiting, or None when counting must load the tokenizer first."""
        prompt, completion = self.reported(report)
        if prompt is not None and completion is not None:
            return Usage(prompt, completion, reported=True)
        if not self._inline():
            return None
        if prompt is None:
            prompt = count_message_tokens(self.messages, self.model)
        if completion is None:
            completion = count_text_tokens(completion_text, self.model)
        return Usage(prompt, completion, reported=False)

    async def counted(self, report: Mapping[str, Any] | None, completion_text: str) -> Usage:
        """The usage, loading the tokenizer off the event loop if counting needs it."""
        found = self.now(report, completion_text)
        if found is not None:
            return found
        prompt, completion = self.reported(report)
        try:
            await load_tokenizer(self.model)
            if prompt is None:
                prompt = await asyncio.to_thread(count_message_tokens, self.messages, self.model)
            if completion is None:
                completion = await asyncio.to_thread(count_text_tokens, completion_text, self.model)
        except Exception:
            log.exception("counting the tokens of a call to %s failed", self.provider)
            if prompt is None:
                prompt = self.prompt_estimate
            if completion is None:
                completion = (len(completion_text.encode()) + 2) // 3
        return Usage(prompt, completion, reported=False)
