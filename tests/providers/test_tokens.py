"""tiktoken works offline from the shipped BPE files."""

from __future__ import annotations

import os

import pytest
import tiktoken.load

from providers import tokens
from providers.tokens import build_encoding
from providers.tokens import count_message_tokens
from providers.tokens import encoding_for
from providers.tokens import estimate_prompt_tokens


def test_encodings_match_reference_ids() -> None:
    assert encoding_for("local-model").encode("hello world") == [15339, 1917]
    assert encoding_for("gpt-4o-mini").encode("hello world") == [24912, 2375]


def test_building_reads_no_network_cache_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object) -> bytes:
        raise AssertionError(f"tiktoken tried to read {args}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", no_download)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    encoding = build_encoding("cl100k_base")
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert "TIKTOKEN_CACHE_DIR" not in os.environ
    assert encoding._mergeable_ranks == {}, "the Python copy of the ranks is dropped"


def test_a_file_that_is_not_tiktokens_is_refused() -> None:
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    with pytest.raises(RuntimeError, match="not the file tiktoken expects"):
        tokens._shipped_ranks(url, expected_hash="0" * 64)


def test_message_counting_includes_framing_and_images() -> None:
    text_only = count_message_tokens([{"role": "user", "content": "hello world"}])
    with_image = count_message_tokens(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello world"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64," + "A" * 10000},
                    },
                ],
            }
        ]
    )
    expected = 3 + 3 + len(encoding_for(None).encode("hello world\nuser"))  # primer, framing
    assert text_only == expected
    assert with_image == text_only + 85


def test_the_hold_estimate_needs_no_tokenizer_and_stays_near_the_count() -> None:
    english = [
        {"role": "system", "content": "You are a helpful writing assistant for stories."},
        {"role": "user", "content": "Write the opening of a mystery set in Venice in 1890."},
    ]
    cjk = [
        {"role": "user", "content": "请写一个关于威尼斯的神秘故事的开头，要有雾和一个失踪的船夫。"}  # noqa: RUF001
    ]
    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe it."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}},
            ],
        }
    ]
    for messages in (english, cjk, image):
        estimate, counted = estimate_prompt_tokens(messages), count_message_tokens(messages)
        assert 0.7 * counted <= estimate <= 1.6 * counted, (estimate, counted)
    assert estimate_prompt_tokens(english) >= count_message_tokens(english), "Latin: above"
