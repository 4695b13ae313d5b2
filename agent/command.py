"""An operation read from a writer's request by code (the small-model profile).

The LLM's ``Operation`` says what to do and to what; a ``Command`` adds what the writer
stated exactly (``values``: nothing left for a model to get wrong) and, for an open edit
("make Mira older"), the one field a model rewrites (``focus``). Nodes that receive a
``Command`` take the small-model paths (``agent.nodes.fields``, ``agent.nodes.invent``).
"""

from __future__ import annotations

from pydantic import Field

from agent.llm_schemas import Operation

__all__ = ["Command"]


class Command(Operation):
    """An operation read from the request by code, with what the writer stated exactly."""

    values: dict[str, str] = Field(default_factory=dict)
    """Field -> literal value the writer gave ("to Ann", "named Morvane", "in Spanish");
    for ``writingStyle`` the keys are its keys."""
    focus: str | None = None
    """For an open edit: the one field the model rewrites (``appearance``, ``tone``...)."""
    append: bool = False
    """``values`` are added to the field's text instead of replacing it (notes)."""
    hint: str = ""
    """For a creation: the writer's description of the new thing."""
