"""Model calls and settlements, counted in the Prometheus metrics.

``CallMetrics`` is two things at once, both wired when the services are built: the
observer of every model call (``providers.observer.CallObserver``: time to first token,
the service's own overhead, upstream failures - the proxy's calls and the agent's alike)
and a listener of the settlement pipeline (``gateway.settlement``: tokens, credits and
endings, counted from the same priced record the ledger charges, so the two agree).
"""

from __future__ import annotations

from credits.models import UsageRecord
from quart_app.metrics import Metrics

__all__ = ["CallMetrics"]

_BYOK = "byok"


class CallMetrics:
    """Calls and settlements onto ``Metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def first_byte(
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, mode: str
    ) -> None:
        """Record time to first token and the service's own share of it."""
        metrics = self._metrics
        model_label = _BYOK if provider == _BYOK else metrics.model_label(model)
        metrics.child(metrics.ttft, provider, model_label, mode).observe(elapsed_s)
        metrics.child(metrics.overhead, mode).observe(max(0.0, elapsed_s - upstream_s))

    def upstream_error(self, provider: str, code: str, after_first_byte: bool) -> None:
        """Count an upstream failure by its error code."""
        phase = "mid_stream" if after_first_byte else "before_first_byte"
        metrics = self._metrics
        metrics.child(metrics.upstream_errors, provider, code.lower(), phase).inc()

    def continuation(self, provider: str, outcome: str) -> None:
        """Count a continuation of a stream cut mid-answer."""
        metrics = self._metrics
        metrics.child(metrics.continuations, provider, outcome).inc()

    def settled(self, record: UsageRecord) -> None:
        """Count a settled request's ending, and each of its calls' tokens and credits."""
        metrics = self._metrics
        provider = _BYOK if record.byok else (record.provider or "none")
        model = _BYOK if record.byok else metrics.model_label(record.model or "none")
        metrics.child(metrics.completions, provider, model, record.status).inc()
        for call in record.calls:
            call_provider = _BYOK if record.byok else call.provider
            call_model = _BYOK if record.byok else metrics.model_label(call.model)
            if call.prompt_tokens:
                counter = metrics.child(metrics.tokens, call_provider, call_model, "prompt")
                counter.inc(call.prompt_tokens)
            if call.completion_tokens:
                counter = metrics.child(metrics.tokens, call_provider, call_model, "completion")
                counter.inc(call.completion_tokens)
            if call.credits:
                metrics.child(metrics.credits, call_provider, call_model).inc(call.credits)
