"""The verified-token cache of TokenVerifier: faster, never more permissive."""

from __future__ import annotations

import time

import jwt
import pytest

from quart_app import auth
from quart_app.auth import TokenVerifier
from quart_app.auth import mint_token
from quart_app.errors import APIError

SECRET = b"test-secret-that-is-long-enough-for-hs256"


def _verifier(leeway: float = 0.0) -> TokenVerifier:
    return TokenVerifier(SECRET, leeway_s=leeway, development=False)


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = _verifier()
    token = mint_token(SECRET, "alice")
    calls = []
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth.jwt, "decode", counting_decode)
    assert verifier.user_for_token(token) == "alice"
    assert verifier.user_for_token(token) == "alice"
    assert len(calls) == 1


def test_a_cached_token_still_expires() -> None:
    verifier = _verifier()
    now = int(time.time())
    token = jwt.encode({"sub": "bob", "exp": now + 1}, SECRET, algorithm="HS256")
    assert verifier.user_for_token(token) == "bob"
    time.sleep(max(now + 1 - time.time(), 0) + 0.1)
    with pytest.raises(APIError) as failure:
        verifier.user_for_token(token)
    assert failure.value.code == "TOKEN_EXPIRED"


def test_failures_are_never_cached() -> None:
    verifier = _verifier()
    forged = mint_token(b"another-secret-that-is-long-enough!!", "mallory")
    for _ in range(2):
        with pytest.raises(APIError) as failure:
            verifier.user_for_token(forged)
        assert failure.value.code == "INVALID_TOKEN"


def test_the_cache_is_bounded() -> None:
    verifier = _verifier()
    for i in range(auth._VERIFIED_MAX + 5):
        assert verifier.user_for_token(mint_token(SECRET, f"user{i}")) == f"user{i}"
    assert len(verifier._verified) <= auth._VERIFIED_MAX
