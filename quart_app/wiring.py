"""Build the per-worker services inside the running event loop (``while_serving``).

Everything loop-bound is made here - upstream sessions, slot counters, the coordination
client, the ledger and its background reconciler, the embedded model handle - and closed
by the exit stack the caller passes, in reverse order, at shutdown.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from coordination import open_coordination
from credits.billing import LedgerBilling
from credits.ledger import Ledger
from credits.models import UsageRecord
from credits.reconciler import reconcile_periodically
from gateway.billing import NoBilling
from gateway.completions import Gateway
from gateway.continuation import ContinuationPolicy
from gateway.settlement import SettlementListener
from gateway.settlement import Settlements
from gateway.turns import AgentTurns
from providers.byok import AddressPolicy
from providers.byok import GuardedResolver
from providers.calls import ModelCalls
from providers.embedded import EmbeddedHandle
from providers.embedded import EmbeddedModelError
from providers.embedded import start_or_attach
from providers.embedded.settings import default_runtime_dir
from providers.pool import PoolMember
from providers.pool import ProviderPool
from providers.settings import UpstreamSettings
from providers.upstream import Upstream
from quart_app.auth import TokenVerifier
from quart_app.auth import load_secret
from quart_app.call_metrics import CallMetrics
from quart_app.config import Settings
from quart_app.metrics import Metrics
from quart_app.services import Services

__all__ = ["build_services"]

log = logging.getLogger(__name__)


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=30)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)


async def _embedded_upstream(
    settings: Settings, stack: AsyncExitStack
) -> tuple[UpstreamSettings, str, EmbeddedHandle] | None:
    try:
        handle = await start_or_attach(settings.embedded)
    except EmbeddedModelError as error:
        log.error("%s", error)  # one clear line; the service keeps its other providers
        return None
    stack.push_async_callback(handle.close)
    upstream = UpstreamSettings(
        name="local",
        kind="local",
        base_url=handle.base_url,
        models=[handle.model_id],
        max_concurrency=handle.slots,
        first_byte_timeout_s=300.0,
    )
    return upstream, handle.api_key, handle


async def build_services(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics | None = None
) -> Services:
    """Create everything loop-bound; ``stack`` closes it all at shutdown.

    Args:
        settings: The configuration.
        stack: Closes what is built here at shutdown, in reverse order.
        metrics: Where calls and settlements are counted (None: metrics are off).
    """
    # The tokenizer loads on first need, off the loop (providers.tokens): most upstreams
    # report usage, and an encoding is ~25-50 MiB per worker.
    secret, generated = load_secret(settings.auth)
    if generated:
        log.warning(
            "auth.jwt_secret is not set: using the development secret in %s; "
            "mint a token with `storywriter token <user>`",
            settings.auth.dev_secret_file,
        )
    development = settings.auth.mode == "development"
    if development:
        log.warning("auth.mode = development: requests WITHOUT a token are accepted as anon:<ip>")
    verifier = TokenVerifier(secret, leeway_s=settings.auth.leeway_s, development=development)

    configured: list[tuple[UpstreamSettings, str | None]] = [(p, None) for p in settings.providers]
    embedded: EmbeddedHandle | None = None
    if settings.embedded_enabled:
        found = await _embedded_upstream(settings, stack)
        if found is not None:
            configured.append((found[0], found[1]))
            embedded = found[2]
    coordination = await open_coordination(settings.limits, settings.coordination, stack)
    members = []
    for upstream_settings, key in configured:
        session = _session(upstream_settings.max_concurrency * 2)
        stack.push_async_callback(session.close)
        members.append(
            PoolMember(
                Upstream(upstream_settings, session, api_key=key),
                coordination.slots(
                    upstream_settings.name,
                    upstream_settings.max_concurrency,
                    per_host=upstream_settings.kind == "local",  # one embedded model per host
                    lock_dir=_slot_lock_dir(settings, embedded)
                    if upstream_settings.kind == "local"
                    else None,
                ),
            )
        )
    pool = ProviderPool(members, settings.server.default_model, settings.limits.queue_wait_s)

    policy = AddressPolicy(
        allow_private=settings.byok.allow_private_addresses,
        allowed_networks=tuple(ipaddress.ip_network(n) for n in settings.byok.allowed_networks),
        allowed_hosts=frozenset(h.lower() for h in settings.byok.allowed_hosts),
    )
    byok_connector = aiohttp.TCPConnector(limit=256, resolver=GuardedResolver(policy))
    byok_session = aiohttp.ClientSession(connector=byok_connector, trust_env=False)
    stack.push_async_callback(byok_session.close)
    ledger, billing = await _open_ledger(settings, stack)
    listeners: list[SettlementListener] = []
    limits = coordination.limits
    if limits.enabled:

        def correct_tokens(record: UsageRecord) -> None:
            tokens = record.prompt_tokens + record.completion_tokens
            # Admitted under the request id of the logs (the client's, when it sent one).
            limits.settled(record.user_id, record.correlation_id or record.request_id, tokens)

        listeners.append(correct_tokens)
    call_metrics = CallMetrics(metrics) if metrics is not None else None
    if call_metrics is not None:
        listeners.append(call_metrics.settled)
    settlements = Settlements(billing or NoBilling(), listeners, charges=settings.credits.enabled)
    stack.push_async_callback(settlements.drain)  # settlements still counting, then billing's
    calls = ModelCalls(pool, call_metrics)
    least = settings.credits.min_completion_tokens
    longest = settings.server.max_stream_s
    turns = AgentTurns(
        calls, settlements, settings.agent, min_completion_tokens=least, max_stream_s=longest
    )
    if settings.agent.preload:
        await turns.loader.get()
    return Services(
        settings=settings,
        verifier=verifier,
        pool=pool,
        calls=calls,
        gateway=Gateway(
            calls,
            settlements,
            min_completion_tokens=least,
            continuation=ContinuationPolicy(
                settings.server.stream_continuations, settings.server.continuation_backoff_s
            ),
            max_stream_s=longest,
        ),
        turns=turns,
        settlements=settlements,
        coordination=coordination,
        ledger=ledger,
        billing=billing,
        byok_session=byok_session,
        byok_policy=policy,
        embedded=embedded,
    )


def _slot_lock_dir(settings: Settings, embedded: EmbeddedHandle | None) -> Path | None:
    """Where the host's workers count the embedded model's slots (one set per server)."""
    if embedded is None:
        return None
    runtime = settings.embedded.runtime_dir or default_runtime_dir()
    return runtime / f"slots-{embedded.pid}"


async def _open_ledger(
    settings: Settings, stack: AsyncExitStack
) -> tuple[Ledger | None, LedgerBilling | None]:
    """Open the ledger and its writer; settle in-flight calls before it closes, reconcile."""
    config = settings.credits
    if not config.enabled:
        return None, None
    ledger = await Ledger.open(
        config.database_url,
        reservation_ttl_s=config.reservation_ttl_s,
        store_prompt_text=config.store_prompt_text,
        lock_timeout_s=config.lock_timeout_s,
    )
    stack.push_async_callback(ledger.close)
    billing = LedgerBilling(
        ledger,
        welcome_credits=config.welcome_credits,
        journal_dir=_journal_dir(config.journal_dir, config.database_url),
        store_prompt_text=config.store_prompt_text,
        reservation_ttl_s=config.reservation_ttl_s,
        max_hold_s=settings.server.max_stream_s + 300.0,
        retry_s=config.retry_s,
    )
    await billing.start()
    stack.push_async_callback(billing.close)  # runs before ledger.close (LIFO)
    reconciler = asyncio.create_task(reconcile_periodically(ledger, config.reconcile_interval_s))

    async def stop_reconciler() -> None:
        reconciler.cancel()
        await asyncio.gather(reconciler, return_exceptions=True)

    stack.push_async_callback(stop_reconciler)
    return ledger, billing


def _journal_dir(configured: Path | None, database_url: str) -> Path | None:
    """The settlement journal's directory: next to an SQLite ledger, ``var/`` otherwise.

    Journals are applied to the ledger of whoever finds them, so two ledgers never share a
    directory: a PostgreSQL ledger's is named after a digest of its URL. An in-memory
    ledger has none (it does not outlive the worker either).
    """
    if configured is not None:
        return configured
    scheme, _, rest = database_url.partition("://")
    if scheme.lower() != "sqlite":
        digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        return Path("var/credits-settlements") / digest
    path = rest[1:] if rest.startswith("/") else rest
    if path in ("", ":memory:"):
        return None
    return Path(path).parent / "credits-settlements"
