from __future__ import annotations

from agent.llm_schemas import Action
from agent.llm_schemas import Operation
from agent.llm_schemas import Target
from agent.targets import resolve
from tests.agent.samples import SAMPLE

ARIA = SAMPLE["characters"][0]["id"]
MIRA = "legacy-id-mira"
BRAM = "legacy-id-bram"


def _op(prompt: str, entity: str | None = None, target: Target = "character") -> Operation:
    action: Action = "modification"
    return Operation(action=action, target=target, prompt=prompt, entity=entity)


def test_entity_name_from_classifier_wins() -> None:
    assert resolve(_op("rename her to Ann", "Mira"), SAMPLE).ids == (MIRA,)


def test_first_name_and_alias_match() -> None:
    assert resolve(_op("make Aria taller"), SAMPLE).ids == (ARIA,)
    assert resolve(_op("give the Gull a scar"), SAMPLE).ids == (BRAM,)


def test_role_and_synonym_match() -> None:
    assert resolve(_op("rename the hero to Lyra", "hero"), SAMPLE).ids == (ARIA,)
    assert resolve(_op("make the villain scarier"), SAMPLE).ids == (BRAM,)


def test_pronoun_with_one_matching_gender_resolves() -> None:
    assert resolve(_op("change his name"), SAMPLE).ids == (BRAM,)


def test_pronoun_with_several_matching_genders_is_ambiguous() -> None:
    found = resolve(_op("change her name"), SAMPLE)
    assert not found.resolved and found.referenced
    assert {c["id"] for c in found.candidates} == {ARIA, MIRA}


def test_no_reference_with_several_entities_is_ambiguous() -> None:
    found = resolve(_op("rename the character"), SAMPLE)
    assert not found.resolved and len(found.candidates) == 3


def test_single_entity_needs_no_reference() -> None:
    assert resolve(_op("rename it", target="location"), SAMPLE).ids == ("loc-port",)


def test_all_characters() -> None:
    assert resolve(_op("make all characters older"), SAMPLE).ids == (ARIA, MIRA, BRAM)


def test_only_the_operation_text_is_searched() -> None:
    op = _op("rename the hero to Lyra", None)
    assert resolve(op, SAMPLE, "rename the hero to Lyra and describe Bram").ids == (ARIA,)


def test_empty_prompt_falls_back_to_message() -> None:
    assert resolve(_op(""), SAMPLE, "make Mira younger").ids == (MIRA,)


def test_no_entities() -> None:
    found = resolve(_op("rename her"), {"characters": []})
    assert not found.resolved and found.candidates == ()
