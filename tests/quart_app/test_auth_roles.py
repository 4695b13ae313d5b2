"""Role claims reach the caller, and only the configured admins are the console's."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from quart_app.auth import Caller
from quart_app.auth import TokenVerifier
from quart_app.auth import mint_token
from quart_app.config import ConsoleSettings
from quart_app.console_access import is_admin
from tests.conftest import SECRET


def _caller(**claims: Any) -> Caller:
    now = int(time.time())
    token = jwt.encode({"sub": "ops", "iat": now, "exp": now + 60, **claims}, SECRET, "HS256")
    verifier = TokenVerifier(SECRET.encode(), leeway_s=0, development=False)
    first = verifier.caller(f"Bearer {token}", "127.0.0.1")
    assert verifier.caller(f"Bearer {token}", "127.0.0.1") == first  # the cache keeps roles
    return first


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        ({}, set()),
        ({"role": "admin"}, {"admin"}),
        ({"roles": ["admin", "writer"]}, {"admin", "writer"}),
        ({"role": "ops", "roles": "admin"}, {"ops", "admin"}),
        ({"roles": [1, None, "", "x" * 65, {"a": 1}]}, set()),
        ({"roles": {"admin": True}}, set()),
    ],
)
def test_role_claims_become_the_callers_roles(claims: dict[str, Any], roles: set[str]) -> None:
    assert _caller(**claims).roles == roles


def test_minted_tokens_carry_roles() -> None:
    token = mint_token(SECRET.encode(), "ops", roles=("admin",))
    verifier = TokenVerifier(SECRET.encode(), leeway_s=0, development=False)
    assert verifier.caller(f"Bearer {token}", "x").roles == {"admin"}
    assert verifier.user_for_token(token) == "ops"


def test_admins_are_the_listed_users_or_the_role_holders() -> None:
    by_user = ConsoleSettings(admin_users=["ops"])
    by_role = ConsoleSettings(admin_role="admin")
    nobody = ConsoleSettings()
    assert is_admin(Caller("ops", True), by_user)
    assert not is_admin(Caller("alice", True), by_user)
    assert is_admin(Caller("alice", True, frozenset({"admin"})), by_role)
    assert not is_admin(Caller("alice", True, frozenset({"writer"})), by_role)
    assert not is_admin(Caller("ops", True, frozenset({"admin"})), nobody)
    assert not nobody.has_admins and by_user.has_admins and by_role.has_admins
    # A development-mode caller without a token is never an admin, whatever its name.
    assert not is_admin(Caller("ops", False), by_user)
