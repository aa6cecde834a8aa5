"""Data-residency guard: a tenant pinned to regions is only ever served by providers in them.

The guard sits between routing and failover: it sees the routing decision (the ordered
candidates) before any of them is called. Candidates outside the allowed regions — including
providers with no region declared, since unknown is not compliant — are removed; if the
decision's first choice was among them, ``ctx.meta["residency"]`` records the refusal and the
audit layer writes an entry for it (reads included). When no compliant candidate is left the
call is refused with :class:`ResidencyViolation` before reaching any provider.
"""

from __future__ import annotations

from pydantic import BaseModel

from mosaic.errors import Forbidden
from mosaic.gateway.pipeline import Call, Next
from mosaic.tenancy.settings import Residency


class ResidencyViolation(Forbidden):
    """Stable code ``forbidden`` (it is an authorization refusal); details name the regions."""


class ResidencyGuard:
    def __init__(self, policy: Residency | None) -> None:
        self.policy = policy if policy is not None and policy.regions else None

    def allowed_regions(self, call: Call) -> set[str]:
        assert self.policy is not None
        regions = set(self.policy.regions)
        if self.policy.follow_principal_region:
            own = call.ctx.principal.attributes.get("region")
            if isinstance(own, str) and own:
                regions &= {own.lower()}
        return regions

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        policy = self.policy
        if policy is None:
            return await nxt(call)
        regions = self.allowed_regions(call)
        keep = [p for p in call.candidates if policy.providers.get(p.id) in regions]
        refused = [p.id for p in call.candidates if p not in keep]
        if refused and call.candidates and call.candidates[0].id in refused:
            call.ctx.meta["residency"] = {
                "refused": refused, "allowed_regions": sorted(regions),
                "regions": {pid: policy.providers.get(pid, "undeclared") for pid in refused},
                "served_by_fallback": bool(keep)}
        if not keep:
            raise ResidencyViolation(
                f"{call.op.qualified_name} would be routed to a provider outside the tenant's regions "
                f"({', '.join(sorted(regions)) or 'none allowed for this caller'}); refused",
                details={"refused": refused, "allowed_regions": sorted(regions)})
        call.candidates = keep
        return await nxt(call)
