"""What a small model is asked to write: a few short fields per call, lengths bounded.

Under a json_schema grammar (llama.cpp) ``max_length`` bounds what the model may write,
so a call's time is bounded too (~40-70 tokens/s on one CPU thread), and a model that
rambles is cut by the grammar rather than by ``max_tokens`` in the middle of a string.
Each schema holds only what the code could not decide: a name the writer gave is not
asked for again, ids and photos never are. Field order is generation order: the name
first, so the rest is written about it.
"""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationInfo
from pydantic import field_validator

__all__ = [
    "CharacterSketch",
    "Intent",
    "LocationSketch",
    "LongText",
    "NamedCharacterSketch",
    "NamedLocationSketch",
    "ScenarioSketch",
    "SceneSketch",
    "Sentence",
    "ShortText",
    "Text",
    "TextAnswer",
    "text_schema",
]

_SKETCH = ConfigDict(frozen=True, use_attribute_docstrings=True)

SHORT = 60
"""Names, roles, tones, genres: a few words."""
MEDIUM = 280
"""Descriptions: two or three sentences."""
LONG = 480
"""Backstories, story arcs, synopses: a short paragraph."""


class Intent(BaseModel):
    """What the writer wants, when the request rules could not tell."""

    model_config = _SKETCH

    action: Literal["explain", "chat", "change", "add", "delete"]
    """explain = answer about the story; chat = anything else; change = edit something
    that exists; add = create something new; delete = remove something."""
    target: Literal["story", "character", "location", "scene", "style"]
    """What it is about."""


def _changed(value: str, info: ValidationInfo) -> str:
    """Reject a copy of the current text: small models often hand it back unchanged."""
    current = (info.context or {}).get("current")
    if (
        isinstance(current, str)
        and " ".join(value.split()).casefold() == " ".join(current.split()).casefold()
    ):
        raise ValueError("it is the same as the current text; write it changed as asked")
    return value


class TextAnswer(BaseModel):
    """Any answer that is one text (the schemas below differ by length)."""

    model_config = _SKETCH
    _check = field_validator("text")(_changed)  # inherited: every text answer is checked

    text: str
    """The text."""


class ShortText(TextAnswer):
    """A new short value."""

    text: str = Field(min_length=1, max_length=SHORT)
    """The new value, a few words."""


class Text(TextAnswer):
    """A new description."""

    text: str = Field(min_length=12, max_length=MEDIUM)
    """The complete new text, two or three sentences."""


class LongText(TextAnswer):
    """A new paragraph."""

    text: str = Field(min_length=20, max_length=LONG)
    """The complete new text, one short paragraph."""


class Sentence(TextAnswer):
    """One new sentence."""

    text: str = Field(min_length=12, max_length=160)
    """The sentence."""


SHORT_FIELDS = frozenset(
    {"name", "alias", "role", "gender", "title", "tone", "genre", "language", "theme",
     "style", "communicationStyle", "time", "location"}
)  # fmt: skip
_LONG_FIELDS = frozenset({"backstory", "background", "storyarc", "synopsis"})


def text_schema(field: str) -> type[ShortText] | type[Text] | type[LongText]:
    """The schema for a new value of ``field``, sized to what the field holds."""
    if field in SHORT_FIELDS:
        return ShortText
    if field in _LONG_FIELDS:
        return LongText
    return Text


Gender = Annotated[Literal["female", "male", "non-binary"], Field(description="Gender.")]
Looks = Annotated[
    str,
    Field(min_length=10, max_length=200, description="What it looks like, one or two sentences."),
]
Past = Annotated[
    str,
    Field(
        min_length=10,
        max_length=MEDIUM,
        description="Their history and what they want, two sentences.",
    ),
]
PlaceHistory = Annotated[
    str,
    Field(
        min_length=10,
        max_length=200,
        description="Its history and why it matters, one or two sentences.",
    ),
]
NewName = Annotated[
    str, Field(min_length=2, max_length=40, description="A new name, not used in the story yet.")
]
Role = Annotated[
    str,
    Field(min_length=3, max_length=40, description='Role, e.g. "supporting", "rival", "mentor".'),
]


class CharacterSketch(BaseModel):
    """A new character whose name is already known."""

    model_config = _SKETCH

    gender: Gender
    appearance: Looks
    backstory: Past


class NamedCharacterSketch(BaseModel):
    """A new character (the name first: the rest is written about it)."""

    model_config = _SKETCH

    name: NewName
    role: Role
    gender: Gender
    appearance: Looks
    backstory: Past


class LocationSketch(BaseModel):
    """A new location whose name is already known."""

    model_config = _SKETCH

    visualDescription: Looks
    background: PlaceHistory


class NamedLocationSketch(BaseModel):
    """A new location."""

    model_config = _SKETCH

    name: NewName
    visualDescription: Looks
    background: PlaceHistory


class SceneSketch(BaseModel):
    """A new scene."""

    model_config = _SKETCH

    title: str = Field(min_length=2, max_length=50)
    """A short title."""
    description: str = Field(min_length=10, max_length=MEDIUM)
    """What happens, two or three sentences."""


class CastMember(BaseModel):
    """A character of a new scenario."""

    model_config = _SKETCH

    name: NewName
    role: Role


class ScenarioSketch(BaseModel):
    """A new story."""

    model_config = _SKETCH

    title: str = Field(min_length=2, max_length=60)
    """Title."""
    synopsis: str = Field(min_length=20, max_length=MEDIUM)
    """What the story is about, two or three sentences."""
    genre: str = Field(min_length=3, max_length=30)
    """Genre."""
    tone: str = Field(min_length=3, max_length=30)
    """Tone."""
    characters: list[CastMember] = Field(min_length=2, max_length=3)
    """The main characters."""
    place: str = Field(min_length=2, max_length=40)
    """The name of the main location."""
