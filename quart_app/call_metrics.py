"""The gateway's observer and billing seams, feeding the Prometheus metrics.

``GatewayMetrics`` receives time to first token, overhead and upstream failures from the
gateway (``providers.observer``); ``MeteredBilling`` sits in front of the real billing and
counts tokens, credits and endings once per call, when the call settles - the same moment
and the same numbers the ledger sees, so metrics and the usage log agree.
"""

from __future__ import annotations

from typing import Any

from providers.billing import Billing
from providers.billing import Settlement
from providers.pricing import credits_for
from quart_app.metrics import Metrics

__all__ = ["GatewayMetrics", "MeteredBilling"]

_BYOK = "byok"


class GatewayMetrics:
    """``providers.observer.GatewayObserver`` onto ``Metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def first_byte(
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, streamed: bool
    ) -> None:
        """Record time to first token and the service's own share of it."""
        metrics = self._metrics
        mode = "stream" if streamed else "json"
        model_label = _BYOK if provider == _BYOK else metrics.model_label(model)
        metrics.child(metrics.ttft, provider, model_label, mode).observe(elapsed_s)
        metrics.child(metrics.overhead, mode).observe(max(0.0, elapsed_s - upstream_s))

    def upstream_error(self, provider: str, code: str, after_first_byte: bool) -> None:
        """Count an upstream failure by its error code."""
        phase = "mid_stream" if after_first_byte else "before_first_byte"
        metrics = self._metrics
        metrics.child(metrics.upstream_errors, provider, code.lower(), phase).inc()


class MeteredBilling:
    """Counts each settlement, then hands it to the billing it wraps."""

    def __init__(self, inner: Billing, metrics: Metrics, *, charges: bool) -> None:
        """Wrap ``inner``.

        Args:
            inner: The billing that reserves and settles for real.
            metrics: Where tokens, credits and endings are counted.
            charges: Whether members are charged at all (credits enabled).
        """
        self.inner = inner
        self._metrics = metrics
        self._charges = charges

    async def reserve(self, user_id: str, request_id: str, estimate: int) -> None:
        """Delegate: metrics count what was used, not what was held."""
        await self.inner.reserve(user_id, request_id, estimate)

    def settle(self, settlement: Settlement) -> None:
        """Count the call's tokens, credits and ending, then settle it."""
        try:
            self._count(settlement)
        finally:
            self.inner.settle(settlement)

    def _count(self, s: Settlement) -> None:
        metrics = self._metrics
        provider = _BYOK if s.byok else (s.provider or "none")
        model = _BYOK if s.byok else metrics.model_label(s.model or "none")
        metrics.child(metrics.completions, provider, model, s.ending).inc()
        if s.prompt_tokens:
            metrics.child(metrics.tokens, provider, model, "prompt").inc(s.prompt_tokens)
        if s.completion_tokens:
            metrics.child(metrics.tokens, provider, model, "completion").inc(s.completion_tokens)
        # The ledger's rule (credits.billing): nothing is charged when nothing was generated.
        if self._charges and not s.byok and (s.completion_tokens > 0 or s.ending == "completed"):
            charge = credits_for(s.prompt_tokens, s.completion_tokens, s.multiplier)
            if charge:
                metrics.child(metrics.credits, provider, model).inc(charge)

    def __getattr__(self, name: str) -> Any:
        # Anything else (e.g. a drain method) is the wrapped billing's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
