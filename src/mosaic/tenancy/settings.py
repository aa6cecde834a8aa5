"""A tenant's settings: quotas, provider budgets, data residency, network and env allowances.

Stored as JSON in ``tenants.settings``; camelCase aliases like the configuration file.
Quotas, provider budgets, ``network`` and ``allowExec`` are set by platform admins (admins of
the ``default`` tenant) only; ``residency`` may also be set by the tenant's own admins — a
tenant may always restrict itself further.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mosaic.errors import InvalidRequest

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_TENANT = "default"
Period = Literal["minute", "hour", "day", "month"]
PERIOD_SECONDS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400, "month": 31 * 86400}
# Limits are counters in Redis and JSON in the database: keep them well inside 64 bits.
MAX_COUNT = 10**12


def check_tenant_name(name: str) -> str:
    if not isinstance(name, str) or not TENANT_RE.match(name):
        raise InvalidRequest("a tenant name is 1-63 lowercase letters, digits and '-', starting with a "
                             "letter or digit", details={"field": "tenant"})
    return name


class RateQuota(BaseModel):
    model_config = _STRICT

    requests_per_minute: int | None = Field(default=None, ge=1, le=MAX_COUNT, alias="requestsPerMinute")
    writes_per_day: int | None = Field(default=None, ge=1, le=MAX_COUNT, alias="writesPerDay")

    @property
    def empty(self) -> bool:
        return self.requests_per_minute is None and self.writes_per_day is None


class ProviderBudget(BaseModel):
    model_config = _STRICT

    calls: int = Field(ge=1, le=MAX_COUNT, description="Calls allowed per period to this provider instance.")
    per: Period = "day"


class Residency(BaseModel):
    """Pin the tenant's data to regions: only providers tagged with an allowed region serve it."""

    model_config = _STRICT

    regions: list[str] = Field(default_factory=list, description="Allowed regions, e.g. [eu].")
    providers: dict[str, str] = Field(default_factory=dict,
                                      description="Provider instance id -> region it stores data in.")
    follow_principal_region: bool = Field(
        default=False, alias="followPrincipalRegion",
        description="Also require the provider's region to equal the caller's `region` attribute.")

    @field_validator("regions")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [r.strip().lower() for r in v if r.strip()]

    @field_validator("providers")
    @classmethod
    def _lower_map(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: r.strip().lower() for k, r in v.items()}


class Network(BaseModel):
    model_config = _STRICT

    allow_private: list[str] = Field(
        default_factory=list, alias="allowPrivate",
        description="Networks (CIDR) or host names a provider base URL may point at although they are "
                    "loopback, link-local or private. Granted by a platform admin.")

    @field_validator("allow_private")
    @classmethod
    def _entries(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                if not re.match(r"^[A-Za-z0-9.-]+$", item):
                    raise ValueError(f"{item!r} is neither a CIDR network nor a host name") from None
        return v


class TenantSettings(BaseModel):
    model_config = _STRICT

    quotas: RateQuota = Field(default_factory=RateQuota)
    provider_budgets: dict[str, ProviderBudget] = Field(default_factory=dict, alias="providerBudgets")
    residency: Residency | None = None
    network: Network = Field(default_factory=Network)
    allow_exec: bool = Field(default=False, alias="allowExec",
                             description="May the tenant's local CI/CD providers run commands here.")
    env_allow: list[str] = Field(
        default_factory=list, alias="envAllow",
        description="Environment variables (globs) the tenant's config may reference as ${VAR}, besides "
                    "MOSAIC_TENANT_<NAME>_*.")

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> TenantSettings:
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg']}"
                                 for e in exc.errors())
            raise InvalidRequest(f"invalid tenant settings: {problems}") from None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


# Settings only a platform admin may change (a tenant must not raise its own limits or open
# the server's network or shell to itself).
PLATFORM_ONLY = ("quotas", "providerBudgets", "network", "allowExec", "envAllow")
