"""What a request carries through the pipeline."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Principal:
    """Who is calling: an API key, an OIDC subject, or the local operator."""

    id: str = "local"
    roles: tuple[str, ...] = ("admin",)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestContext:
    tenant: str = "default"
    principal: Principal = field(default_factory=Principal)
    # Qualified operation name; set by Gateway.execute.
    operation: str | None = None
    # Routing-relevant facts parsed from params (org, repo, user, private, sizes...).
    resource: dict[str, Any] = field(default_factory=dict)
    # Explicit provider instance id chosen by the caller (``--plugin``), bypassing routing.
    plugin: str | None = None
    idempotency_key: str | None = None
    # time.monotonic() value after which the request is abandoned; None = no deadline.
    deadline: float | None = None
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Filled by the pipeline: provider used, failovers, cache, rate-limit state...
    meta: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @classmethod
    def with_timeout(cls, seconds: float, **kwargs: Any) -> RequestContext:
        return cls(deadline=time.monotonic() + seconds, **kwargs)
