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

__all__ = ["entity_brief", "entity_view", "scenario_index", "scenario_json", "story_brief"]

_TOP_TEXT = ("title", "synopsis", "storyarc", "backstory", "notes")
_STYLE = ("style", "genre", "tone", "communicationStyle", "theme", "other", "language")
_CHARACTER = ("name", "alias", "role", "gender", "appearance", "backstory", "extraInfo")
_LOCATION = ("name", "visualDescription", "background", "extraInfo")
_SCENE = ("title", "description", "characters", "location", "time")
_KEYS = {"character": _CHARACTER, "location": _LOCATION, "scene": _SCENE}
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
    """Return the text fields of a character, location or scene (no photos).

    Args:
        entity: The stored entity.
        kind: ``character``, ``location`` or ``scene``.
        limit: Maximum characters per field.
    """
    return _pick(entity, _KEYS[kind], limit)


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


def _line(label: str, value: Any, limit: int) -> str | None:
    if isinstance(value, str) and value.strip():
        return f"{label}: {_clip(' '.join(value.split()), limit)}"
    return None


def _names(items: Any, limit: int, with_role: bool = False) -> str:
    names = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = item.get("name") or item.get("title")
        if not isinstance(name, str) or not name.strip():
            continue
        role = item.get("role") if with_role else None
        names.append(f"{name} ({_clip(role, 40)})" if isinstance(role, str) and role else name)
    return str(_clip(", ".join(names[:_MAX_ITEMS]), limit))


def story_brief(scenario: Mapping[str, Any], max_chars: int = 1200) -> str:
    """Return the scenario as a few short lines, for a small model's prompt.

    A 135M model reads ~120 prompt tokens a second on one CPU thread and holds 2,048
    tokens: it gets the title, the main texts clipped, and who and where by name.

    Args:
        scenario: The stored scenario (any shape).
        max_chars: Character budget of the whole brief.
    """
    share = max(max_chars // 6, 60)
    lines = [
        _line("Title", scenario.get("title"), 120),
        _line("Synopsis", scenario.get("synopsis"), share),
        _line("Story arc", scenario.get("storyarc"), share),
        _line("Backstory", scenario.get("backstory"), share),
    ]
    style = scenario.get("writingStyle")
    if isinstance(style, Mapping):
        words = ", ".join(str(style[k]) for k in ("genre", "tone") if style.get(k))
        lines.append(f"Style: {_clip(words, 80)}" if words else None)
    for key, label, role in (("characters", "Characters", True), ("locations", "Locations", False)):
        if names := _names(scenario.get(key), share, role):
            lines.append(f"{label}: {names}")
    text = "\n".join(line for line in lines if line)
    return _clip(text, max_chars) if text else "The story is empty so far."


def entity_brief(entity: Mapping[str, Any], kind: str, limit: int = 240) -> str:
    """Return one entity as a few labelled lines (no photos), for a small model's prompt."""
    keys = _KEYS.get(kind, ())
    lines = []
    for key in keys:
        value = entity.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if line := _line(_LABELS.get(key, key), value, limit):
            lines.append(line)
    return "\n".join(lines)


_LABELS = {
    "name": "Name",
    "alias": "Alias",
    "role": "Role",
    "gender": "Gender",
    "appearance": "Appearance",
    "backstory": "Backstory",
    "extraInfo": "Notes",
    "visualDescription": "Looks",
    "background": "Background",
    "title": "Title",
    "description": "What happens",
    "characters": "Characters",
    "location": "Location",
    "time": "Time",
}
