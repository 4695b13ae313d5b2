"""What the gateway tells an observer (metrics) about each call, at a few points only.

The gateway must stay transport- and metrics-free (no Quart, no Prometheus), yet operators
need time to first token, the service's own overhead and upstream failures by kind. So the
gateway calls these methods at most twice per call - never per chunk - with plain values,
and the default observer does nothing. Tokens and credits are not reported here: they are
settled once per call through the ``Billing`` seam, which the metrics layer also wraps.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["GatewayObserver", "NoObserver"]


class GatewayObserver(Protocol):
    """Receives the timing and failures of gateway calls; every method must be cheap."""

    def first_byte(
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, streamed: bool
    ) -> None:
        """The first byte of the answer is relayed (streams) or the answer is ready (JSON).

        Args:
            provider: Name of the upstream that answered (``byok`` for a caller's own).
            model: The model asked of it.
            elapsed_s: Seconds since the gateway received the call.
            upstream_s: Of these, seconds spent waiting on upstreams (all attempts).
            streamed: True for a stream, False for a non-streamed answer.
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


class NoObserver:
    """The default: observes nothing."""

    def first_byte(  # noqa: D102
        self, provider: str, model: str, elapsed_s: float, upstream_s: float, streamed: bool
    ) -> None:
        return None

    def upstream_error(self, provider: str, code: str, after_first_byte: bool) -> None:  # noqa: D102
        return None
