"""Pure functions that merge model-proposed edits into a scenario by id.

The old backend wiped scenarios and collided ids (contract.md 9.9); here every rule that
keeps a writer's data safe is enforced by code, not by the prompt:

- entities are matched by ``id``; existing ids never change, new entities get UUID v4;
- photo and image fields (and ids) are never written from an edit;
- keys the service does not know are kept as they are;
- ``None`` or blank values in an edit mean "leave as is";
- inputs are never mutated: changed containers are copied, untouched ones are shared;
- the update sent to the frontend holds only the changed top-level keys, each complete,
  because the frontend applies it as a shallow merge (contract.md 8.2).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Set
from typing import Any

from agent.targets import entity_label

__all__ = [
    "CHARACTER_PROTECTED",
    "LOCATION_PROTECTED",
    "PROTECTED",
    "SCENARIO_PROTECTED",
    "SCENE_PROTECTED",
    "changed_fields",
    "edit_entities",
    "entity_by_id",
    "merge_entities",
    "merge_fields",
    "new_entity",
    "new_id",
    "rename_in_scenes",
    "scenario_changes",
]

CHARACTER_PROTECTED: frozenset[str] = frozenset(
    {"id", "photoId", "photoUrl", "photo_data", "photo_mime_type"}
)
"""Character fields an edit may never write."""
LOCATION_PROTECTED: frozenset[str] = frozenset(
    {"id", "imageId", "imageUrl", "image_data", "image_mime_type"}
)
"""Location fields an edit may never write."""
SCENE_PROTECTED: frozenset[str] = frozenset({"id"})
"""Scene fields an edit may never write."""
SCENARIO_PROTECTED: frozenset[str] = frozenset(
    {"id", "userId", "createdAt", "updatedAt", "imageId", "imageUrl", "promptSettings"}
)
"""Top-level scenario fields an edit may never write."""
PROTECTED: dict[str, frozenset[str]] = {
    "character": CHARACTER_PROTECTED,
    "location": LOCATION_PROTECTED,
    "scene": SCENE_PROTECTED,
}
"""The protected fields of each entity kind."""


def new_id() -> str:
    """Return a fresh UUID v4 string for a new entity."""
    return str(uuid.uuid4())


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def merge_fields(
    current: Mapping[str, Any], changes: Mapping[str, Any], *, protected: Set[str]
) -> dict[str, Any]:
    """Return ``current`` with ``changes`` applied, leaving protected and unknown keys alone.

    Nested mappings (such as ``writingStyle``) are merged field by field.

    Args:
        current: The object as stored; not mutated.
        changes: Proposed new values; ``None`` and blank strings are ignored.
        protected: Keys that are never written.

    Returns:
        A new dict (or an equal copy when nothing applies).
    """
    merged = dict(current)
    for key, value in changes.items():
        if key in protected or _is_blank(value):
            continue
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = merge_fields(old, value, protected=frozenset())
        elif isinstance(value, Mapping):
            merged[key] = {k: v for k, v in value.items() if not _is_blank(v)}
        else:
            merged[key] = value
    return merged


def new_entity(fields: Mapping[str, Any], *, protected: Set[str]) -> dict[str, Any]:
    """Build a new entity with a UUID v4 ``id`` from proposed fields.

    Args:
        fields: Proposed values; protected and blank ones are dropped, any ``id`` too.
        protected: Keys that are never written from a proposal.

    Returns:
        The new entity, ``id`` first.
    """
    return merge_fields({"id": new_id()}, fields, protected=protected | {"id"})


def entity_by_id(entities: Any, entity_id: str) -> dict[str, Any] | None:
    """Return the entity with ``entity_id`` from a list that may hold anything."""
    if isinstance(entities, list):
        for entity in entities:
            if isinstance(entity, dict) and entity.get("id") == entity_id:
                return entity
    return None


def merge_entities(
    entities: Sequence[Any] | None,
    patches: Sequence[Mapping[str, Any]],
    *,
    protected: Set[str],
) -> list[Any]:
    """Merge patches into a list of entities by ``id``.

    A patch whose ``id`` names an existing entity updates it in place; any other patch
    (no id, or an id the model made up) becomes a new entity with a fresh UUID v4, so a
    model can never choose or collide ids.

    Args:
        entities: The stored list (``None`` counts as empty); not mutated.
        patches: Proposed changes, each a mapping of fields.
        protected: Keys never written (ids and photo/image fields).

    Returns:
        A new list: the same entities in the same order, then the new ones.
    """
    merged = list(entities or [])
    index = {
        entity["id"]: position
        for position, entity in enumerate(merged)
        if isinstance(entity, Mapping) and isinstance(entity.get("id"), str)
    }
    for patch in patches:
        patch_id = patch.get("id")
        if isinstance(patch_id, str) and patch_id in index:
            position = index[patch_id]
            merged[position] = merge_fields(merged[position], patch, protected=protected | {"id"})
        else:
            merged.append(new_entity(patch, protected=protected))
    return merged


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def rename_in_scenes(scenes: Any, kind: str, renames: Mapping[str, str]) -> Any:
    """Follow renamed characters or locations into the scenes that name them.

    Scenes refer to characters and to their location by *name* (contract.md 8.5), so a
    rename that left them alone would orphan the references in the editor. Names match
    ignoring case and spacing; anything that is not a name (odd shapes, unknown entries)
    stays as it is.

    Args:
        scenes: The scenario's ``scenes`` value (anything; only a list is changed).
        kind: ``"character"`` (updates ``scenes[].characters``) or ``"location"``
            (``scenes[].location``).
        renames: Old name -> new name.

    Returns:
        ``scenes`` itself when nothing refers to a renamed entity, else a new list in which
        only the scenes that changed are copies.
    """
    if not renames or not isinstance(scenes, list):
        return scenes
    new_names = {_name_key(old): new for old, new in renames.items()}

    def renamed(value: Any) -> Any:
        return new_names.get(_name_key(value), value) if isinstance(value, str) else value

    result: list[Any] = []
    for scene in scenes:
        updated = scene
        if isinstance(scene, dict):
            if kind == "character" and isinstance(scene.get("characters"), list):
                names = [renamed(name) for name in scene["characters"]]
                if names != scene["characters"]:
                    updated = {**scene, "characters": names}
            elif kind == "location" and renamed(scene.get("location")) != scene.get("location"):
                updated = {**scene, "location": renamed(scene["location"])}
        result.append(updated)
    return result if any(a is not b for a, b in zip(result, scenes, strict=True)) else scenes


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Return the keys whose values differ between two versions of an object, in order."""
    return [key for key, value in after.items() if key not in before or before[key] != value]


def scenario_changes(original: Mapping[str, Any], working: Mapping[str, Any]) -> dict[str, Any]:
    """Return the top-level keys of ``working`` that differ from ``original``, each whole.

    This is the ``updated_scenario`` payload: applied as ``{...original, ...payload}`` it
    yields ``working`` (the agent never removes top-level keys).

    Args:
        original: The scenario the turn started from.
        working: The scenario after the turn's edits.

    Returns:
        The changed keys with their complete new values.
    """
    return {key: working[key] for key in changed_fields(original, working)}


def edit_entities(
    scenario: Mapping[str, Any],
    kind: str,
    key: str,
    changes: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """Apply field changes to entities by id; scenes follow renamed characters/locations.

    Args:
        scenario: The scenario; not mutated.
        kind: ``character``, ``location`` or ``scene``.
        key: The scenario list (``characters``...).
        changes: Entity id -> proposed field values (protected and blank ones ignored).

    Returns:
        The new scenario (``scenario`` itself when nothing changed) and, per changed
        entity, its label and the fields that changed.
    """
    items = scenario.get(key)
    notes: list[tuple[str, list[str]]] = []
    renames: dict[str, str] = {}
    for entity_id, fields in changes.items():
        before = entity_by_id(items, entity_id)
        if before is None:
            continue
        items = merge_entities(items, [{**fields, "id": entity_id}], protected=PROTECTED[kind])
        after = entity_by_id(items, entity_id) or before
        if changed := changed_fields(before, after):
            notes.append((entity_label(after), changed))
        old_name, new_name = before.get("name"), after.get("name")
        if isinstance(old_name, str) and isinstance(new_name, str) and old_name != new_name:
            renames[old_name] = new_name
    if not notes:
        return dict(scenario), []
    working = {**scenario, key: items}
    scenes = rename_in_scenes(working.get("scenes"), kind, renames)
    if scenes is not working.get("scenes"):
        working["scenes"] = scenes  # scenes name characters and locations: keep them pointing
    return working, notes
