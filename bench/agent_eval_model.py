"""What an evaluation case states: the request, and what a correct turn does with it.

A case is one writer message on one scenario. Its expectation is a list of steps (the
operations the agent must perform, in order, as its status frames show them) and, inside
each step, the changes that step must make - for an open request also what the new text
must be about. Anything a change does not name must come back byte-identical: every other
entity, field, photo and unknown key. Whatever text the agent writes must be its own, not
a copy of another part of the scenario.

Kept free of any scoring or model logic so that the dev set reads as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Literal
from typing import TypeAlias

__all__ = [
    "Add",
    "Case",
    "Change",
    "Collection",
    "Edit",
    "NewScenario",
    "Op",
    "Remove",
    "SetField",
    "Step",
    "Target",
]

Op = Literal["explain", "chat", "modify", "create", "delete", "clarify"]
"""What the agent does: the graph node the status frames name (``metadata.node``)."""
Target = Literal[
    "scenario",
    "character",
    "location",
    "scene",
    "title",
    "synopsis",
    "storyarc",
    "backstory",
    "notes",
    "writingStyle",
    "general",
]
"""What the step is about: an entity kind or a top-level field."""
Collection = Literal["characters", "locations", "scenes"]


@dataclass(frozen=True, slots=True)
class Add:
    """New entities appended to a list (fresh UUID v4 ids, nothing else in it changed)."""

    collection: Collection
    name: str | None = None
    """A text the new entity's name (a scene's title) must contain; None: any new name."""
    count: int = 1
    mentions: tuple[str, ...] = ()
    """The new entity's texts must contain one of these (what the writer described)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """An existing entity changed in some fields only."""

    collection: Collection
    id: str
    set: Mapping[str, str] = field(default_factory=dict)
    """Field -> a text its new value must contain (case-insensitive)."""
    any_of: tuple[str, ...] = ()
    """At least one of these fields must change (an open request: "make her older")."""
    mentions: tuple[str, ...] = ()
    """The changed fields must contain one of these: what the request was about ("old",
    "grey", "year" for "make her older"), case-insensitive, any part of a word."""

    @property
    def fields(self) -> frozenset[str]:
        """Every field this edit may change."""
        return frozenset(self.set) | frozenset(self.any_of)


@dataclass(frozen=True, slots=True)
class Remove:
    """An entity removed from its list."""

    collection: Collection
    id: str


@dataclass(frozen=True, slots=True)
class SetField:
    """A top-level field changed (for ``writingStyle``: some of its keys)."""

    key: str
    contains: str | None = None
    """A text the new value (or the changed ``writingStyle`` key) must contain."""
    keys: tuple[str, ...] = ()
    """For ``writingStyle``: at least one of these keys changes, and only these may."""
    mentions: tuple[str, ...] = ()
    """The new value must contain one of these (see ``Edit.mentions``)."""


@dataclass(frozen=True, slots=True)
class NewScenario:
    """A whole new scenario (``create_scenario``): title and characters, id kept."""

    min_characters: int = 1
    mentions: tuple[str, ...] = ()
    """Its texts must contain one of these (what the writer asked the story to be about)."""


Change: TypeAlias = Add | Edit | Remove | SetField | NewScenario


@dataclass(frozen=True, slots=True)
class Step:
    """One operation the agent must perform."""

    op: Op
    target: Target
    ref: str | None = None
    """How the writer referred to the entity ("Mira", "her", "the tavern", "Zoltan")."""
    ids: tuple[str, ...] = ()
    """The entities concerned: explained, edited or deleted ones; for ``clarify`` the
    candidates the question must offer (empty when the named entity does not exist)."""
    clause: str | None = None
    """This step's part of the message, when the message asks for several things."""
    asked: Op | None = None
    """For ``clarify``: what the writer asked to do with the unclear entity."""
    changes: tuple[Change, ...] = ()
    """What this step must change."""


@dataclass(frozen=True, slots=True)
class Case:
    """One request of the dev set."""

    id: str
    scenario: str
    """Name in ``bench.agent_eval_scenarios.SCENARIOS``."""
    message: str
    steps: tuple[Step, ...]
    starter: bool = False
    """One of the chat panel's four starter suggestions."""

    @property
    def op(self) -> Op:
        """The case's operation for the per-operation table: its first step's."""
        return self.steps[0].op

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change of every step."""
        return tuple(change for step in self.steps for change in step.changes)
