"""What the agent shows a model of one entity: the text fields of its kind, never photos."""

from __future__ import annotations

from agent.views import entity_view


def test_a_scene_is_shown_with_its_own_fields() -> None:
    scene = {
        "id": "s1",
        "title": "The lamp room",
        "description": "Juno finds the ledger.",
        "location": "l1",
        "photo": "data:image/png;base64,AAAA",
    }
    assert entity_view(scene, "scene") == {
        "title": "The lamp room",
        "description": "Juno finds the ledger.",
        "location": "l1",
    }


def test_characters_and_locations_keep_their_fields() -> None:
    character = {"name": "Wick", "role": "keeper", "photo": "x", "visualDescription": "tall"}
    location = {"name": "Lantern Row", "visualDescription": "wet cobbles", "role": "x"}
    assert entity_view(character, "character") == {"name": "Wick", "role": "keeper"}
    assert entity_view(location, "location") == {
        "name": "Lantern Row",
        "visualDescription": "wet cobbles",
    }
