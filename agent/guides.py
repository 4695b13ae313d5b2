"""Describe an output model in plain words, for the prompt of a structured call.

A raw JSON schema in the prompt confuses a 135M model: it copies schema words
("anyOf", descriptions) into its answer. The grammar built from ``response_format``
already enforces the syntax, so the prompt only has to say what each key means. The
guide is generated from the pydantic model, so it can never disagree with validation.
"""

from __future__ import annotations

import functools
import json
import types
from typing import Any
from typing import Literal
from typing import Union
from typing import get_args
from typing import get_origin

from annotated_types import MaxLen
from annotated_types import MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["field_guide"]

_SCALARS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _nested(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        kinds = [_kind(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin is list:
        item = get_args(annotation)[0]
        return "a list of objects" if _nested(item) else f"a list of {_kind(item)}"
    if _nested(annotation):
        return "object"
    return "a value"


def _size(info: FieldInfo) -> str:
    low = next((m.min_length for m in info.metadata if isinstance(m, MinLen)), None)
    high = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
    if low is not None and low == high:
        return f" (exactly {low})"
    if low is not None and high is not None:
        return f" ({low} to {high})"
    return f" (at most {high})" if high is not None else ""


def _lines(model: type[BaseModel], indent: str) -> list[str]:
    lines = []
    for name, info in model.model_fields.items():
        description = " ".join((info.description or "").split())
        kind = _kind(info.annotation) + _size(info)
        lines.append(f'{indent}- "{name}": {kind}. {description}'.rstrip())
        nested = _nested(info.annotation)
        if nested is not None:
            lines.append(f"{indent}  with the keys:")
            lines.extend(_lines(nested, indent + "  "))
    return lines


@functools.cache
def field_guide(model: type[BaseModel]) -> str:
    """Return a plain-words description of the JSON object ``model`` validates.

    Args:
        model: A pydantic model whose fields carry descriptions (attribute docstrings).
    """
    return "\n".join(_lines(model, ""))
