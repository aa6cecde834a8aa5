"""Rate-limit state read from HTTP response headers.

Vendors spell the same facts differently:

* GitHub, Gitea (when enabled), Bitbucket: ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``
  (reset = Unix time), GitHub also ``X-RateLimit-Resource`` and ``X-RateLimit-Used``;
* GitLab and the IETF draft: ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (GitLab: Unix time,
  the draft: seconds from now) and GitLab's ``RateLimit-ResetTime`` (an HTTP date);
* everyone: ``Retry-After`` as delay-seconds or an HTTP date.

A reset value below ``_EPOCH_THRESHOLD`` cannot be a Unix time of this century, so it is read as a
delay in seconds; this is how both conventions are accepted without per-vendor configuration.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_EPOCH_THRESHOLD = 1_000_000_000.0


@dataclass(slots=True)
class RateLimitState:
    """The last rate-limit facts a provider reported (None = not reported)."""

    limit: int | None = None
    remaining: int | None = None
    # Unix time at which the window resets.
    reset: float | None = None
    # Seconds the provider asked us to wait, from the last ``Retry-After``.
    retry_after: float | None = None
    resource: str | None = None
    # Unix time of the response the state was read from.
    observed_at: float | None = None

    @property
    def known(self) -> bool:
        return self.limit is not None or self.remaining is not None or self.retry_after is not None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def headroom(self) -> float | None:
        """Fraction of the window still available (0..1), when limit and remaining are known."""
        if self.limit is None or self.remaining is None or self.limit <= 0:
            return None
        return max(0.0, min(1.0, self.remaining / self.limit))

    def wait_seconds(self, now: float) -> float | None:
        """How long to wait before retrying: ``Retry-After`` first, else until the reset if exhausted."""
        if self.retry_after is not None:
            return max(0.0, self.retry_after)
        if self.exhausted and self.reset is not None:
            return max(0.0, round(self.reset - now, 3))
        return None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (
            ("limit", self.limit), ("remaining", self.remaining), ("reset", self.reset),
            ("retry_after", self.retry_after), ("resource", self.resource),
        ) if v is not None}


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def _http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``; it is either delay-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when = _http_date(text)
    return None if when is None else max(0.0, round(when - now, 3))


def _reset(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return _http_date(value)
    return number if number >= _EPOCH_THRESHOLD else now + number


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimitState | None:
    """Read the rate-limit headers of one response, or None when it carries none.

    ``headers`` must be case-insensitive (``httpx.Headers``).
    """
    def first(*names: str) -> str | None:
        for name in names:
            value = headers.get(name)
            if value is not None:
                return value
        return None

    limit = _int(first("x-ratelimit-limit", "ratelimit-limit"))
    remaining = _int(first("x-ratelimit-remaining", "ratelimit-remaining"))
    reset = _reset(first("x-ratelimit-reset", "ratelimit-reset"), now)
    if reset is None:
        reset_time = first("ratelimit-resettime")
        reset = _http_date(reset_time) if reset_time else None
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if limit is None and remaining is None and reset is None and retry_after is None:
        return None
    return RateLimitState(limit=limit, remaining=remaining, reset=reset, retry_after=retry_after,
                          resource=first("x-ratelimit-resource"), observed_at=now)
