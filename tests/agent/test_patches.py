from __future__ import annotations

import copy
import uuid
from typing import Any

from agent.patches import CHARACTER_PROTECTED
from agent.patches import LOCATION_PROTECTED
from agent.patches import SCENARIO_PROTECTED
from agent.patches import changed_fields
from agent.patches import entity_by_id
from agent.patches import merge_entities
from agent.patches import merge_fields
from agent.patches import new_entity
from agent.patches import rename_in_scenes
from agent.patches import scenario_changes
from tests.agent.samples import SAMPLE


def _is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def test_merge_by_id_updates_only_named_fields() -> None:
    characters = copy.deepcopy(SAMPLE["characters"])
    merged = merge_entities(
        characters, [{"id": "legacy-id-mira", "name": "Mirabel"}], protected=CHARACTER_PROTECTED
    )
    assert merged[1] == {**SAMPLE["characters"][1], "name": "Mirabel"}
    assert merged[0] is characters[0] and merged[2] is characters[2]
    assert characters == SAMPLE["characters"], "input mutated"


def test_photo_fields_and_ids_are_never_written() -> None:
    aria = SAMPLE["characters"][0]
    patch = {
        "id": aria["id"],
        "photo_data": "",
        "photoUrl": "http://evil",
        "photoId": None,
        "photo_mime_type": "text/html",
        "appearance": "Grey eyes.",
    }
    merged = merge_entities([aria], [patch], protected=CHARACTER_PROTECTED)
    assert merged == [{**aria, "appearance": "Grey eyes."}]


def test_location_image_fields_are_protected() -> None:
    port = SAMPLE["locations"][0]
    merged = merge_entities(
        [port],
        [{"id": "loc-port", "image_data": "x", "name": "Veil"}],
        protected=LOCATION_PROTECTED,
    )
    assert merged[0]["image_data"] == port["image_data"]
    assert merged[0]["name"] == "Veil"


def test_unknown_keys_survive() -> None:
    aria = SAMPLE["characters"][0]
    merged = merge_fields(aria, {"name": "Ari"}, protected=CHARACTER_PROTECTED)
    assert merged["favouriteColour"] == "teal"


def test_blank_and_none_mean_unchanged() -> None:
    merged = merge_fields(
        {"name": "A", "role": "hero"}, {"name": "  ", "role": None}, protected=frozenset()
    )
    assert merged == {"name": "A", "role": "hero"}


def test_new_entities_get_uuid4_and_model_ids_are_ignored() -> None:
    existing = copy.deepcopy(SAMPLE["characters"])
    merged = merge_entities(
        existing,
        [{"name": "Nell"}, {"id": "made-up-by-model", "name": "Otto"}, {"id": existing[0]["id"]}],
        protected=CHARACTER_PROTECTED,
    )
    assert [m["id"] for m in merged[:3]] == [e["id"] for e in existing]
    new = merged[3:]
    assert [n["name"] for n in new] == ["Nell", "Otto"]
    assert all(_is_uuid4(n["id"]) for n in new)
    assert len({n["id"] for n in merged}) == len(merged)


def test_new_entity_drops_protected_fields() -> None:
    entity = new_entity(
        {"id": "x", "name": "Nell", "photo_data": "abc", "alias": None},
        protected=CHARACTER_PROTECTED,
    )
    assert list(entity) == ["id", "name"] and _is_uuid4(entity["id"])


def test_nested_style_is_merged_field_by_field() -> None:
    merged = merge_fields(
        SAMPLE, {"writingStyle": {"tone": "grim", "genre": None}}, protected=SCENARIO_PROTECTED
    )
    assert merged["writingStyle"] == {**SAMPLE["writingStyle"], "tone": "grim"}


def test_scenario_protected_keys() -> None:
    merged = merge_fields(
        SAMPLE,
        {"id": "new", "userId": "x", "imageUrl": "y", "title": "T"},
        protected=SCENARIO_PROTECTED,
    )
    assert changed_fields(SAMPLE, merged) == ["title"]


def test_scenario_changes_holds_only_changed_keys_complete() -> None:
    working: dict[str, Any] = dict(SAMPLE)
    working["characters"] = merge_entities(
        SAMPLE["characters"], [{"name": "Nell"}], protected=CHARACTER_PROTECTED
    )
    working["notes"] = SAMPLE["notes"]  # same value: not a change
    changes = scenario_changes(SAMPLE, working)
    assert list(changes) == ["characters"]
    assert changes["characters"][:3] == SAMPLE["characters"]
    assert {**SAMPLE, **changes} == working


def test_scenario_changes_of_new_keys() -> None:
    assert scenario_changes({}, {"title": "T"}) == {"title": "T"}
    assert scenario_changes(SAMPLE, dict(SAMPLE)) == {}


def test_entity_by_id_tolerates_junk() -> None:
    assert entity_by_id(None, "a") is None
    assert entity_by_id(["x", {"id": "a"}], "a") == {"id": "a"}


def test_merge_tolerates_missing_list_and_junk_items() -> None:
    merged = merge_entities(None, [{"name": "A"}], protected=CHARACTER_PROTECTED)
    assert len(merged) == 1
    merged = merge_entities(["junk", {"name": "no id"}], [{"name": "B"}], protected=frozenset())
    assert merged[:2] == ["junk", {"name": "no id"}] and merged[2]["name"] == "B"


def test_renames_follow_into_the_scenes_that_name_them() -> None:
    scenes: list[Any] = [
        {"id": "s1", "characters": ["Aria Stone", "Bram"], "location": "Port Veil", "x": 1},
        {"id": "s2", "characters": ["Bram"], "location": "The Reef"},
        "not a scene",
        {"id": "s3", "characters": "Aria Stone", "location": 7},
    ]
    renamed = rename_in_scenes(scenes, "character", {"Aria Stone": "Lyra"})
    assert renamed[0] == {**scenes[0], "characters": ["Lyra", "Bram"]}
    assert renamed[1] is scenes[1] and renamed[2] == "not a scene" and renamed[3] is scenes[3]
    assert scenes[0]["characters"] == ["Aria Stone", "Bram"], "the input is never mutated"
    # Case and spacing do not matter; a location rename touches only scenes[].location.
    moved = rename_in_scenes(scenes, "location", {"port  VEIL": "New Veil"})
    assert moved[0]["location"] == "New Veil" and moved[0]["characters"] == scenes[0]["characters"]
    assert moved[1] is scenes[1]
    # Nothing to follow: the very same list comes back, so no "scenes" change is reported.
    assert rename_in_scenes(scenes, "character", {"Nobody": "Someone"}) is scenes
    assert rename_in_scenes(None, "character", {"Aria Stone": "Lyra"}) is None
