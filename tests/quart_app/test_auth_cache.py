"""The verified-token cache of TokenVerifier: faster, never more permissive."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from quart_app import auth
from quart_app.auth import TokenVerifier
from quart_app.auth import mint_token
from quart_app.errors import APIError

SECRET = b"test-secret-that-is-long-enough-for-hs256"


def _verifier(leeway: float = 0.0, clock: Callable[[], float] = time.time) -> TokenVerifier:
    return TokenVerifier(SECRET, leeway_s=leeway, development=False, clock=clock)


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = _verifier()
    token = mint_token(SECRET, "alice")
    calls = []
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)  # what quart_app.auth calls
    assert verifier.user_for_token(token) == "alice"
    assert verifier.user_for_token(token) == "alice"
    assert len(calls) == 1


def test_a_cached_token_still_expires() -> None:
    now = [time.time()]
    verifier = _verifier(leeway=10, clock=lambda: now[0])
    token = jwt.encode({"sub": "bob", "exp": int(now[0]) + 60}, SECRET, algorithm="HS256")
    assert verifier.user_for_token(token) == "bob"
    now[0] = int(now[0]) + 60 + 10 - 0.001  # exp + leeway, just before
    assert verifier.user_for_token(token) == "bob"
    now[0] += 0.001
    with pytest.raises(APIError) as failure:
        verifier.user_for_token(token)
    assert failure.value.code == "TOKEN_EXPIRED"
    with pytest.raises(APIError) as again:  # verified afresh, on the same clock
        verifier.user_for_token(token)
    assert again.value.code == "TOKEN_EXPIRED"


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
