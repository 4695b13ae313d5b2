"""BYOK in the provider layer: which upstream a key goes to."""

from __future__ import annotations

import pytest

from providers.byok import BYOK_DEFAULT_BASE_URLS
from providers.byok import parse_byok

GITHUB_MODELS = "https://models.inference.ai.azure.com"


# --- Which upstream a key without a base URL goes to --------------------------------------


@pytest.mark.parametrize(
    ("key", "provider", "base_url", "kind"),
    [
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", None, GITHUB_MODELS, "github"),
        ("github_pat_11ABCDEFG0123456789_abcdefghij", None, GITHUB_MODELS, "github"),
        ("gho_0123456789abcdefghijABCDEFGHIJ012345", None, GITHUB_MODELS, "github"),
        ("ghu_0123456789abcdefghijABCDEFGHIJ012345", None, GITHUB_MODELS, "github"),
        ("ghs_0123456789abcdefghijABCDEFGHIJ012345", None, GITHUB_MODELS, "github"),
        ("sk-or-v1-0123456789abcdef", None, "https://openrouter.ai/api/v1", "openrouter"),
        ("sk-proj-0123456789abcdef", None, "https://api.openai.com/v1", "openai"),
        ("some-other-key-shape", None, "https://api.openai.com/v1", "openai"),
        # Prefixes are case-sensitive, as the issuers write them.
        ("GHP_0123456789abcdefghij", None, "https://api.openai.com/v1", "openai"),
        # The provider header, when sent, wins over the key's shape.
        ("ghp_0123456789abcdefghij", "openai", "https://api.openai.com/v1", "openai"),
        ("sk-proj-0123456789abcdef", "GitHub", GITHUB_MODELS, "github"),
        ("sk-or-v1-0123456789abcdef", "openrouter", "https://openrouter.ai/api/v1", "openrouter"),
    ],
)
def test_the_provider_comes_from_the_header_else_the_keys_shape(
    key: str, provider: str | None, base_url: str, kind: str
) -> None:
    spec = parse_byok(key, None, provider)
    assert spec is not None
    assert (spec.base_url, spec.kind) == (base_url, kind)
    assert spec.settings().base_url == base_url and spec.settings().kind == kind


def test_a_base_url_is_used_as_sent_whatever_the_key_looks_like() -> None:
    spec = parse_byok("ghp_0123456789abcdefghij", "https://llm.example.com/v1/", None)
    assert spec is not None
    assert (spec.base_url, spec.kind) == ("https://llm.example.com/v1", "openai-compatible")


def test_the_github_default_is_github_models() -> None:
    assert BYOK_DEFAULT_BASE_URLS["github"] == GITHUB_MODELS
