"""A fake model pool for agent tests: it serves a scripted fake chat model.

The fake answers each LLM call from a per-task script (classification, character_edit,
prose, ...): the schema name of the request's ``response_format``, or ``json`` for any
structured call in prompt-only mode. Replies can be text, a refusal, an exception, a call
that hangs until cancelled, or a token stream that can fail midway or wait on a gate, so
tests can observe frames while the model is still generating and check cancellation.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from contextlib import asynccontextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.messages import AIMessageChunk
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.outputs import ChatResult


@dataclass
class Refusal:
    """The model refuses (OpenAI ``refusal`` field, empty content)."""

    text: str = "I'm sorry, I can't help with that."


@dataclass
class Boom:
    """The call fails with an exception before any output."""

    exc: BaseException


@dataclass
class Stream:
    """A streamed answer, token by token."""

    tokens: Sequence[str]
    fail_after: int | None = None
    exc: BaseException = field(default_factory=lambda: ConnectionResetError("reset by sk-SECRET"))
    delay: float = 0.0
    gate: asyncio.Event | None = None


@dataclass
class Hang:
    """The call never answers (until cancelled); ``started`` is set when it begins."""

    started: asyncio.Event = field(default_factory=asyncio.Event)


Reply = str | Refusal | Boom | Stream | Hang


@dataclass
class Call:
    """One LLM call the agent made."""

    kind: str
    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    model: str | None

    @property
    def system(self) -> str:
        return str(self.messages[0].content)

    @property
    def human(self) -> str:
        return str(self.messages[-1].content)


class FakeModels:
    """A fake ``ChatModelSource``: leases are counted, calls recorded, replies scripted."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.calls: list[Call] = []
        self.active = 0
        self.max_active = 0
        self.requested_models: list[str | None] = []
        self.first_token = asyncio.Event()
        self.finished = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.enter_error: BaseException | None = None

    def script(self, kind: str, *replies: Reply) -> None:
        self.replies.setdefault(kind, []).extend(replies)

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]

    def take(self, kind: str, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Reply:
        self.calls.append(Call(kind, messages, kwargs, self.requested_models[-1]))
        queue = self.replies.get(kind)
        if not queue:
            if kind == "follow_ups":
                return json.dumps({"questions": ["Next one?", "Next two?", "Next three?"]})
            raise AssertionError(f"unscripted {kind} call")
        return queue.pop(0)

    @staticmethod
    def kind_of(messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> str:
        if fmt := kwargs.get("extra_body", {}).get("response_format"):
            return str(fmt["json_schema"]["name"])
        return "json" if "Reply with one JSON object only" in str(messages[0].content) else "prose"

    def chat_model(self, model: str | None) -> AbstractAsyncContextManager[BaseChatModel]:
        return self._lease(model)

    @asynccontextmanager
    async def _lease(self, model: str | None) -> AsyncIterator[BaseChatModel]:
        if self.enter_error is not None:
            raise self.enter_error
        self.requested_models.append(model)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            yield ScriptedChatModel(source=self)
        finally:
            self.active -= 1


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answers come from a ``FakeModels``."""

    source: Any

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("the agent must only use the async API")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        models: FakeModels = self.source
        reply = models.take(models.kind_of(messages, kwargs), messages, kwargs)
        await asyncio.sleep(0)
        if isinstance(reply, Hang):
            reply.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                models.cancelled.set()
                raise
        if isinstance(reply, Boom):
            raise reply.exc
        if isinstance(reply, Hang):
            raise AssertionError("unreachable: a hanging call is cancelled")
        if isinstance(reply, Refusal):
            message = AIMessage(content="", additional_kwargs={"refusal": reply.text})
        elif isinstance(reply, Stream):
            message = AIMessage("".join(reply.tokens))
        else:
            message = AIMessage(reply)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        models: FakeModels = self.source
        reply = models.take("prose", messages, kwargs)
        if isinstance(reply, Boom | Hang):
            raise AssertionError("use Stream for prose")
        stream = reply if isinstance(reply, Stream) else Stream(_words(str(reply)))
        try:
            for index, token in enumerate(stream.tokens):
                if stream.fail_after is not None and index == stream.fail_after:
                    raise stream.exc
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
                models.first_token.set()
                if stream.gate is not None and index == 0:
                    await stream.gate.wait()
                await asyncio.sleep(stream.delay)
            models.finished.set()
        except asyncio.CancelledError:
            models.cancelled.set()
            raise


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)
