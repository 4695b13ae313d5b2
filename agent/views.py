"""What the model is shown of a scenario: text fields only, within a character budget.

Scenarios can carry megabytes of base64 photos (contract.md 8.1); none of that may reach
a prompt, both for cost and because a small local model has a context of a few thousand
tokens. Ids are shown for characters and locations so explanations can stay precise, but
edits never take ids from the model (see ``agent.patches``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["entity_view", "scenario_index", "scenario_json"]

_TOP_TEXT = ("title", "synopsis", "storyarc", "backstory", "notes")
_STYLE = ("style", "genre", "tone", "communicationStyle", "theme", "other", "language")
_CHARACTER = ("name", "alias", "role", "gender", "appearance", "backstory", "extraInfo")
_LOCATION = ("name", "visualDescription", "background", "extraInfo")
_SCENE = ("title", "description", "characters", "location", "time")
_MAX_ITEMS = 40
_FIELD_LIMITS = (2000, 600, 200, 60)


def _clip(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value


def _pick(source: Any, keys: tuple[str, ...], limit: int) -> dict[str, Any]:
    if not isinstance(source, Mapping):
        return {}
    return {k: _clip(source[k], limit) for k in keys if source.get(k) not in (None, "", [])}


def entity_view(entity: Mapping[str, Any], kind: str, limit: int = 2000) -> dict[str, Any]:
    """Return the text fields of a character or location (no photos).

    Args:
        entity: The stored entity.
        kind: ``character`` or ``location``.
        limit: Maximum characters per field.
    """
    return _pick(entity, _CHARACTER if kind == "character" else _LOCATION, limit)


def _view(scenario: Mapping[str, Any], limit: int) -> dict[str, Any]:
    view = _pick(scenario, _TOP_TEXT, limit)
    if style := _pick(scenario.get("writingStyle"), _STYLE, limit):
        view["writingStyle"] = style
    for key, kind in (("characters", "character"), ("locations", "location")):
        items = scenario.get(key)
        if isinstance(items, list) and items:
            view[key] = [
                {"id": item.get("id"), **entity_view(item, kind, limit)}
                for item in items[:_MAX_ITEMS]
                if isinstance(item, Mapping)
            ]
    scenes = scenario.get("scenes")
    if isinstance(scenes, list) and scenes:
        view["scenes"] = [_pick(s, _SCENE, limit) for s in scenes[:_MAX_ITEMS]]
    return view


def scenario_json(scenario: Mapping[str, Any], max_chars: int) -> str:
    """Return the scenario's text content as JSON of at most about ``max_chars`` characters.

    Long fields are clipped harder until the JSON fits; as a last resort the text is cut.

    Args:
        scenario: The stored scenario (any shape; non-text fields are ignored).
        max_chars: Character budget.
    """
    text = "{}"
    for limit in _FIELD_LIMITS:
        text = json.dumps(_view(scenario, limit), ensure_ascii=False)
        if len(text) <= max_chars:
            return text
    return text[:max_chars]


def scenario_index(scenario: Mapping[str, Any]) -> str:
    """Return a one-paragraph summary: title, characters and locations by name.

    The classifier only needs to know what exists, not the full text.
    """
    lines = []
    if isinstance(title := scenario.get("title"), str) and title:
        lines.append(f"Title: {_clip(title, 200)}")
    for key, label in (("characters", "Characters"), ("locations", "Locations")):
        items = [i for i in scenario.get(key) or [] if isinstance(i, Mapping)]
        if items:
            names = []
            for item in items[:_MAX_ITEMS]:
                detail = ", ".join(
                    str(item[k]) for k in ("role", "gender") if item.get(k) not in (None, "")
                )
                name = _clip(item.get("name") or "(unnamed)", 80)
                names.append(f"{name} ({_clip(detail, 80)})" if detail else str(name))
            lines.append(f"{label}: " + "; ".join(names))
    return "\n".join(lines) if lines else "The scenario is empty."
