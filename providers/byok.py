"""Bring-your-own-key upstreams built per request from ``X-BYOK-*`` headers (contract 3).

``X-BYOK-Base-URL`` is a server-side request forgery vector: a user could aim the service at
its own loopback, the private network or a cloud metadata endpoint. Addresses are checked
twice: literal IPs and resolved names before the call (a clear 400), and again inside the
connector's resolver at connect time, so DNS rebinding between the two cannot slip through.
An IPv6 address carrying an IPv4 one (NAT64, 6to4, ...) is judged as that IPv4 address, and
a host the resolver could not encode is a 400 before any lookup. Redirects are never
followed. The key lives only in the request's headers to the upstream.

Without a base URL, the provider (and so the default base URL) is ``X-BYOK-Provider`` when
sent, else read from the key's shape: StoryWriter's frontend sends only the key.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from providers.errors import ForbiddenUpstream
from providers.errors import InvalidUpstreamConfig
from providers.settings import UpstreamKind
from providers.settings import UpstreamSettings

__all__ = [
    "BYOK_DEFAULT_BASE_URLS",
    "BYOK_KEY_PREFIXES",
    "AddressPolicy",
    "ByokSpec",
    "GuardedResolver",
    "check_base_url",
    "parse_byok",
    "provider_for_key",
]

BYOK_DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "github": "https://models.inference.ai.azure.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
}
#: Key prefixes that say who issued a key. StoryWriter's frontend sends a key, and a base URL
#: only when the user stored one, never ``X-BYOK-Provider``; without these a GitHub token
#: would be sent to OpenAI. The first match wins; any other key is OpenAI's.
BYOK_KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("ghp_", "github"),  # classic personal access token
    ("github_pat_", "github"),  # fine-grained personal access token
    ("gho_", "github"),  # OAuth app token
    ("ghu_", "github"),  # GitHub App user-to-server token
    ("ghs_", "github"),  # GitHub App installation token
    ("sk-or-", "openrouter"),
)
_KEY_DEFAULT_PROVIDER = "openai"
_KINDS: dict[str, UpstreamKind] = {
    "openai": "openai",
    "github": "github",
    "openrouter": "openrouter",
    "ollama": "ollama",
    "lmstudio": "lmstudio",
    "vllm": "vllm",
    "llamacpp": "llamacpp",
}
#: A DNS name as ``getaddrinfo`` and the connector take it: ASCII labels of 1-63 letters,
#: digits, ``-`` or ``_`` (an optional final dot). International names come in their
#: ``xn--`` form: a header is bytes, and a server reads non-ASCII bytes as Latin-1, so a
#: Unicode host never arrives as its user typed it (``ⓛocalhost`` arrives as ``â\x93\x9b...``).
_DNS_NAME = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
_DNS_NAME_MAX = 253
_BAD_HOST = (
    "X-BYOK-Base-URL host must be an IP address or an ASCII DNS name (labels of 1-63 "
    "letters, digits, '-' or '_'; an international name in its xn-- form)"
)
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 forms that only spell an IPv4 host: IPv4-compatible (``::a.b.c.d``, deprecated),
#: SIIT's IPv4-translated (``::ffff:0:a.b.c.d``) and the NAT64 well-known prefix, whose last
#: 32 bits are the IPv4 address (IPv4-mapped and 6to4 are decoded by ``ipaddress``).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_IN_LOW_BITS = (
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
)
#: Refused whatever they carry, unless listed: NAT64's local-use prefix (RFC 8215) embeds
#: the IPv4 address at a prefix length only the local operator knows, and Teredo (RFC 4380)
#: reaches its (XOR-obfuscated) client through relays; IANA calls neither globally reachable.
_OPAQUE_TUNNELS = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("2001::/32"),
)


def provider_for_key(api_key: str) -> str:
    """The provider whose key this looks like (``BYOK_KEY_PREFIXES``), else OpenAI."""
    for prefix, provider in BYOK_KEY_PREFIXES:
        if api_key.startswith(prefix):
            return provider
    return _KEY_DEFAULT_PROVIDER


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host a connection to ``ip`` ends at, when ``ip`` only stands for one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if (ip in _IPV4_COMPATIBLE and int(ip) > 1) or any(ip in net for net in _IPV4_IN_LOW_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _isatap_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address in an ISATAP interface id (``[02]00:5efe:a.b.c.d``, RFC 5214)."""
    if (int(ip) >> 32) & 0xFDFFFFFF == 0x5EFE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a BYOK base URL may reach: public ones, plus what the operator allows.

    An IPv6 address that carries an IPv4 one (mapped, compatible, translated, NAT64, 6to4,
    ISATAP) is judged as that IPv4 address, since that is where the connection goes: else
    ``64:ff9b::169.254.169.254`` would reach the metadata service through the host's NAT64.
    """

    allow_private: bool = False
    """Allow every non-public address (a trusted single-user deployment)."""
    allowed_networks: tuple[_IPNetwork, ...] = ()
    """Non-public networks allowed anyway, e.g. the LAN's Ollama host."""
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names allowed whatever they resolve to (e.g. ``localhost`` for a local LM Studio)."""

    def allows_ip(self, ip: _IPAddress) -> bool:
        """Public addresses, or private ones the operator listed."""
        if self.allow_private or any(ip in net for net in self.allowed_networks):
            return True
        if isinstance(ip, ipaddress.IPv6Address):
            if any(ip in net for net in _OPAQUE_TUNNELS):
                return False
            translated = _translated_ipv4(ip)
            if translated is not None:
                return self.allows_ip(translated)
            isatap = _isatap_ipv4(ip)
            if isatap is not None and not self.allows_ip(isatap):
                return False
        return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class ByokSpec:
    """A user's upstream; ``repr`` never shows the key."""

    base_url: str
    kind: UpstreamKind
    api_key: str = field(repr=False)

    def settings(self) -> UpstreamSettings:
        """Settings for a transient upstream (the key is passed to it separately)."""
        return UpstreamSettings(name="byok", kind=self.kind, base_url=self.base_url)


def parse_byok(api_key: str | None, base_url: str | None, provider: str | None) -> ByokSpec | None:
    """Build the BYOK upstream from the three headers, or None when no key is sent.

    Without a base URL the provider picks the default one: ``X-BYOK-Provider`` when sent,
    else the key's shape (``provider_for_key``), so listing models and completions agree.
    """
    if not api_key:
        return None
    api_key = api_key.strip()
    if not api_key or any(ord(c) < 33 or ord(c) > 126 for c in api_key):
        raise InvalidUpstreamConfig("X-BYOK-API-Key must be printable ASCII without spaces")
    name = (provider or "").strip().lower()
    if name and name not in _KINDS:
        raise InvalidUpstreamConfig(f"X-BYOK-Provider must be one of {', '.join(sorted(_KINDS))}")
    url = (base_url or "").strip()
    if not url:
        name = name or provider_for_key(api_key)
        url = BYOK_DEFAULT_BASE_URLS.get(name, "")
        if not url:
            raise InvalidUpstreamConfig(f"X-BYOK-Provider '{name}' needs an X-BYOK-Base-URL")
    _check_url(url)
    return ByokSpec(
        base_url=url.rstrip("/"), kind=_KINDS.get(name, "openai-compatible"), api_key=api_key
    )


def _check_url(url: str) -> None:
    """Refuse, as a 400, any URL that the resolver or the connector could not take."""
    if not url.isascii():
        raise InvalidUpstreamConfig(
            "X-BYOK-Base-URL must be ASCII: write an international host name in its xn-- form"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUpstreamConfig("X-BYOK-Base-URL is not a valid URL (host or port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise InvalidUpstreamConfig("X-BYOK-Base-URL must be an http(s) URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidUpstreamConfig("X-BYOK-Base-URL must not carry credentials, query or fragment")
    host = parts.hostname
    if _ip_literal(host) is None and not (
        len(host.rstrip(".")) <= _DNS_NAME_MAX and _DNS_NAME.fullmatch(host)
    ):
        raise InvalidUpstreamConfig(_BAD_HOST)


def _ip_literal(host: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def check_base_url(url: str, policy: AddressPolicy) -> None:
    """Refuse a base URL whose host is, or resolves to, an address the policy forbids."""
    host = urlsplit(url).hostname or ""
    if host.lower() in policy.allowed_hosts:
        return
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):  # UnicodeError: a label IDNA cannot encode
            raise InvalidUpstreamConfig(f"X-BYOK-Base-URL host '{host}' does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(policy.allows_ip(ip) for ip in addresses):
        raise ForbiddenUpstream(
            f"X-BYOK-Base-URL host '{host}' is a loopback, private, link-local or metadata "
            "address, which this service does not call unless its operator allows it"
        )


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that drops forbidden addresses at connect time (anti DNS rebinding)."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        """Guard ``inner`` (default: aiohttp's threaded ``getaddrinfo``) with ``policy``."""
        self._policy = policy
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve, keeping only addresses the policy allows."""
        try:
            results = await self._inner.resolve(host, port, family)
        except UnicodeError:  # from the IDNA codec: aiohttp only turns OSError into a 502
            raise OSError(f"{host} is not a host name that can be resolved") from None
        if host.lower() in self._policy.allowed_hosts:
            return results
        allowed = [r for r in results if self._policy.allows_ip(ipaddress.ip_address(r["host"]))]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses this service may not call")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
