"""Judge one agent turn from its frames alone, the way the frontend would see it.

``judge`` takes the frames of a turn and its case, applies the tool_call as the frontend
does (a shallow merge, contract.md 8.2) and answers two questions:

- valid: did the turn end ``completed`` with well-formed frames (contract.md 8.3: envelope,
  at most one tool_call, exactly three follow-ups, ``completed`` last)?
- correct: valid, the right operations in order (the status frames' ``metadata.node``),
  the right target (the entity changed, explained or offered in a clarifying question),
  every expected change made, and nothing else changed: every other entity, field,
  photo and unknown key byte-identical (scenes may only follow a rename).

Nothing here imports the agent: the evaluation must keep working whatever the agent's
internals become, as long as the HTTP API holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from bench.agent_eval_model import Add
from bench.agent_eval_model import Case
from bench.agent_eval_model import Edit
from bench.agent_eval_model import NewScenario
from bench.agent_eval_model import Remove
from bench.agent_eval_model import SetField

__all__ = ["Verdict", "apply_frames", "diff", "judge", "operations", "prose"]

COLLECTIONS = ("characters", "locations", "scenes")
_INTERNAL_NODES = frozenset({"classify", "commit", "follow_ups"})
_SCENARIO_CONTENT = frozenset(
    {"title", "synopsis", "storyarc", "backstory", "notes", "writingStyle", *COLLECTIONS}
)


@dataclass(slots=True)
class Verdict:
    """The judgement of one turn."""

    valid: bool
    correct: bool
    problems: list[str] = field(default_factory=list)
    """Why the turn is invalid or wrong, one line each."""
    happened: str = ""
    """What the agent did, in one line (operations, changed keys, start of its answer)."""
    diff: list[str] = field(default_factory=list)
    """Every value the turn changed, old -> new, clipped: to review what a model wrote."""


def operations(frames: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the operations the turn performed: the nodes its status frames name."""
    nodes = []
    for frame in frames:
        if frame.get("type") == "status":
            node = (frame.get("metadata") or {}).get("node")
            if isinstance(node, str) and node not in _INTERNAL_NODES:
                nodes.append(node)
    return nodes


def prose(frames: Sequence[Mapping[str, Any]]) -> str:
    """Return the chat bubble's text as the frontend builds it (append or replace)."""
    text = ""
    for frame in frames:
        if frame.get("type") != "chat" or not isinstance(frame.get("content"), str):
            continue
        text = text + frame["content"] if frame.get("streaming") else frame["content"]
    return text


def _tool_calls(frames: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [f for f in frames if f.get("type") == "tool_call"]


def apply_frames(
    scenario: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Apply tool_calls as the frontend does: ``{...scenario, ...payload}``."""
    merged = dict(scenario)
    for frame in _tool_calls(frames):
        call = (frame.get("metadata") or {}).get("tool_call") or {}
        parameters = call.get("parameters") or {}
        key = "scenario" if call.get("action") == "create_scenario" else "updated_scenario"
        payload = parameters.get(key)
        if isinstance(payload, Mapping):
            merged = {**merged, **payload}
    return merged


# -- validity --------------------------------------------------------------------------


def _frame_problem(frame: Mapping[str, Any]) -> str | None:
    kind = frame.get("type")
    metadata = frame.get("metadata")
    if not isinstance(metadata, Mapping):
        return f"a {kind} frame without metadata"
    if kind == "status":
        if not isinstance(frame.get("content"), str) or not isinstance(metadata.get("status"), str):
            return "a status frame without content or metadata.status"
    elif kind == "chat":
        if not isinstance(frame.get("content"), str):
            return "a chat frame without content"
        if frame.get("streaming") is not metadata.get("streaming"):
            return "a chat frame whose streaming and metadata.streaming differ"
    elif kind == "tool_call":
        call = metadata.get("tool_call")
        if not isinstance(call, Mapping) or call.get("action") not in (
            "update_scenario",
            "create_scenario",
        ):
            return "a tool_call frame without a known action"
        key = "scenario" if call["action"] == "create_scenario" else "updated_scenario"
        if not isinstance((call.get("parameters") or {}).get(key), Mapping):
            return f"a tool_call without parameters.{key}"
    else:
        return f"an unknown frame type {kind!r}"
    return None


def _validity(frames: Sequence[Mapping[str, Any]], after: Mapping[str, Any]) -> list[str]:
    if not frames:
        return ["no frames"]
    problems = [p for p in map(_frame_problem, frames) if p]
    last = frames[-1]
    if last != {"type": "status", "content": "completed", "metadata": {"status": "completed"}}:
        error = (last.get("metadata") or {}).get("error") if isinstance(last, Mapping) else None
        problems.append(f"the turn ended with {error or last!r}"[:300])
        return problems
    follow = frames[-2] if len(frames) > 1 else {}
    questions = (follow.get("metadata") or {}).get("follow_up_questions")
    if (
        follow.get("type") != "chat"
        or follow.get("content") != ""
        or (follow.get("metadata") or {}).get("final") is not True
        or not isinstance(questions, list)
        or len(questions) != 3
        or not all(isinstance(q, str) and q.strip() for q in questions)
    ):
        problems.append("the frame before completed is not the 3 follow-up questions")
    calls = [i for i, f in enumerate(frames) if f.get("type") == "tool_call"]
    if len(calls) > 1:
        problems.append(f"{len(calls)} tool_call frames (at most one)")
    elif calls and [f for f in frames[calls[0] + 1 :] if f.get("type") != "status"] != [follow]:
        problems.append("prose after the tool_call (it must come after all prose)")
    problems.extend(_document_problems(after))
    return problems


def _document_problems(scenario: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in COLLECTIONS:
        items = scenario.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            problems.append(f"{key} is not a list of objects")
            continue
        ids = [i.get("id") for i in items]
        if not all(isinstance(i, str) and i for i in ids):
            problems.append(f"{key} has an entity without a string id")
        elif len(set(ids)) != len(ids):
            problems.append(f"{key} has duplicate ids")
    style = scenario.get("writingStyle")
    if style is not None and not isinstance(style, Mapping):
        problems.append("writingStyle is not an object")
    return problems


# -- correctness -----------------------------------------------------------------------


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold() if text is not None else ""


def _label(entity: Mapping[str, Any]) -> str:
    return str(entity.get("name") or entity.get("title") or entity.get("id"))


def _index(items: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {i["id"]: i for i in items if isinstance(i, Mapping) and isinstance(i.get("id"), str)}


def _mentions(text: str, entity: Mapping[str, Any]) -> bool:
    """Whether ``text`` names the entity: its name, a word of it, or its alias."""
    words = set(re.findall(r"[\w']+", text.casefold()))
    for key in ("name", "alias", "title"):
        value = entity.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if _norm(value) in _norm(text):
            return True
        if any(len(w) > 2 and w in words for w in re.findall(r"[\w']+", value.casefold())):
            return True
    return False


def _is_uuid4(value: Any) -> bool:
    try:
        return isinstance(value, str) and uuid.UUID(value).version == 4
    except ValueError:
        return False


def _check_adds(
    adds: Iterable[Add], before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[str]:
    problems = []
    by_collection: dict[str, list[Add]] = {}
    for add in adds:
        by_collection.setdefault(add.collection, []).append(add)
    for key, wanted in by_collection.items():
        old = _index(before.get(key))
        items = [i for i in after.get(key) or [] if isinstance(i, Mapping)]
        new = [i for i in items if i.get("id") not in old]
        expected = sum(a.count for a in wanted)
        if len(new) != expected:
            problems.append(f"{key}: {len(new)} new entities, expected {expected}")
            continue
        if any(i.get("id") not in old for i in items[: len(items) - len(new)]):
            problems.append(f"{key}: new entities are not appended after the existing ones")
        taken = {_norm(_label(e)) for e in old.values()}
        for entity in new:
            if not _is_uuid4(entity.get("id")):
                problems.append(f"{key}: new entity id {entity.get('id')!r} is not a UUID v4")
            label = entity.get("title" if key == "scenes" else "name")
            if not isinstance(label, str) or not label.strip():
                problems.append(f"{key}: a new entity without a name")
            elif _norm(label) in taken:
                problems.append(f"{key}: the new entity reuses the name {label!r}")
        for add in wanted:
            if add.name and not any(_norm(add.name) in _norm(_label(e)) for e in new):
                names = ", ".join(repr(_label(e)) for e in new)
                problems.append(f"{key}: no new entity named {add.name!r} (got {names})")
            texts = " ".join(str(v) for e in new for v in e.values() if isinstance(v, str))
            if add.mentions and not _says(texts, add.mentions):
                problems.append(f"{key}: the new entity is not about {'/'.join(add.mentions)}")
    return problems


def _check_edit(edit: Edit, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    old = _index(before.get(edit.collection)).get(edit.id)
    new = _index(after.get(edit.collection)).get(edit.id)
    if old is None:
        return [f"case error: {edit.id} is not in {edit.collection}"]
    if new is None:
        return [f"{_label(old)} is gone from {edit.collection}"]
    problems = []
    for name, wanted in edit.set.items():
        if _norm(wanted) not in _norm(new.get(name)):
            problems.append(f"{_label(old)}.{name} is {new.get(name)!r}, expected {wanted!r}")
    if edit.any_of and all(old.get(k) == new.get(k) for k in edit.any_of):
        problems.append(f"{_label(old)}: none of {', '.join(edit.any_of)} changed")
    changed = " ".join(str(new.get(k)) for k in sorted(edit.fields) if old.get(k) != new.get(k))
    if edit.mentions and changed and not _says(changed, edit.mentions):
        problems.append(f"{_label(old)}: the new text is not about {'/'.join(edit.mentions)}")
    return problems


def _says(text: str, wanted: tuple[str, ...]) -> bool:
    return any(w.casefold() in text.casefold() for w in wanted)


def _check_field(
    change: SetField, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[str]:
    old, new = before.get(change.key), after.get(change.key)
    if change.key == "writingStyle":
        old_style = old if isinstance(old, Mapping) else {}
        new_style = new if isinstance(new, Mapping) else {}
        changed = [k for k in change.keys if old_style.get(k) != new_style.get(k)]
        if not changed:
            return [f"writingStyle: none of {', '.join(change.keys)} changed"]
        if change.contains and not any(
            _norm(change.contains) in _norm(new_style.get(k)) for k in changed
        ):
            shown = {k: new_style.get(k) for k in changed}
            return [f"writingStyle {shown} does not contain {change.contains!r}"]
        written = " ".join(str(new_style.get(k)) for k in changed)
        if change.mentions and not _says(written, change.mentions):
            return [f"writingStyle {written[:80]!r} is not about {'/'.join(change.mentions)}"]
        return []
    if old == new:
        return [f"{change.key} did not change"]
    if change.contains and _norm(change.contains) not in _norm(new):
        return [f"{change.key} is {str(new)[:80]!r}, expected it to contain {change.contains!r}"]
    if change.mentions and not _says(str(new), change.mentions):
        return [f"{change.key} {str(new)[:80]!r} is not about {'/'.join(change.mentions)}"]
    return []


def _check_new_scenario(
    change: NewScenario, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[str]:
    problems = []
    if not isinstance(after.get("title"), str) or not after["title"].strip():
        problems.append("the new scenario has no title")
    characters = [c for c in after.get("characters") or [] if isinstance(c, Mapping)]
    if len(characters) < change.min_characters:
        problems.append(f"the new scenario has {len(characters)} characters")
    if not all(_is_uuid4(c.get("id")) and c.get("name") for c in characters):
        problems.append("a new character without a UUID v4 id or a name")
    for key in ("id", "userId", "createdAt"):
        if key in before and after.get(key) != before[key]:
            problems.append(f"the new scenario changed {key}")
    written = " ".join(t for _, t in _texts({k: after.get(k) for k in _SCENARIO_CONTENT}, ""))
    if change.mentions and not _says(written, change.mentions):
        problems.append(f"the new scenario is not about {'/'.join(change.mentions)}")
    return problems


def _renames(case: Case, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, str]:
    """Old name -> new name of every renamed character or location (scenes follow them)."""
    renames = {}
    for change in case.changes:
        if isinstance(change, Edit) and "name" in change.set and change.collection != "scenes":
            old = _index(before.get(change.collection)).get(change.id) or {}
            new = _index(after.get(change.collection)).get(change.id) or {}
            if isinstance(old.get("name"), str) and isinstance(new.get("name"), str):
                renames[_norm(old["name"])] = new["name"]
    return renames


def _expected_scene(scene: Mapping[str, Any], renames: Mapping[str, str]) -> Mapping[str, Any]:
    if not renames:
        return scene
    expected = dict(scene)
    if isinstance(scene.get("characters"), list):
        expected["characters"] = [
            renames.get(_norm(n), n) if isinstance(n, str) else n for n in scene["characters"]
        ]
    if isinstance(scene.get("location"), str):
        expected["location"] = renames.get(_norm(scene["location"]), scene["location"])
    return expected


COPY_CHARS = 40
"""A changed text holding this many characters of another text of the scenario copies it."""


def _texts(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string inside ``value`` with where it is (``characters[Mira].appearance``)."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, Mapping):
        entity = value.get("id") if where else None  # the scenario's own id is no entity
        base = f"{where}[{entity}]" if isinstance(entity, str) else where
        return [
            t for k, v in value.items() if k != "id" for t in _texts(v, f"{base}.{k}".lstrip("."))
        ]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item, where)]
    return []


def _copies(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Texts the turn wrote that repeat another text of the scenario (a small model's habit
    of answering with the story's synopsis instead of the field it was asked for)."""
    old = dict(_texts(dict(before), ""))
    sources = [(w, " ".join(t.split()).casefold()) for w, t in old.items() if len(t) >= COPY_CHARS]
    problems = []
    for where, text in _texts(dict(after), ""):
        if old.get(where) == text or len(text) < COPY_CHARS:
            continue
        flat = " ".join(text.split()).casefold()
        windows = {flat[i : i + COPY_CHARS] for i in range(0, len(flat) - COPY_CHARS + 1, 8)}
        for source_where, source in sources:
            if source_where != where and any(window in source for window in windows):
                problems.append(f"{where} copies {source_where}")
                break
    return problems


def _untouched(case: Case, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Everything the case does not ask to change must be as it was."""
    changes = case.changes
    if any(isinstance(c, NewScenario) for c in changes):
        touched_top = set(_SCENARIO_CONTENT)
    else:
        touched_top = {c.key for c in changes if isinstance(c, SetField)}
    problems = []
    for key in sorted(set(before) | set(after), key=str):
        if key in COLLECTIONS or key in touched_top:
            continue
        if before.get(key) != after.get(key):
            problems.append(f"{key} changed but was not asked to")
    style_change = next(
        (c for c in changes if isinstance(c, SetField) and c.key == "writingStyle"), None
    )
    if style_change is not None:
        old = before.get("writingStyle") or {}
        new = after.get("writingStyle") or {}
        for key in set(old) | set(new):
            if key not in style_change.keys and old.get(key) != new.get(key):
                problems.append(f"writingStyle.{key} changed but was not asked to")
    if touched_top == set(_SCENARIO_CONTENT):
        return problems
    renames = _renames(case, before, after)
    for key in COLLECTIONS:
        edits = {c.id: c for c in changes if isinstance(c, Edit) and c.collection == key}
        removed = {c.id for c in changes if isinstance(c, Remove) and c.collection == key}
        now = _index(after.get(key))
        kept_order = [i for i in (after.get(key) or []) if isinstance(i, Mapping)]
        order_after = [i.get("id") for i in kept_order if i.get("id") in _index(before.get(key))]
        order_before = [i for i in _index(before.get(key)) if i not in removed]
        if order_after != order_before:
            problems.append(f"{key}: existing entities lost, added twice or reordered")
        for entity_id, old in _index(before.get(key)).items():
            if entity_id in removed:
                if entity_id in now:
                    problems.append(f"{key}: {_label(old)} was not removed")
                continue
            new = now.get(entity_id)
            if new is None:
                problems.append(f"{key}: {_label(old)} was removed but not asked to")
                continue
            allowed = edits[entity_id].fields if entity_id in edits else frozenset()
            expected = _expected_scene(old, renames) if key == "scenes" else old
            for name in sorted(set(old) | set(new), key=str):
                if name not in allowed and expected.get(name) != new.get(name):
                    what = "was not renamed" if expected.get(name) != old.get(name) else "changed"
                    problems.append(f"{key}: {_label(old)}.{name} {what} (not asked)")
    return problems


def _target_problems(case: Case, before: Mapping[str, Any], text: str) -> list[str]:
    problems = []
    entities = {
        entity_id: entity
        for key in COLLECTIONS
        for entity_id, entity in _index(before.get(key)).items()
    }
    for step in case.steps:
        if step.op in ("explain", "clarify"):
            for entity_id in step.ids:
                entity = entities.get(entity_id)
                if entity is not None and not _mentions(text, entity):
                    problems.append(f"the answer does not mention {_label(entity)}")
        missing = step.op == "clarify" and not step.ids and step.ref
        if missing and _norm(step.ref).split()[-1] not in _norm(text):
            problems.append(f"the question does not mention {step.ref!r}")
    return problems


def _happened(nodes: Sequence[str], frames: Sequence[Mapping[str, Any]], text: str) -> str:
    keys: list[str] = []
    for frame in _tool_calls(frames):
        call = (frame.get("metadata") or {}).get("tool_call") or {}
        payload = (call.get("parameters") or {}).get(
            "scenario" if call.get("action") == "create_scenario" else "updated_scenario"
        )
        if isinstance(payload, Mapping):
            keys.extend(str(k) for k in payload)
    change = f"changed {', '.join(keys)}" if keys else "no change"
    said = " ".join(text.split())
    return f"ops {nodes or '[]'}; {change}; said {said[:160]!r}"


def _clip(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Every changed value, one line each: ``characters[Mira].name: 'Mira' -> 'Ann'``."""
    lines = []
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in COLLECTIONS:
            old_items, new_items = _index(old), _index(new)
            for entity_id in [*old_items, *(i for i in new_items if i not in old_items)]:
                was, now = old_items.get(entity_id), new_items.get(entity_id)
                label = _label(now or was or {})
                if was is None or now is None:
                    what = "added" if was is None else "removed"
                    lines.append(f"{key}[{label}] {what}: {_clip(dict(now or was or {}), 160)}")
                    continue
                for name in sorted(set(was) | set(now), key=str):
                    if was.get(name) != now.get(name):
                        lines.append(
                            f"{key}[{label}].{name}: {_clip(was.get(name))} -> "
                            f"{_clip(now.get(name))}"
                        )
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            for name in sorted(set(old) | set(new), key=str):
                if old.get(name) != new.get(name):
                    lines.append(f"{key}.{name}: {_clip(old.get(name))} -> {_clip(new.get(name))}")
        else:
            lines.append(f"{key}: {_clip(old)} -> {_clip(new)}")
    return lines


def judge(case: Case, before: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]) -> Verdict:
    """Judge one turn of ``case`` that started from ``before`` and produced ``frames``."""
    after = apply_frames(before, frames)
    nodes = operations(frames)
    text = prose(frames)
    problems = _validity(frames, after)
    valid = not problems
    expected_ops = [step.op for step in case.steps]
    if nodes != expected_ops:
        problems.append(f"operations {nodes}, expected {expected_ops}")
    problems.extend(_target_problems(case, before, text))
    if not case.changes and _tool_calls(frames):
        problems.append("a tool_call, but nothing was to change")
    problems.extend(_check_adds([c for c in case.changes if isinstance(c, Add)], before, after))
    for change in case.changes:
        if isinstance(change, Edit):
            problems.extend(_check_edit(change, before, after))
        elif isinstance(change, SetField):
            problems.extend(_check_field(change, before, after))
        elif isinstance(change, NewScenario):
            problems.extend(_check_new_scenario(change, before, after))
    problems.extend(_untouched(case, before, after))
    problems.extend(_copies(before, after))
    return Verdict(
        valid, not problems, problems, _happened(nodes, frames, text), diff(before, after)
    )
