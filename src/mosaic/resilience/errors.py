"""Rejections made by the gateway's own resilience layers (not by a provider).

They keep the public error codes (``provider_unavailable``, ``rate_limited``) so clients see the
usual contract, and carry :class:`LocalRejection` so that the retry layer never retries them and
the circuit breaker never counts them against the provider.
"""

from __future__ import annotations

from typing import Any

from mosaic.errors import ProviderUnavailable, RateLimited


class LocalRejection:
    """Marker: raised by our own layers before anything was sent to the provider."""


def is_local_rejection(exc: BaseException) -> bool:
    return isinstance(exc, LocalRejection)


class BulkheadFull(ProviderUnavailable, LocalRejection):
    def __init__(self, plugin_id: str, limit: int) -> None:
        super().__init__(f"{plugin_id} already has {limit} calls in flight (bulkhead full)",
                         details={"provider": plugin_id, "max_concurrent_calls": limit}, sent=False)


class LocalRateLimited(RateLimited, LocalRejection):
    """The client-side rate limit has no slot before the call's deadline."""

    def __init__(self, plugin_id: str, retry_after: float | None, reason: str,
                 details: dict[str, Any] | None = None) -> None:
        wait = f"; retry in {retry_after:.3f}s" if retry_after is not None else ""
        super().__init__(f"{plugin_id}: rate limit reached ({reason}){wait}",
                         retry_after=None if retry_after is None else round(retry_after, 3),
                         details={"provider": plugin_id, **(details or {})})
