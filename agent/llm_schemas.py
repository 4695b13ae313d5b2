"""Pydantic models of what the model is asked to answer in JSON (contract.md 8.4).

These schemas are sent as ``response_format`` json_schema (grammar-enforced on llama.cpp)
or described in the prompt, so the agent never depends on native tool calling. Attribute
docstrings become schema descriptions, which is what a small model reads to fill a field.
Edits carry no ids and no photo fields: ids and photos are the code's business
(see ``agent.patches``), so a model can neither collide ids nor wipe an image.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationInfo
from pydantic import field_validator

__all__ = [
    "Action",
    "CharacterDraft",
    "CharacterEdit",
    "Classification",
    "FollowUps",
    "LocationDraft",
    "LocationEdit",
    "Operation",
    "ScenarioDraft",
    "ScenarioEdit",
    "SceneDraft",
    "SceneEdit",
    "Target",
    "TextEdit",
    "WritingStyleEdit",
]

Action = Literal["details", "modification", "creation", "deletion", "general_conversation"]
Target = Literal[
    "scenario",
    "character",
    "location",
    "scene",
    "synopsis",
    "backstory",
    "storyarc",
    "writingStyle",
    "notes",
    "title",
    "general",
]

_OUTPUT = ConfigDict(frozen=True, use_attribute_docstrings=True)


class Operation(BaseModel):
    """One thing the writer asked for."""

    model_config = _OUTPUT

    # The writer's words come first: a small model decides action and target far better
    # once it has copied the request it is classifying (JSON keys are generated in order).
    prompt: str
    """The writer's words for this request."""
    action: Action
    """details = explain or analyse; modification = change something that exists;
    creation = add something new; deletion = remove a character, location or scene;
    general_conversation = anything else."""
    target: Target
    """The part of the scenario concerned."""
    entity: str | None = None
    """Name of the existing character, location or scene it is about, if any."""


class Classification(BaseModel):
    """The operations found in the writer's message, in the order asked."""

    model_config = _OUTPUT

    operations: list[Operation] = Field(min_length=1, max_length=5)
    """One entry per request in the message."""


class CharacterEdit(BaseModel):
    """Changes to one character. Set only the fields the writer asked to change."""

    model_config = _OUTPUT

    name: str | None = None
    """New name."""
    alias: str | None = None
    """New alias."""
    role: str | None = None
    """New role."""
    gender: str | None = None
    """New gender."""
    appearance: str | None = None
    """New appearance, complete."""
    backstory: str | None = None
    """New backstory, complete."""
    extraInfo: str | None = None
    """New notes, complete."""


def _unused_name(value: str, info: ValidationInfo) -> str:
    """Reject a new entity named like an existing one (small models copy names)."""
    taken = (info.context or {}).get("taken_names", ())
    if value.strip().casefold() in taken:
        raise ValueError(f"the name {value.strip()!r} is already taken, invent a new one")
    return value


class CharacterDraft(BaseModel):
    """A new character."""

    model_config = _OUTPUT
    _check_name = field_validator("name")(_unused_name)

    name: str = Field(min_length=1)
    """Name."""
    role: str
    """Role in the story, e.g. "supporting"."""
    gender: str
    """Gender."""
    appearance: str
    """Physical appearance."""
    backstory: str
    """Personal history."""
    alias: str | None = None
    """Nickname, if any."""
    extraInfo: str | None = None
    """Other notes, if any."""


class LocationEdit(BaseModel):
    """Changes to one location. Set only the fields the writer asked to change."""

    model_config = _OUTPUT

    name: str | None = None
    """New name."""
    visualDescription: str | None = None
    """New visual description, complete."""
    background: str | None = None
    """New background, complete."""
    extraInfo: str | None = None
    """New notes, complete."""


class LocationDraft(BaseModel):
    """A new location."""

    model_config = _OUTPUT
    _check_name = field_validator("name")(_unused_name)

    name: str = Field(min_length=1)
    """Name."""
    visualDescription: str
    """What it looks like."""
    background: str
    """History and significance."""
    extraInfo: str | None = None
    """Other notes, if any."""


class SceneEdit(BaseModel):
    """Changes to one scene. Set only the fields the writer asked to change."""

    model_config = _OUTPUT

    title: str | None = None
    """New title."""
    description: str | None = None
    """New description of what happens, complete."""
    location: str | None = None
    """Name of the location where it happens."""
    time: str | None = None
    """When it happens."""
    notes: str | None = None
    """New notes, complete."""


class SceneDraft(BaseModel):
    """A new scene."""

    model_config = _OUTPUT

    title: str = Field(min_length=1)
    """Title."""
    description: str
    """What happens."""
    characters: list[str] = Field(default_factory=list)
    """Names of the existing characters in it."""
    location: str | None = None
    """Name of the existing location where it happens, if any."""
    time: str | None = None
    """When it happens, if said."""


class WritingStyleEdit(BaseModel):
    """Changes to the writing style. Set only the fields the writer asked to change."""

    model_config = _OUTPUT

    style: str | None = None
    """Narrative style."""
    genre: str | None = None
    """Genre."""
    tone: str | None = None
    """Tone."""
    communicationStyle: str | None = None
    """How characters talk."""
    theme: str | None = None
    """Central theme."""
    other: str | None = None
    """Other style instructions."""
    language: str | None = None
    """Language of the story."""


class TextEdit(BaseModel):
    """The new complete text of one scenario field."""

    model_config = _OUTPUT

    text: str
    """The full new text."""


class ScenarioEdit(BaseModel):
    """Changes to the scenario's main texts. Set only what the writer asked to change."""

    model_config = _OUTPUT

    title: str | None = None
    """New title."""
    synopsis: str | None = None
    """New synopsis, complete."""
    storyarc: str | None = None
    """New story arc, complete."""
    backstory: str | None = None
    """New backstory, complete."""
    notes: str | None = None
    """New notes, complete."""
    writingStyle: WritingStyleEdit | None = None
    """Writing style changes."""


class ScenarioDraft(BaseModel):
    """A whole new scenario."""

    model_config = _OUTPUT

    title: str = Field(min_length=1)
    """Title."""
    synopsis: str
    """Short summary."""
    storyarc: str
    """The arc of the story."""
    backstory: str
    """World and story background."""
    writingStyle: WritingStyleEdit
    """How the story is written."""
    characters: list[CharacterDraft] = Field(min_length=1, max_length=6)
    """Main characters."""
    locations: list[LocationDraft] = Field(default_factory=list, max_length=6)
    """Main locations."""
    notes: str | None = None
    """Other notes, if any."""


class FollowUps(BaseModel):
    """Suggestions for the writer's next message."""

    model_config = _OUTPUT

    questions: list[str] = Field(min_length=3, max_length=3)
    """Exactly three short requests the writer could send next, in their voice."""
