"""Configuration: TOML file, environment overrides for secrets, errors that name the key."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from quart_app.config import ConfigError
from quart_app.config import Settings

TOML = """
[server]
port = 5601
default_model = "gpt-4o-mini"

[auth]
cors_origins = ["https://storywriter.example"]

[[providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1/"
models = ["gpt-4o-mini"]
max_concurrency = 8
price_prompt_per_1k = 0.00015
price_completion_per_1k = 0.0006

[[providers]]
name = "ollama"
kind = "ollama"
base_url = "http://10.0.0.2:11434/v1"
"""


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "storywriter.toml"
    path.write_text(text)
    return {"STORYWRITER_CONFIG": str(path)}


def test_loads_toml_with_env_secrets(tmp_path: Path) -> None:
    env = write(tmp_path, TOML) | {
        "STORYWRITER_JWT_SECRET": "from-env-secret-0123456789abcdef",
        "STORYWRITER_PROVIDERS__OPENAI__API_KEY": "sk-from-env",
        "STORYWRITER_SERVER__SHOW_THINKING": "true",
    }
    settings = Settings.load(env)
    assert settings.server.port == 5601
    assert settings.server.show_thinking is True
    assert settings.auth.jwt_secret is not None
    assert settings.auth.jwt_secret.get_secret_value() == "from-env-secret-0123456789abcdef"
    openai = settings.providers[0]
    assert openai.api_key is not None and openai.api_key.get_secret_value() == "sk-from-env"
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai.multiplier == 1.0
    assert settings.providers[1].multiplier == 0.1
    assert settings.providers[1].models is None
    assert settings.embedded_enabled is False
    assert "sk-from-env" not in repr(settings)


def test_zero_configuration_enables_embedded_model() -> None:
    settings = Settings.load({})
    assert settings.providers == []
    assert settings.embedded_enabled is True
    assert settings.server.port == 5600


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[server]\nport = 99999\n", {}, "server.port"),
        ("[[providers]]\nname = 'x'\n", {}, "providers.0.base_url"),
        ("[[providers]]\nname = 'x'\nbase_url = 'ftp://x'\n", {}, "providers.0.base_url"),
        (
            "[[providers]]\nname = 'x'\nbase_url = 'http://x'\nmax_concurrency = 0\n",
            {},
            "providers.0.max_concurrency",
        ),
        ("[auth]\ncors_origins = ['*']\n", {}, "auth"),
        (
            "[[providers]]\nname='a'\nbase_url='http://a'\n[[providers]]\nname='a'\n"
            "base_url='http://b'\n",
            {},
            "unique",
        ),
        ("", {"STORYWRITER_PROVIDERS__NOPE__API_KEY": "x"}, "NOPE"),
        ("not toml = = =", {}, "not valid TOML"),
    ],
)
def test_wrong_config_fails_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.load(write(tmp_path, text) | env)
    assert named in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load({"STORYWRITER_CONFIG": str(tmp_path / "missing.toml")})


def test_the_shared_metrics_directory_comes_from_prometheus_clients_variable(
    tmp_path: Path,
) -> None:
    shared = str(tmp_path / "metrics")
    assert Settings.load({}).server.metrics_multiprocess_dir is None
    loaded = Settings.load({"PROMETHEUS_MULTIPROC_DIR": shared})
    assert loaded.server.metrics_multiprocess_dir == Path(shared)
    same = write(tmp_path, f'[server]\nmetrics_multiprocess_dir = "{shared}"\n')
    assert Settings.load(same | {"PROMETHEUS_MULTIPROC_DIR": shared}).server.port == 5600
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings.load(same)  # prometheus_client would keep its values in memory


SERVICE_PACKAGES = (
    "quart_app",
    "blueprints",
    "agent",
    "providers",
    "credits",
    "coordination",
    "gateway",
    "internals",
)


def test_only_the_configuration_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[2]
    readers = []
    for package in SERVICE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute):
                    name = node.attr
                elif isinstance(node, ast.Name):
                    name = node.id
                else:
                    continue
                if name in {"environ", "getenv", "putenv", "unsetenv"}:
                    readers.append(f"{path.relative_to(root)}:{node.lineno}")
    allowed = {"quart_app/config.py"}
    assert [r for r in readers if r.split(":")[0] not in allowed] == [], "pass settings in"
