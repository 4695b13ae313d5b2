"""The scenario document the StoryWriter editor edits (contract.md 8.5).

Field names are exactly the editor's. Every model allows extra keys, because the frontend
may store fields this service does not know, and a scenario update must hand them back
untouched. Types are deliberately lenient where the editor's own types are not specified
(timestamps, flags, ordering), so that validating a merged scenario checks our changes
rather than rejecting what the editor already stores.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict

__all__ = [
    "Character",
    "Location",
    "Scenario",
    "ScenarioUpdate",
    "Scene",
    "WritingStyle",
]

_LENIENT = ConfigDict(extra="allow", use_attribute_docstrings=True)


class WritingStyle(BaseModel):
    """How the story is written."""

    model_config = _LENIENT

    style: str | None = None
    """Narrative style, e.g. "first person, present tense"."""
    genre: str | None = None
    """Genre, e.g. "fantasy"."""
    tone: str | None = None
    """Tone, e.g. "dark", "humorous"."""
    communicationStyle: str | None = None
    """How characters talk, e.g. "formal"."""
    theme: str | None = None
    """Central theme."""
    other: str | None = None
    """Any other style instruction."""
    language: str | None = None
    """Language the story is written in."""


class Character(BaseModel):
    """A character of the story."""

    model_config = _LENIENT

    id: str
    """Stable identifier; never changed once assigned."""
    name: str | None = None
    """Name."""
    alias: str | None = None
    """Nickname or alias."""
    role: str | None = None
    """Role in the story, e.g. "protagonist"."""
    gender: str | None = None
    """Gender."""
    appearance: str | None = None
    """Physical appearance."""
    backstory: str | None = None
    """Personal history."""
    extraInfo: str | None = None
    """Free-form notes."""
    photoId: str | None = None
    """Stored photo id (never edited by the agent)."""
    photoUrl: str | None = None
    """Photo URL (never edited by the agent)."""
    photo_data: str | None = None
    """Base64 photo (never edited by the agent)."""
    photo_mime_type: str | None = None
    """Photo MIME type (never edited by the agent)."""


class Location(BaseModel):
    """A place of the story."""

    model_config = _LENIENT

    id: str
    """Stable identifier; never changed once assigned."""
    name: str | None = None
    """Name."""
    visualDescription: str | None = None
    """What it looks like."""
    background: str | None = None
    """History and significance."""
    extraInfo: str | None = None
    """Free-form notes."""
    imageId: str | None = None
    """Stored image id (never edited by the agent)."""
    imageUrl: str | None = None
    """Image URL (never edited by the agent)."""
    image_data: str | None = None
    """Base64 image (never edited by the agent)."""
    image_mime_type: str | None = None
    """Image MIME type (never edited by the agent)."""


class Scene(BaseModel):
    """A scene of the story."""

    model_config = _LENIENT

    id: str
    """Stable identifier; never changed once assigned."""
    title: str | None = None
    """Title."""
    description: str | None = None
    """What happens."""
    characters: list[str] | None = None
    """Names of the characters present."""
    location: str | None = None
    """Where it happens."""
    time: str | None = None
    """When it happens."""
    notes: str | None = None
    """Free-form notes."""
    order: int | float | str | None = None
    """Position among the scenes."""


class ScenarioUpdate(BaseModel):
    """Any subset of a scenario's top-level keys: the payload of a scenario update."""

    model_config = _LENIENT

    id: str | None = None
    """Stable identifier of the scenario."""
    userId: str | int | None = None
    """Owner (set by the main backend)."""
    title: str | None = None
    """Story title."""
    synopsis: str | None = None
    """Short summary."""
    createdAt: str | int | float | None = None
    """Creation time as stored by the editor."""
    updatedAt: str | int | float | None = None
    """Last update time as stored by the editor."""
    writingStyle: WritingStyle | None = None
    """How the story is written."""
    promptSettings: dict[str, Any] | None = None
    """Editor prompt settings (never edited by the agent)."""
    storyarc: str | None = None
    """The arc of the story."""
    characters: list[Character] | None = None
    """Characters, each with a unique id."""
    locations: list[Location] | None = None
    """Locations, each with a unique id."""
    scenes: list[Scene] | None = None
    """Scenes, each with a unique id."""
    notes: str | None = None
    """Free-form notes."""
    backstory: str | None = None
    """World and story background."""
    multipleChapters: bool | None = None
    """Whether the story has several chapters."""
    fillIn: Any = None
    """Editor fill-in data."""
    timeline: list[Any] | None = None
    """Timeline entries."""
    imageId: str | None = None
    """Cover image id (never edited by the agent)."""
    imageUrl: str | None = None
    """Cover image URL (never edited by the agent)."""
    visibleTabs: list[str] | None = None
    """Editor tabs shown."""


class Scenario(ScenarioUpdate):
    """A whole scenario; like an update, but it must have an id."""

    id: str
    """Stable identifier of the scenario."""
