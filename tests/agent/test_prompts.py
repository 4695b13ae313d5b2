from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langchain_core.messages import HumanMessage

from agent.examples import classification_shots
from agent.guides import field_guide
from agent.llm_schemas import Classification
from agent.llm_schemas import FollowUps
from agent.views import scenario_index
from agent.views import scenario_json
from tests.agent.samples import SAMPLE


def test_shots_alternate_and_validate() -> None:
    shots = classification_shots()
    assert [type(m) for m in shots[:2]] == [HumanMessage, AIMessage]
    assert len(shots) % 2 == 0
    for answer in shots[1::2]:
        Classification.model_validate_json(str(answer.content))


def test_field_guide_describes_keys_in_plain_words() -> None:
    guide = field_guide(Classification)
    assert guide.startswith('- "operations": a list of objects (1 to 5).')
    assert (
        '  - "action": one of "details", "modification", "creation", "deletion", '
        '"general_conversation".' in guide
    )
    assert '  - "entity": text or null.' in guide
    assert "anyOf" not in guide and "$defs" not in guide
    assert '"questions": a list of text (exactly 3).' in field_guide(FollowUps)


def test_scenario_json_never_shows_photos_and_fits_the_budget() -> None:
    text = scenario_json(SAMPLE, 4000)
    assert len(text) <= 4000
    assert "iVBOR" not in text and "photo" not in text and "image" not in text
    view = json.loads(text)
    assert view["characters"][0] == {
        "id": SAMPLE["characters"][0]["id"],
        "name": "Aria Stone",
        "role": "protagonist",
        "gender": "female",
        "appearance": "Salt-white hair.",
        "backstory": "Raised on the docks.",
    }


def test_scenario_json_clips_long_fields() -> None:
    big = {**SAMPLE, "backstory": "x" * 50_000}
    text = scenario_json(big, 4000)
    assert len(text) <= 4000
    json.loads(text)


def test_scenario_index() -> None:
    index = scenario_index(SAMPLE)
    assert "Aria Stone (protagonist, female)" in index and "Port Veil" in index
    assert scenario_index({}) == "The scenario is empty."
