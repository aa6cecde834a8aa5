"""An authenticated principal: who (roles, attributes) and for which tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mosaic.gateway.context import Principal, RequestContext

AuthMethod = Literal["api_key", "oidc", "static_key", "local"]


@dataclass(slots=True)
class Identity(Principal):
    """A :class:`Principal` bound to one tenant by the credential that authenticated it.

    It is a ``Principal``, so it goes into ``RequestContext.principal`` as is; the gateway's
    tenant guard then refuses any context whose ``tenant`` differs from ``Identity.tenant``.
    """

    tenant: str = "default"
    method: AuthMethod = "local"
    key_id: str | None = None
    # Per-key quotas (requests/minute, writes/day) from the API key record.
    quotas: dict[str, Any] = field(default_factory=dict)

    def context(self, **kwargs: Any) -> RequestContext:
        """A request context for this identity (tenant and principal filled in)."""
        return RequestContext(tenant=self.tenant, principal=self, **kwargs)

    def describe(self) -> dict[str, Any]:
        """Safe to return to the caller (``whoami``): no credential material."""
        return {"id": self.id, "tenant": self.tenant, "roles": list(self.roles), "method": self.method,
                "attributes": dict(self.attributes), "key_id": self.key_id}


def actor_of(principal: Principal) -> str:
    """How the audit log and usage records name a principal."""
    return principal.id
