"""Bearer JWT authentication (HS256, contract 2) and the development-mode fallback.

The user is claim ``sub``, else claim ``identity`` (both hold the username, a string or an
integer), whole: it keys the user's credits and limits, so a user id over
``MAX_USER_ID_CHARS`` is refused rather than cut (cut ids made two users one). ``exp`` is
checked with a small leeway. Every failure is a 401 with ``WWW-Authenticate: Bearer``. With no
secret configured the service does not accept forged tokens: it keeps a random secret in a
local file (0600) and ``storywriter token USER`` mints tokens with it. Claims ``role`` and
``roles`` (a string or a list of strings) are kept as the caller's roles: the operator
console admits ``[console] admin_role``.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from quart_app.config import AuthSettings
from quart_app.errors import APIError

__all__ = ["MAX_USER_ID_CHARS", "Caller", "TokenVerifier", "load_secret", "mint_token"]

log = logging.getLogger(__name__)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="storywriter"'}
#: Tokens already verified, kept until they expire: a client sends the same token with every
#: request, and HS256 verification (~30 us) was the largest piece of our per-request work.
_VERIFIED_MAX = 1024
#: Longest user id accepted. The ledger stores ids as TEXT (SQLite and PostgreSQL) and Redis
#: keys hold far more; the bound keeps ids, log lines and keys sane.
MAX_USER_ID_CHARS = 256
#: Roles kept from one token, and the longest role name: bounds, not expectations.
_MAX_ROLES = 32
_MAX_ROLE_CHARS = 64
_NO_ROLES: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: ``user_id`` keys rate limits, credits and the usage log."""

    user_id: str
    authenticated: bool
    roles: frozenset[str] = _NO_ROLES
    """The token's ``role``/``roles`` claims (the console's admin role is one)."""


def load_secret(settings: AuthSettings) -> tuple[bytes, bool]:
    """The HS256 secret and whether it is a generated development secret."""
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value().encode()
        if len(value) < 16:
            raise ValueError("auth.jwt_secret must be at least 16 bytes")
        return value, False
    path = settings.dev_secret_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip(), True
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_hex(32).encode())
    return Path(path).read_bytes().strip(), True


def mint_token(
    secret: bytes, user: str, ttl_s: int = 12 * 3600, roles: tuple[str, ...] = ()
) -> str:
    """An HS256 token for ``user``, as StoryWriter's main backend would issue it."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user, "iat": now, "exp": now + ttl_s}
    if roles:
        claims["roles"] = list(roles)
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    """Checks ``Authorization`` headers; built once at startup."""

    def __init__(self, secret: bytes, *, leeway_s: float, development: bool) -> None:
        self._secret = secret
        self._leeway = leeway_s
        self.development = development
        self._verified: dict[str, tuple[str, float, frozenset[str]]] = {}
        """token -> (user, moment it stops being valid: ``exp`` + leeway or infinity, roles)."""

    def caller(self, authorization: str | None, client_address: str) -> Caller:
        """The caller for a request, or a 401 ``APIError``."""
        if not authorization:
            if self.development:
                return Caller(f"anon:{client_address}", authenticated=False)
            raise self._fail(
                "MISSING_TOKEN", "authentication required: send Authorization: Bearer <token>"
            )
        user, _, roles = self._verify(_bearer(authorization, self))
        return Caller(user, authenticated=True, roles=roles)

    def user_for_token(self, token: str) -> str:
        """The user a raw token names, or a 401 ``APIError`` (also used by the WebSocket)."""
        return self._verify(token)[0]

    def _verify(self, token: str) -> tuple[str, float, frozenset[str]]:
        """``(user, valid until, roles)`` of a raw token, or a 401 ``APIError``.

        A token verified before is answered from memory until its ``exp`` (+ leeway) passes;
        then it is verified again, which reports it expired. Only successes are remembered.
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known
            self._verified.pop(token, None)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                leeway=self._leeway,
                # PyJWT (>= 2.10) refuses a non-string sub before we could read it; an
                # integer id is a username too, so ``_user_of`` validates sub itself.
                options={"verify_aud": False, "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise self._fail("TOKEN_EXPIRED", "the token has expired") from None
        except jwt.InvalidTokenError:
            raise self._fail("INVALID_TOKEN", "the token is invalid") from None
        user = _user_of(claims)
        if user is None:
            raise self._fail("INVALID_TOKEN", "the token names no user (claim sub or identity)")
        if len(user) > MAX_USER_ID_CHARS:
            raise self._fail(
                "INVALID_TOKEN", f"the token's user id is over {MAX_USER_ID_CHARS} characters"
            )
        exp = claims.get("exp")
        valid_until = float(exp) + self._leeway if exp is not None else float("inf")
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        verified = (user, valid_until, _roles_of(claims))
        self._verified[token] = verified
        return verified

    @staticmethod
    def _fail(code: str, message: str) -> APIError:
        return APIError(401, code, message, headers=_CHALLENGE)


def _user_of(claims: dict[str, Any]) -> str | None:
    """Claim ``sub``, else ``identity``: the first that is a non-empty string or an integer."""
    for claim in ("sub", "identity"):
        value = claims.get(claim)
        if isinstance(value, str | int) and not isinstance(value, bool):
            user = str(value)
            if user:
                return user
    return None


def _roles_of(claims: dict[str, Any]) -> frozenset[str]:
    """Claims ``role`` and ``roles``: each a string or a list of strings; anything else none."""
    found: list[str] = []
    for claim in ("role", "roles"):
        value = claims.get(claim)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        found += [v for v in values if isinstance(v, str) and 0 < len(v) <= _MAX_ROLE_CHARS]
    return frozenset(found[:_MAX_ROLES]) if found else _NO_ROLES


def _bearer(header: str, verifier: TokenVerifier) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise verifier._fail("INVALID_TOKEN", "the Authorization header must be 'Bearer <token>'")
    return token.strip()
