"""What every model call tells an observer (the metrics), at a few points only.

The provider layer must stay transport- and metrics-free (no Quart, no Prometheus), yet
operators need time to first token, the service's own overhead and upstream failures by
kind, for the proxy's calls and the agent's alike. So ``providers.calls`` calls these
methods at most twice per call - never per chunk - with plain values, and the default
observer does nothing. Tokens and credits are not reported here: they are settled once per
request through ``gateway.settlement``, whose listeners include the metrics.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CallObserver", "NoObserver"]


class CallObserver(Protocol):
    """Receives the timing and failures of model calls; every method must be cheap."""

    def first_byte(
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, mode: str
    ) -> None:
        """The first byte of the answer arrived (streams) or the answer is ready (JSON).

        Args:
            provider: Name of the upstream that answered (``byok`` for a caller's own).
            model: The model asked of it.
            elapsed_s: Seconds since the service received the call.
            upstream_s: Of these, seconds spent waiting on upstreams (all attempts).
            mode: ``stream`` or ``json`` (the proxy), ``agent_stream`` or ``agent_json``.
        """
        ...

    def upstream_error(self, provider: str, code: str, after_first_byte: bool) -> None:
        """An upstream failed: before the first byte (failed-over attempts too) or mid-stream.

        Args:
            provider: Name of the upstream.
            code: The error's stable SNAKE code (a bounded set, see ``providers.errors``).
            after_first_byte: True when streaming had already begun.
        """
        ...

    def continuation(self, provider: str, outcome: str) -> None:
        """A stream cut mid-answer was continued (``resumed``) or could not be (``failed``).

        Args:
            provider: The upstream asked for the rest (the one that died, when none was).
            outcome: ``resumed`` or ``failed``.
        """
        ...


class NoObserver:
    """The default: observes nothing."""

    def first_byte(  # noqa: D102
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, mode: str
    ) -> None:
        return None

    def upstream_error(self, provider: str, code: str, after_first_byte: bool) -> None:  # noqa: D102
        return None

    def continuation(self, provider: str, outcome: str) -> None:  # noqa: D102
        return None
