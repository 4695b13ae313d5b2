from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage

from agent import AgentContext
from agent import AgentOutputError
from agent import AgentRefusalError
from agent.llm_schemas import Classification
from agent.structured import ask_structured
from agent.structured import parse_json_object
from tests.agent.fakes import FakeModels
from tests.agent.fakes import Refusal

PROMPT = [SystemMessage("Classify."), HumanMessage("Rename Aria")]
VALID = '{"operations":[{"action":"modification","target":"character","prompt":"Rename Aria"}]}'


async def test_valid_json_schema_answer(models: FakeModels, context: AgentContext) -> None:
    models.script("classification", VALID)
    result = await ask_structured(context, Classification, PROMPT, name="classification")
    assert result.operations[0].target == "character"
    (call,) = models.calls
    fmt = call.kwargs["extra_body"]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "classification"
    assert fmt["json_schema"]["schema"] == Classification.model_json_schema()
    assert call.system.startswith("Classify.\n\nReply with one JSON object only")
    assert '- "operations": a list of objects (1 to 5).' in call.system
    assert call.model == "scripted-model"
    assert models.active == 0


async def test_prompt_only_mode_sends_no_response_format(models: FakeModels) -> None:
    context = AgentContext(models=models, supports_json_schema=False)
    models.script("json", "Sure! ```json\n" + VALID + "\n```")
    result = await ask_structured(context, Classification, PROMPT, name="classification")
    assert len(result.operations) == 1
    assert models.calls[0].kwargs == {"temperature": 0.0}  # no response_format
    assert models.calls[0].model is None


async def test_structured_temperature_none_keeps_the_models_own(models: FakeModels) -> None:
    context = AgentContext(models=models, structured_temperature=None)
    models.script("classification", VALID)
    await ask_structured(context, Classification, PROMPT, name="classification")
    assert "temperature" not in models.calls[0].kwargs
    assert "response_format" in models.calls[0].kwargs["extra_body"]


async def test_malformed_then_repaired(models: FakeModels, context: AgentContext) -> None:
    models.script("classification", '{"operations": [', VALID)
    result = await ask_structured(context, Classification, PROMPT, name="classification")
    assert result.operations[0].action == "modification"
    first, repair = models.calls
    assert repair.messages[:-2] == first.messages
    assert repair.messages[-2].content == '{"operations": ['
    assert "not valid JSON" in repair.human


async def test_invalid_schema_repair_names_the_field(
    models: FakeModels, context: AgentContext
) -> None:
    bad = json.dumps({"operations": [{"prompt": "x", "action": "dance", "target": "character"}]})
    models.script("classification", bad, VALID)
    await ask_structured(context, Classification, PROMPT, name="classification")
    assert "operations.0.action" in models.calls[1].human


async def test_malformed_twice_raises(models: FakeModels, context: AgentContext) -> None:
    models.script("classification", "nope", "still nope")
    with pytest.raises(AgentOutputError) as caught:
        await ask_structured(context, Classification, PROMPT, name="classification")
    assert "classification step" in caught.value.user_message
    assert len(models.calls) == 2 and models.active == 0


async def test_no_repair_when_disabled(models: FakeModels, context: AgentContext) -> None:
    models.script("classification", "nope")
    with pytest.raises(AgentOutputError):
        await ask_structured(context, Classification, PROMPT, name="classification", max_repairs=0)
    assert len(models.calls) == 1


async def test_refusal_is_not_repaired(models: FakeModels, context: AgentContext) -> None:
    models.script("classification", Refusal())
    with pytest.raises(AgentRefusalError):
        await ask_structured(context, Classification, PROMPT, name="classification")
    assert len(models.calls) == 1


def test_parse_json_object_tolerates_chatter() -> None:
    assert parse_json_object('Here you go: {"a": 1} hope it helps') == {"a": 1}
    with pytest.raises(ValueError):
        parse_json_object("no json here")
