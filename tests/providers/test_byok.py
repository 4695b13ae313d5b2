"""BYOK in the provider layer: which upstream a key goes to, and what the SSRF guard refuses.

The SSRF table covers every way an IPv6 address can carry an IPv4 one (mapped, compatible,
SIIT-translated, NAT64, 6to4, Teredo, ISATAP): each is judged as the IPv4 address it leads
to, over all three paths an address reaches the guard by (a literal in the URL, the name
resolved before the call, the name resolved again by the connector at connect time).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver
from aiohttp.abc import ResolveResult

from providers.byok import BYOK_DEFAULT_BASE_URLS
from providers.byok import AddressPolicy
from providers.byok import GuardedResolver
from providers.byok import check_base_url
from providers.byok import parse_byok
from providers.errors import ForbiddenUpstream
from providers.errors import InvalidUpstreamConfig
from providers.errors import UpstreamUnavailable
from providers.settings import UpstreamSettings
from providers.upstream import Upstream

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


# --- SSRF: IPv4 addresses inside IPv6 ones ---------------------------------------------------

PUBLIC = "93.184.216.34"
INTERNAL = ("127.0.0.1", "169.254.169.254", "10.1.2.3")
#: A public Teredo server (Microsoft's), for Teredo addresses whose client is the target.
TEREDO_SERVER = "65.54.227.120"


def _v6(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def mapped(v4: str) -> str:
    return f"::ffff:{v4}"


def compatible(v4: str) -> str:
    return f"::{v4}"


def translated(v4: str) -> str:
    return f"::ffff:0:{v4}"


def nat64(v4: str) -> str:
    return f"64:ff9b::{v4}"


def nat64_local(v4: str) -> str:
    return f"64:ff9b:1::{v4}"


def nat64_local_48(v4: str) -> str:
    """RFC 6052 /48 embedding: bits 48-63 and 72-87, the u-octet (64-71) zero."""
    high, low = _v4(v4) >> 16, _v4(v4) & 0xFFFF
    return _v6((0x0064FF9B0001 << 80) | (high << 64) | (low << 40))


def sixtofour(v4: str) -> str:
    return _v6((0x2002 << 112) | (_v4(v4) << 80) | 1)


def teredo_client(v4: str) -> str:
    """Teredo with a public server; the client address is stored XOR 0xffffffff."""
    port = 0x63BF  # obfuscated port 40000
    return _v6(
        (0x20010000 << 96)
        | (_v4(TEREDO_SERVER) << 64)
        | (0x8000 << 48)
        | (port << 32)
        | (_v4(v4) ^ 0xFFFFFFFF)
    )


def teredo_server(v4: str) -> str:
    return _v6((0x20010000 << 96) | (_v4(v4) << 64) | (_v4(PUBLIC) ^ 0xFFFFFFFF))


def isatap(v4: str) -> str:
    """A global /64 (2600::/64) with an ISATAP interface id ``0:5efe:a.b.c.d``."""
    return _v6((0x2600 << 112) | (0x5EFE << 32) | _v4(v4))


#: Forms whose public variant is a public host (judged as the IPv4 address they carry).
TRANSLATIONS: tuple[Callable[[str], str], ...] = (
    mapped,
    compatible,
    translated,
    nat64,
    sixtofour,
    isatap,
)
#: Forms refused whatever they carry: not globally reachable, or reached through relays
#: that the address alone cannot tell us about (see AddressPolicy).
ALWAYS_REFUSED: tuple[Callable[[str], str], ...] = (
    nat64_local,
    nat64_local_48,
    teredo_client,
    teredo_server,
)

TABLE: list[tuple[str, bool]] = [
    *((form(v4), False) for form in TRANSLATIONS + ALWAYS_REFUSED for v4 in INTERNAL),
    *((form(PUBLIC), True) for form in TRANSLATIONS),
    *((form(PUBLIC), False) for form in ALWAYS_REFUSED),
    # Plain addresses, as a baseline for the table.
    (PUBLIC, True),
    ("2606:4700:4700::1111", True),
    ("::1", False),
    ("::", False),
    ("fe80::1", False),
    ("fd00::1", False),
]
STRICT = AddressPolicy()


def test_the_table_decodes_what_it_claims() -> None:
    """The helpers build the forms the standard library itself recognises."""
    assert ipaddress.IPv6Address(sixtofour("127.0.0.1")).sixtofour == ipaddress.IPv4Address(
        "127.0.0.1"
    )
    server, client = ipaddress.IPv6Address(teredo_client("169.254.169.254")).teredo or ((), ())
    assert (str(server), str(client)) == (TEREDO_SERVER, "169.254.169.254")
    assert ipaddress.IPv6Address(mapped("127.0.0.1")).ipv4_mapped is not None


@pytest.mark.parametrize(("address", "allowed"), TABLE)
def test_policy_judges_embedded_ipv4(address: str, allowed: bool) -> None:
    assert STRICT.allows_ip(ipaddress.ip_address(address)) is allowed


@pytest.mark.parametrize(("address", "allowed"), TABLE)
async def test_literal_base_urls(address: str, allowed: bool) -> None:
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:8080/v1"
    if allowed:
        await check_base_url(url, STRICT)
    else:
        with pytest.raises(ForbiddenUpstream):
            await check_base_url(url, STRICT)


@pytest.mark.parametrize(("address", "allowed"), TABLE)
async def test_names_resolving_to_the_address_before_the_call(
    address: str, allowed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def getaddrinfo(host: str, port: Any, **_: Any) -> list[Any]:
        assert host == "upstream.test"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, 0))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    if allowed:
        await check_base_url("https://upstream.test/v1", STRICT)
    else:
        with pytest.raises(ForbiddenUpstream):
            await check_base_url("https://upstream.test/v1", STRICT)


class _Resolves(AbstractResolver):
    """A resolver answering every name with fixed addresses (the connector's DNS)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(("address", "allowed"), TABLE)
async def test_names_resolving_to_the_address_at_connect_time(address: str, allowed: bool) -> None:
    resolver = GuardedResolver(STRICT, inner=_Resolves(address))
    if allowed:
        assert [r["host"] for r in await resolver.resolve("upstream.test", 443)] == [address]
    else:
        with pytest.raises(OSError):
            await resolver.resolve("upstream.test", 443)


async def test_the_connector_keeps_only_allowed_addresses() -> None:
    resolver = GuardedResolver(STRICT, inner=_Resolves(nat64("127.0.0.1"), nat64(PUBLIC)))
    assert [r["host"] for r in await resolver.resolve("upstream.test", 443)] == [nat64(PUBLIC)]


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        (nat64("127.0.0.1"), True),
        (sixtofour("127.0.0.2"), True),
        (compatible("127.0.0.1"), True),
        (nat64("169.254.169.254"), False),
        (teredo_client("127.0.0.1"), False),
    ],
)
def test_a_listed_ipv4_network_covers_its_embedded_forms(address: str, allowed: bool) -> None:
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert policy.allows_ip(ipaddress.ip_address(address)) is allowed


def test_a_listed_ipv6_network_is_allowed_as_listed() -> None:
    """An operator who lists their NAT64 prefix means it (e.g. a local-use DNS64 setup)."""
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("64:ff9b:1::/96"),))
    assert policy.allows_ip(ipaddress.ip_address(nat64_local(PUBLIC)))


# --- Hosts that do not encode -------------------------------------------------------------

LONG_LABEL = "a" * 64 + ".example"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://ⓛocalhost:5621/v1",
        # What a server makes of the same header: HTTP header bytes are read as Latin-1.
        "http://ⓛocalhost:5621/v1".encode().decode("latin-1"),
        "http://bücher.example/v1",
        "http://\u200b.example/v1",
        f"http://{LONG_LABEL}/v1",
        "http://a..b/v1",
        "http://" + "a." * 127 + "com/v1",
        "http://exa mple.com/v1",
        "http://%6cocalhost/v1",
        "http://[::1/v1",
        "http://[zz]/v1",
        "http://example.com:99999/v1",
        "http://example.com:port/v1",
    ],
)
def test_hosts_that_do_not_encode_are_invalid(base_url: str) -> None:
    with pytest.raises(InvalidUpstreamConfig) as refused:
        parse_byok("sk-test-0123456789", base_url, None)
    assert "X-BYOK-Base-URL" in str(refused.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://xn--bcher-kva.example/v1",
        "http://my_host.lan:8080/v1",
        "https://LLM.Example.COM./v1",
        "http://[::1]:8000/v1",
        "http://[fe80::1%25eth0]/v1",
        "http://10.0.0.5/v1",
    ],
)
def test_ascii_hosts_and_ip_literals_parse(base_url: str) -> None:
    assert parse_byok("sk-test-0123456789", base_url, None) is not None


async def test_check_base_url_never_lets_a_unicode_error_out() -> None:
    with pytest.raises(InvalidUpstreamConfig):
        await check_base_url(f"http://{LONG_LABEL}/v1", STRICT)


async def test_the_connectors_resolver_fails_as_a_connection_error() -> None:
    with pytest.raises(OSError):
        await GuardedResolver(STRICT).resolve(LONG_LABEL, 80)


async def test_an_upstream_on_such_a_host_is_unavailable_not_a_crash() -> None:
    """The connector path: aiohttp turns the resolver's OSError into a connection error."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(STRICT))
    async with aiohttp.ClientSession(connector=connector) as session:
        upstream = Upstream(
            UpstreamSettings(name="byok", base_url=f"http://{LONG_LABEL}/v1"),
            session,
            api_key="sk-test-0123456789",
        )
        with pytest.raises(UpstreamUnavailable):
            await upstream.list_models()
        with pytest.raises(UpstreamUnavailable):
            await upstream.complete(b'{"model":"m","messages":[]}')
