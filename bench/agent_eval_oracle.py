"""A perfect model for the scripted evaluation: it answers what the case expects.

Plugged into ``ScriptedUpstream.responder``, the oracle answers each of the agent's model
calls the way a flawless model would, so that everything still wrong is the agent's
mechanics (routing, resolution, patching by id, frames, follow-ups). It never returns a
final scenario: each answer is built from the request itself - the JSON schema the agent
asks for (``response_format``), its name (which step it is), the writer's text of the step
- and from the case's expectation (which operation, which names and values). A schema the
oracle has never seen is still filled from its properties, so the agent's per-step schemas
may change without touching this file.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from bench.agent_eval_model import Add
from bench.agent_eval_model import Case
from bench.agent_eval_model import Edit
from bench.agent_eval_model import NewScenario
from bench.agent_eval_model import SetField
from bench.agent_eval_model import Step
from bench.upstream import Script

__all__ = ["Oracle"]

_ACTIONS = {
    "explain": "details",
    "chat": "general_conversation",
    "modify": "modification",
    "create": "creation",
    "delete": "deletion",
}
_INTENT_ACTIONS = {
    "explain": "explain",
    "chat": "chat",
    "modify": "change",
    "create": "add",
    "delete": "delete",
}
_INTENT_TARGETS = {
    "character": "character",
    "location": "location",
    "scene": "scene",
    "writingStyle": "style",
}
_WORD = re.compile(r"[\w']+")
_COMMON = frozenset(
    {"the", "a", "an", "to", "of", "and", "in", "on", "for", "it", "is", "make", "then", "change"}
)


def _schema_of(body: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping):
        return None, {}
    spec = response_format.get("json_schema") or {}
    return spec.get("name"), spec.get("schema") or {}


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _fields(step: Step) -> set[str]:
    """The fields a step's changes may write."""
    found: set[str] = set()
    for change in step.changes:
        if isinstance(change, Edit):
            found |= change.fields
        elif isinstance(change, SetField):
            found |= {change.key, *change.keys}
    return found


def _words(text: str | None) -> set[str]:
    return set(_WORD.findall((text or "").casefold()))


class Oracle:
    """Answers the agent's calls for the case being run (set with ``start``)."""

    def __init__(self) -> None:
        self.case: Case | None = None
        self._names = itertools.count(1)
        self._used: list[Step] = []
        self._names_by_id: dict[str, str] = {}
        self._theme = ""

    def start(self, case: Case, scenario: Mapping[str, Any]) -> None:
        """Answer for ``case``, run on ``scenario``, from now on."""
        self.case = case
        self._used = []
        self._names_by_id = {
            str(entity["id"]): str(entity.get("name") or entity.get("title"))
            for key in ("characters", "locations", "scenes")
            for entity in scenario.get(key) or []
            if isinstance(entity, Mapping) and "id" in entity
        }

    def __call__(self, body: dict[str, Any]) -> Script:
        """The ``ScriptedUpstream`` responder: one script per model call."""
        name, schema = _schema_of(body)
        if name is None:
            return Script(pieces=self._prose(body), delay_s=0.0)
        answer = self._answer(name, schema, body)
        return Script(pieces=[json.dumps(answer)])

    # -- which step a call is for ------------------------------------------------------

    def _step_for(self, name: str, body: Mapping[str, Any]) -> Step | None:
        assert self.case is not None
        steps = self.case.steps
        if name.startswith("new_"):
            kind = name.removeprefix("new_")
            candidates = [s for s in steps if s.op == "create" and s.target == kind]
        elif name.endswith("_edit") or name.endswith("_text"):
            kind = name.rsplit("_", 1)[0]
            candidates = [s for s in steps if s.op == "modify" and s.target == kind]
            if not candidates:  # a field's name ("tone_text"): the steps that change it
                candidates = [s for s in steps if s.op == "modify" and kind in _fields(s)]
            if not candidates:
                candidates = [s for s in steps if s.op == "modify"]
        else:
            candidates = list(steps)
        if len(candidates) > 1:
            said = _words(_last_user_text(body)) - _COMMON
            best = max(len(said & _words(s.clause)) for s in candidates)
            candidates = [s for s in candidates if len(said & _words(s.clause)) == best]
            fresh = [s for s in candidates if s not in self._used]
            candidates = fresh or candidates
        step = candidates[0] if candidates else None
        if step is not None:
            self._used.append(step)
        return step

    # -- answers -------------------------------------------------------------------------

    def _answer(self, name: str, schema: dict[str, Any], body: Mapping[str, Any]) -> Any:
        assert self.case is not None
        if name == "classification":
            return {"operations": [self._operation(step) for step in self.case.steps]}
        if name == "intent":
            first = self.case.steps[0]
            action = (first.asked or "modify") if first.op == "clarify" else first.op
            target = _INTENT_TARGETS.get(first.target, "story")
            return {"action": _INTENT_ACTIONS[action], "target": target}
        if name == "follow_ups":
            return {"questions": ["Tell me more.", "Make it darker.", "Add a new location."]}
        step = self._step_for(name, body)
        return self._fill(schema, schema, self._values(step))

    def _operation(self, step: Step) -> dict[str, Any]:
        assert self.case is not None
        action = (step.asked or "modify") if step.op == "clarify" else step.op
        return {
            "prompt": step.clause or self.case.message,
            "action": _ACTIONS[action],
            "target": step.target,
            "entity": step.ref,
        }

    def _values(self, step: Step | None) -> dict[str, Any]:
        """The values a perfect answer for this step holds, by property name.

        ``text`` is the answer to a one-field schema (the agent chose the field);
        ``__only__`` marks an edit: properties not named stay null.
        """
        values: dict[str, Any] = {}
        self._theme = ""
        for change in step.changes if step is not None else ():
            mentions = getattr(change, "mentions", ())
            about = mentions[0] if mentions else "it"
            self._theme = self._theme or about
            if isinstance(change, Add):
                label = change.name or f"Oracle Name {next(self._names)}"
                values.update(name=label, title=label)
            elif isinstance(change, Edit):
                values.update(change.set, __only__=True)
                for key in change.any_of[:1]:
                    values.setdefault(key, f"Revised {key}, now {about}.")
                values["text"] = next(iter(change.set.values()), None) or values.get(
                    change.any_of[0], "Revised."
                )
            elif isinstance(change, SetField) and change.key == "writingStyle":
                style = {key: change.contains or f"revised, {about}" for key in change.keys}
                values.update(style, writingStyle={**style, "__only__": True}, __only__=True)
                values["text"] = style[change.keys[0]]
            elif isinstance(change, SetField):
                text = change.contains or f"Revised {change.key}, now {about}."
                values.update({change.key: text, "text": text, "__only__": True})
            elif isinstance(change, NewScenario):
                values.update(title="Oracle Story")
        return values

    def _fill(self, schema: Mapping[str, Any], root: Mapping[str, Any], values: Any) -> Any:
        """An instance of ``schema``: expected values where known, plausible filler else."""
        schema = self._resolve(schema, root)
        if "anyOf" in schema:
            options = [self._resolve(o, root) for o in schema["anyOf"]]
            concrete = [o for o in options if o.get("type") != "null"]
            return self._fill(concrete[0], root, values) if concrete else None
        if "enum" in schema:
            options = schema["enum"]
            return values if values in options else options[0]
        kind = schema.get("type")
        if kind == "object":
            given = values if isinstance(values, Mapping) else {}
            only = bool(given.get("__only__"))
            required = set(schema.get("required") or [])
            result = {}
            for key, sub in (schema.get("properties") or {}).items():
                if key in given:
                    result[key] = self._fill(sub, root, given[key])
                elif only and key not in required:
                    result[key] = None
                else:
                    result[key] = self._fill(sub, root, self._filler(key))
            return result
        if kind == "array":
            count = max(int(schema.get("minItems", 1)), 1)
            item = schema.get("items") or {"type": "string"}
            return [self._fill(item, root, self._filler(f"item {i + 1}")) for i in range(count)]
        if kind in ("integer", "number"):
            return values if isinstance(values, int | float) else 1
        if kind == "boolean":
            return bool(values)
        text = values if isinstance(values, str) else "Oracle text."
        limit = schema.get("maxLength")
        return text[:limit] if isinstance(limit, int) else text

    def _filler(self, key: str) -> Any:
        if key in ("name", "title"):
            return f"Oracle Name {next(self._names)}"
        return f"Oracle {key} about {self._theme or 'the story'}."

    @staticmethod
    def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found: Mapping[str, Any] = (root.get("$defs") or {})[ref.removeprefix("#/$defs/")]
            return found
        return schema

    # -- prose ---------------------------------------------------------------------------

    def _prose(self, body: Mapping[str, Any]) -> list[str]:
        assert self.case is not None
        names = [
            self._names_by_id[i] for s in self.case.steps for i in s.ids if i in self._names_by_id
        ]
        about = f" about {', '.join(names)}" if names else ""
        return [w + " " for w in f"Here is a careful answer{about}, as you asked.".split()]
