"""Worked classification examples, given to the model as earlier chat turns.

A 135M model follows demonstrations far better than rules, and far better as real
user/assistant turns than as examples quoted in the system prompt (measured against the
embedded SmolLM2: quoted examples were copied into answers). The names here are not the
writer's, so that the model does not mistake them for the current scenario.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage
from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage

from agent.llm_schemas import Classification
from agent.llm_schemas import Operation

__all__ = ["classification_shots"]


def _op(prompt: str, action: str, target: str, entity: str | None = None) -> Operation:
    return Operation.model_validate(
        {"prompt": prompt, "action": action, "target": target, "entity": entity}
    )


_SHOTS: tuple[tuple[str, tuple[Operation, ...]], ...] = (
    ("Who is the villain?", (_op("Who is the villain?", "details", "character", "villain"),)),
    (
        "Rename Tom to Max and add a harbour",
        (
            _op("Rename Tom to Max", "modification", "character", "Tom"),
            _op("add a harbour", "creation", "location"),
        ),
    ),
    (
        "Create a new supporting character",
        (_op("Create a new supporting character", "creation", "character"),),
    ),
    ("Make the tone darker", (_op("Make the tone darker", "modification", "writingStyle"),)),
    ("Rewrite the backstory", (_op("Rewrite the backstory", "modification", "backstory"),)),
    (
        "Write me a whole new fantasy story",
        (_op("Write me a whole new fantasy story", "creation", "scenario"),),
    ),
    ("Hello! How are you?", (_op("Hello! How are you?", "general_conversation", "general"),)),
)


def classification_shots() -> list[BaseMessage]:
    """Return the examples as alternating user and assistant messages.

    The answers are serialised from the output model, so they always match its schema.
    """
    shots: list[BaseMessage] = []
    for message, operations in _SHOTS:
        answer = Classification(operations=list(operations)).model_dump_json()
        shots += [HumanMessage(message), AIMessage(answer)]
    return shots
