"""Structured JSON output without native tool calling.

The embedded model produces no tool calls but honours ``response_format`` json_schema
through a grammar (offline.md 2), so every structured step asks for JSON: with
``response_format`` when the upstream supports it, and always with a plain-words field
guide in the prompt (a grammar constrains syntax, only the prompt tells a small model what
the fields mean). The reply is parsed and validated with pydantic; an invalid reply gets
one repair attempt that quotes the problem, then ``AgentOutputError``.

``response_format`` travels in the request's ``extra_body`` rather than as langchain's
``response_format`` argument: the latter switches langchain-openai to the SDK's ``parse``
path, which raises ``LengthFinishReasonError`` when a small model rambles until
``max_tokens``. Through ``extra_body`` a truncated answer is just invalid JSON, repaired
or reported like any other.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage
from pydantic import BaseModel
from pydantic import ValidationError

from agent.context import AgentContext
from agent.errors import AgentOutputError
from agent.errors import AgentRefusalError
from agent.guides import field_guide
from agent.prompts import JSON_ONLY
from agent.prompts import REPAIR
from agent.prompts import fill

__all__ = ["ask_structured", "parse_json_object", "response_format"]

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)
_MAX_ECHO = 4000


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def response_format(model: type[BaseModel], name: str) -> dict[str, Any]:
    """Return the OpenAI ``response_format`` for a pydantic model (non-strict json_schema).

    Args:
        model: The expected output model.
        name: Schema name (letters, digits, underscores).
    """
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": _schema(model), "strict": False},
    }


def _call_kwargs(
    context: AgentContext,
    llm: BaseChatModel,
    model: type[BaseModel],
    name: str,
    max_tokens: int | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    if context.structured_temperature is not None:
        kwargs["temperature"] = context.structured_temperature  # overrides the model's
    if context.supports_json_schema:
        # Keep any extra_body the pool configured (an invocation argument replaces it).
        extra = dict(getattr(llm, "extra_body", None) or {})
        kwargs["extra_body"] = {**extra, "response_format": response_format(model, name)}
    return kwargs


def parse_json_object(text: str) -> Any:
    """Parse the JSON object in a model reply, tolerating code fences and chatter around it.

    Raises:
        ValueError: No JSON could be decoded.
    """
    text = text.strip()
    if fenced := _FENCE.search(text):
        text = fenced.group(1)
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start == -1 or end <= start:
            raise
        return json.loads(text[start : end + 1])


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the object"
        return f"{where}: {first['msg']}"
    return "it is not valid JSON"


def _refused(reply: BaseMessage) -> bool:
    if reply.additional_kwargs.get("refusal"):
        return True
    content = reply.content
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "refusal" for block in content
    )


def _with_guide(messages: Sequence[BaseMessage], model: type[BaseModel]) -> list[BaseMessage]:
    instructions = fill(JSON_ONLY, guide=field_guide(model))
    head = messages[0] if messages else None
    if isinstance(head, SystemMessage) and isinstance(head.content, str):
        return [SystemMessage(head.content + instructions), *messages[1:]]
    return [SystemMessage(instructions.strip()), *messages]


async def ask_structured(
    context: AgentContext,
    model: type[ModelT],
    messages: Sequence[BaseMessage],
    *,
    name: str,
    max_repairs: int = 1,
    validation_context: Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
    understood: str | None = None,
    suggestion: str | None = None,
    guide: bool = True,
    sampling: Mapping[str, Any] | None = None,
) -> ModelT:
    """Ask the model for JSON matching ``model`` and return it validated.

    Each call (the repair included) leases its own pool slot. With
    ``context.supports_json_schema`` the request carries ``response_format`` json_schema
    (in ``extra_body``, see the module docstring), which suits OpenAI-compatible models.

    Args:
        context: Agent context (model source, model name, json_schema support).
        model: The pydantic model the answer must validate against.
        messages: The prompt; the schema is appended to its system message.
        name: Short task name, used as schema name and in error messages.
        max_repairs: How many times an invalid reply is sent back for correction.
        validation_context: Pydantic validation context (e.g. names already taken).
        max_tokens: Completion limit of each call; None keeps the model's own.
        understood: What the step was for, in words, for the error message.
        suggestion: What the writer could try instead, for the error message.
        guide: Describe the keys in the system prompt; off when the prompt shows a worked
            example instead (a small model copies a guide's words into its answer).
        sampling: Further sampling parameters (e.g. ``frequency_penalty``).

    Returns:
        The validated answer.

    Raises:
        AgentOutputError: The reply stayed invalid after the repairs.
        AgentRefusalError: The model refused.
    """
    prompt = _with_guide(messages, model) if guide else list(messages)
    request = prompt
    for attempt in range(max_repairs + 1):
        async with context.models.chat_model(context.model) as llm:
            kwargs = {**_call_kwargs(context, llm, model, name, max_tokens), **(sampling or {})}
            reply = await llm.ainvoke(request, **kwargs)
        if _refused(reply):
            raise AgentRefusalError(name)
        text = str(reply.text)
        try:
            return model.model_validate(parse_json_object(text), context=validation_context)
        except ValueError as exc:  # JSONDecodeError and ValidationError are ValueErrors
            problem = _problem(exc)
        logger.info("invalid %s output (attempt %d): %s", name, attempt + 1, problem)
        request = [
            *prompt,
            AIMessage(text[:_MAX_ECHO]),
            HumanMessage(fill(REPAIR, problem=problem)),
        ]
    raise AgentOutputError(name, understood=understood, suggestion=suggestion)
