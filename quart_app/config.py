"""Settings: one pydantic model read from a TOML file, with environment overrides for secrets.

``Settings.load()`` reads the file named by ``STORYWRITER_CONFIG`` (stdlib ``tomllib``), then
applies ``STORYWRITER_``-prefixed variables (``__`` nests keys, values are JSON-decoded when
they parse, as Quart's ``from_prefixed_env``; providers are addressed by name:
``STORYWRITER_PROVIDERS__OPENAI__API_KEY``), then validates. A wrong key or value fails at
startup with its dotted name; the service never starts half-configured. Nothing else in the
project reads the environment.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic import ValidationError
from pydantic import model_validator

from agent.settings import AgentSettings
from coordination.settings import CoordinationSettings
from coordination.settings import LimitsSettings
from providers.embedded.settings import EmbeddedModelSettings
from providers.settings import UpstreamSettings

__all__ = [
    "AuthSettings",
    "ConfigError",
    "ConsoleSettings",
    "CreditsSettings",
    "ServerSettings",
    "Settings",
]

ENV_PREFIX = "STORYWRITER_"
CONFIG_ENV = "STORYWRITER_CONFIG"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MIB = 1024 * 1024


class ConfigError(Exception):
    """The configuration is wrong; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """``[server]``: how the service listens and behaves for every request."""

    host: str = "127.0.0.1"
    """Address ``quart run`` and the CLI bind to (hypercorn takes ``hypercorn.toml``)."""
    port: int = Field(default=5600, ge=1, le=65535)
    """The frontend's default backend port."""
    default_model: str | None = None
    """Model used when a request names none; default: the first listed model."""
    max_body_bytes: int = Field(default=8 * MIB, ge=1024)
    """Largest request body (images travel as data URIs); larger ones get 413."""
    show_thinking: bool = False
    """Re-emit upstream ``reasoning_content`` as ``<think>`` content on ``/chat/completions``
    (contract 5.2); dropped when false."""
    log_level: str = "INFO"
    """Root log level."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line (for log shippers); ``text``: for a terminal."""
    access_log: bool = True
    """One access-log line per request (method, path, status, duration, request id, user);
    health and metrics probes are logged at DEBUG only."""
    shutdown_grace_s: float = Field(default=20.0, ge=0, le=3600)
    """On SIGTERM, how long in-flight streams may finish before they end with the
    ``shutting_down`` error frame; keep it below hypercorn's ``graceful_timeout``."""
    readiness_cache_s: float = Field(default=5.0, ge=0, le=300)
    """How long ``/readyz`` reuses a provider probe, so probes never hammer upstreams."""
    stream_continuations: int = Field(default=2, ge=0, le=10)
    """How many times a stream cut mid-answer (reset, timeout, bad chunk, in-band upstream
    error) is continued from where it stopped, on the same or another provider, before it
    ends with the error frame; 0 turns continuation off. Per request:
    ``X-Stream-Continuation: off``; per provider: ``continuation``."""
    continuation_backoff_s: float = Field(default=0.25, ge=0, le=30)
    """Pause before asking again (doubled for each further continuation)."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at ``/metrics`` (see README: several workers)."""
    metrics_multiprocess_dir: Path | None = None
    """Where several workers share their metrics: filled from ``PROMETHEUS_MULTIPROC_DIR``,
    prometheus_client's own switch, which it reads from the environment when imported (so
    that variable is the one to set; this key may only repeat it)."""
    max_stream_s: float = Field(default=3600.0, gt=0)
    """The longest a stream (a proxied answer or an agent turn) may run: it then ends with
    the usual terminal frame (an error frame ``max_stream_time``; the agent's error pair)
    and is charged for what was generated."""


class AuthSettings(_Section):
    """``[auth]``: JWT verification and the CORS allow-list."""

    jwt_secret: SecretStr | None = None
    """HS256 secret shared with StoryWriter's main backend (env ``STORYWRITER_AUTH__JWT_SECRET``
    or ``STORYWRITER_JWT_SECRET``). Without it, a random secret is kept in
    ``dev_secret_file`` so that only tokens minted by ``storywriter token`` are accepted."""
    dev_secret_file: Path = Path("var/dev-jwt-secret")
    """Where the generated development secret lives when ``jwt_secret`` is not set."""
    mode: Literal["jwt", "development"] = "jwt"
    """``development`` lets requests without a token through as ``anon:<client address>``
    (loudly logged). Never use it in production."""
    leeway_s: float = Field(default=10.0, ge=0)
    """Clock skew tolerated on ``exp``."""
    cors_origins: list[str] = ["http://localhost:5173", "http://127.0.0.1:5173"]
    """Origins allowed to call from a browser; never ``*`` (credentials are sent)."""

    @model_validator(mode="after")
    def _no_wildcard(self) -> AuthSettings:
        if "*" in self.cors_origins:
            raise ValueError("cors_origins must list origins; '*' is not allowed with credentials")
        return self


class ByokSettings(_Section):
    """``[byok]``: where users' own upstreams may point."""

    allow_private_addresses: bool = False
    """Let BYOK base URLs reach loopback/private/link-local addresses (single-user setups)."""
    allowed_networks: list[str] = []
    """CIDRs allowed even though private, e.g. ``["192.168.1.0/24"]``."""
    allowed_hosts: list[str] = []
    """Host names allowed whatever they resolve to, e.g. ``["localhost"]``."""


class CreditsSettings(_Section):
    """``[credits]``: the ledger that member requests (not BYOK) are charged to."""

    enabled: bool = True
    """Reserve before and settle after every member call; off = nothing is charged or logged."""
    database_url: str = "sqlite:///var/credits.db"
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...`` (several
    workers on several hosts need PostgreSQL)."""
    welcome_credits: int = Field(default=10_000, ge=0)
    """Credits a user seen for the first time receives once; 0 = operators grant them all."""
    min_completion_tokens: int = Field(default=256, ge=1)
    """The shortest answer worth starting: a member whose balance cannot pay for the prompt
    plus this many tokens gets 402. Any balance above that is held whole and the upstream is
    sent the ``max_tokens`` it pays for (the answer then ends with ``finish_reason:
    "length"`` and ``capped_by: "credits"``), so a large ``max_tokens`` never refuses a
    story the balance can start."""
    reservation_ttl_s: float = Field(default=900.0, gt=0)
    """A hold left by a crashed worker is released after this long; the holds of running
    requests are renewed every quarter of it, however long they stream."""
    reconcile_interval_s: float = Field(default=60.0, gt=0)
    """How often expired holds are looked for."""
    store_prompt_text: bool = False
    """Keep prompt text in the usage log (off: only counts, never content)."""
    journal_dir: Path | None = None
    """Where this host keeps settlements until the ledger has them (one SQLite file per
    worker; they survive a ledger outage and a killed worker). Default: a
    ``credits-settlements`` directory next to an SQLite ledger's file, and
    ``var/credits-settlements/<digest of the URL>`` for PostgreSQL. Never share one
    directory between two ledgers: any worker applies the journals it finds there."""
    lock_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """The longest a ledger statement waits for another process's lock (SQLite) or for the
    server (PostgreSQL) before the ledger counts as unavailable (503 for new requests)."""
    retry_s: float = Field(default=2.0, gt=0, le=300)
    """While the ledger is unavailable: how often it is probed, and the ``Retry-After``
    of the 503 ``LEDGER_UNAVAILABLE`` answers."""


class ConsoleSettings(_Section):
    """``[console]``: the operator console at ``/console`` and who may use its data."""

    admin_users: list[str] = []
    """User ids (the JWT subject) allowed to use the console; everyone else gets 403."""
    admin_role: str | None = Field(default=None, min_length=1, max_length=64)
    """A role that makes its holder an admin: matched against the token's ``role`` or
    ``roles`` claim (a string or a list of strings), e.g. ``"admin"``."""
    push_interval_s: float = Field(default=2.0, ge=0.1, le=60)
    """How often the live view gets the pool and the streams in flight (one small JSON)."""
    window_s: float = Field(default=300.0, ge=10, le=3600)
    """TTFT percentiles and error rates are over this last stretch of time."""
    sample_interval_s: float = Field(default=5.0, ge=0.1, le=60)
    """How often the metrics are sampled for that window (only while admins exist)."""

    @property
    def has_admins(self) -> bool:
        """Whether anyone at all may use the console's data."""
        return bool(self.admin_users) or self.admin_role is not None


class Settings(_Section):
    """The whole configuration."""

    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    byok: ByokSettings = ByokSettings()
    embedded: EmbeddedModelSettings = EmbeddedModelSettings()
    credits: CreditsSettings = CreditsSettings()
    agent: AgentSettings = AgentSettings()
    limits: LimitsSettings = LimitsSettings()
    """``[limits]``: per-user rate limits and fair sharing of pool slots."""
    coordination: CoordinationSettings = CoordinationSettings()
    """``[coordination]``: memory (default) or Redis for limits, slots and busy status."""
    console: ConsoleSettings = ConsoleSettings()
    """``[console]``: the operator console's admins and its live view."""
    providers: list[UpstreamSettings] = []

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique: {', '.join(duplicates)}")
        return self

    @property
    def embedded_enabled(self) -> bool:
        """The embedded model runs when asked to, or by default when nothing else is set up."""
        if self.embedded.enabled is not None:
            return self.embedded.enabled
        return not self.providers

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the TOML file named by ``STORYWRITER_CONFIG``, apply env overrides, validate.

        Raises:
            ConfigError: unreadable file, bad TOML, or a key/value that does not validate.
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        path = env.get(CONFIG_ENV)
        if path:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except OSError as error:
                raise ConfigError(f"cannot read {CONFIG_ENV}={path}: {error.strerror}") from None
            except tomllib.TOMLDecodeError as error:
                raise ConfigError(f"{path} is not valid TOML: {error}") from None
        _apply_env(data, env)
        _apply_metrics_dir(data, env.get(METRICS_DIR_ENV) or None)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ConfigError(_describe(error, path)) from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    if env.get("STORYWRITER_JWT_SECRET"):
        data.setdefault("auth", {})["jwt_secret"] = env["STORYWRITER_JWT_SECRET"]
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if keys[0] == "providers" and len(keys) == 3:
            for provider in data.get("providers", []):
                if str(provider.get("name", "")).lower() == keys[1]:
                    provider[keys[2]] = value if keys[2] != "api_key" else raw
                    break
            else:
                raise ConfigError(f"{name} names no configured provider '{keys[1]}'")
            continue
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{name} does not name a configuration section")
        target[keys[-1]] = value


def _apply_metrics_dir(data: dict[str, Any], shared: str | None) -> None:
    """Fill ``server.metrics_multiprocess_dir`` from prometheus_client's variable.

    prometheus_client decides at import, from the variable alone, whether values go to
    files; a directory configured without it would make ``/metrics`` read files nobody
    writes, so a configured value must name the same directory.
    """
    server = data.setdefault("server", {})
    if not isinstance(server, dict):
        return  # validation reports the section
    configured = server.get("metrics_multiprocess_dir")
    if configured is not None and (shared is None or Path(str(configured)) != Path(shared)):
        raise ConfigError(
            f"server.metrics_multiprocess_dir must be set as {METRICS_DIR_ENV} "
            "(prometheus_client reads that variable itself)"
        )
    if shared is not None:
        server["metrics_multiprocess_dir"] = shared


def _describe(error: ValidationError, path: str | None) -> str:
    where = path or "the configuration"
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        lines.append(f"  {location}: {item['msg']}")
    return f"invalid {where}:\n" + "\n".join(lines)
