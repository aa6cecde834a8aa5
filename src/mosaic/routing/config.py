"""Schema of the ``routing`` section of the configuration (owned by the routing engine).

Accepts the seed's YAML shapes as written, including use case 2's::

    - default:
      provider: woodpecker-ci        # parses as {"default": None, "provider": ...}
    - default:
        provider: woodpecker-ci      # parses as {"default": {"provider": ...}}

and use case 4's ``phases: [{phase: 1, routing: [...]}]``. Patterns and CEL conditions are
compiled while the file is validated, so a bad one is reported with its file, line and
rule path like any other configuration problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mosaic.catalog.base import Service

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)

Strategy = Literal["round-robin", "least-connections", "weighted", "latency", "cost"]


class HealthCheckSpec(BaseModel):
    model_config = _STRICT

    interval: int = Field(default=30000, ge=100, description="Milliseconds between probes.")
    timeout: int = Field(default=5000, ge=10, description="Milliseconds before a probe fails.")
    unhealthy_threshold: int = Field(
        default=3, ge=1, alias="unhealthyThreshold",
        description="Consecutive failed requests (passive) that mark an instance unhealthy.")


class CostSpec(BaseModel):
    """What one call to a provider costs, for the ``cost`` strategy (seed use case 5)."""

    model_config = _STRICT

    per_request: float = Field(default=0.0, ge=0, alias="perRequest", description="Currency units per call.")
    per_minute: float = Field(default=0.0, ge=0, alias="perMinute",
                              description="Currency units per minute of (estimated) duration.")
    per_gb: float = Field(default=0.0, ge=0, alias="perGB",
                          description="Currency units per GB of `build.size` (egress, storage).")
    capacity: int | None = Field(default=None, ge=1,
                                 description="Concurrent calls the provider runs without queueing.")
    expected_duration_ms: float | None = Field(
        default=None, gt=0, alias="expectedDurationMs",
        description="Duration assumed until calls have been observed.")


class SlaSpec(BaseModel):
    model_config = _STRICT

    max_duration_ms: float | None = Field(default=None, gt=0, alias="maxDurationMs")
    # Operation glob (``cicd.trigger_pipeline``, ``cicd.*``) -> maximum duration in ms.
    operations: dict[str, float] = Field(default_factory=dict)


class LatencySpec(BaseModel):
    model_config = _STRICT

    alpha: float = Field(default=0.3, gt=0, le=1, description="EWMA smoothing factor.")
    explore: float = Field(default=0.05, ge=0, le=1,
                           description="Share of calls sent to a non-fastest candidate to keep "
                                       "estimates fresh.")


class LoadBalancingSpec(BaseModel):
    model_config = _STRICT

    strategy: Strategy = "round-robin"
    health_check: HealthCheckSpec = Field(default_factory=HealthCheckSpec, alias="healthCheck")
    weights: dict[str, float] = Field(default_factory=dict, description="Provider id -> weight (> 0).")
    costs: dict[str, CostSpec] = Field(default_factory=dict)
    sla: SlaSpec = Field(default_factory=SlaSpec)
    latency: LatencySpec = Field(default_factory=LatencySpec)
    seed: int | None = Field(default=None, description="Seed of the random choices (tests, replays).")

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in v.items() if not w > 0]
        if bad:
            raise ValueError(f"weights must be > 0 (check {', '.join(sorted(bad))})")
        return v


class FailoverSpec(BaseModel):
    model_config = _STRICT

    on_not_found: bool = Field(
        default=False, alias="onNotFound",
        description="A read answered NotFound tries the next candidate: during a migration the "
                    "object is found on whichever provider holds it. Writes never move on NotFound.")


class RuleSpec(BaseModel):
    """One routing rule as written in the configuration."""

    model_config = _STRICT

    name: str | None = None
    description: str = ""
    pattern: str | None = Field(default=None, description="org:, repo:, user:, private:, new-repos:, "
                                "legacy: or a glob over 'owner/name'; a leading '!' negates.")
    condition: str | None = Field(default=None, description="CEL expression over the request context.")
    provider: list[str] = Field(min_length=1, description="Plugin instance id(s); several = a tie.")
    priority: int = 0
    default: bool = Field(default=False, description="Used only when no other rule matches.")
    service: Service | None = None
    operations: list[str] | None = Field(
        default=None, description="Operation globs the rule applies to, e.g. 'git.create_*'.")

    @model_validator(mode="before")
    @classmethod
    def _seed_shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        d = data.get("default", False)
        if isinstance(d, dict):  # `- default: {provider: X, ...}`
            inner = dict(d)
            data.pop("default")
            for k, v in inner.items():
                data.setdefault(k, v)
            data["default"] = True
        elif isinstance(d, str):  # `- default: X`
            data.setdefault("provider", d)
            data["default"] = True
        elif d is None and "default" in data:  # `- default:` followed by sibling keys
            data["default"] = True
        if "providers" in data and "provider" not in data:
            data["provider"] = data.pop("providers")
        if isinstance(data.get("provider"), str):
            data["provider"] = [data["provider"]]
        if "operation" in data and "operations" not in data:
            data["operations"] = data.pop("operation")
        if isinstance(data.get("operations"), str):
            data["operations"] = [data["operations"]]
        return data

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from mosaic.routing.patterns import parse_pattern

        parse_pattern(v)  # raises ValueError with a precise message
        return v

    @field_validator("condition")
    @classmethod
    def _condition(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        from mosaic.routing.conditions import compile_condition

        compile_condition(v)
        return v

    @field_validator("provider")
    @classmethod
    def _providers(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a provider is listed twice")
        return v

    def label(self, where: str) -> str:
        """How messages name this rule: its name, else its path and what it matches."""
        if self.name:
            return f"rule {self.name!r} ({where})"
        what = self.pattern or self.condition or ("default" if self.default else "match-all")
        return f"rule {where} ({what!r})"


class PhaseSpec(BaseModel):
    """A named rule set of a migration plan (seed use case 4)."""

    model_config = _STRICT

    name: str
    description: str = ""
    rules: list[RuleSpec] = Field(default_factory=list)
    legacy: list[str] = Field(
        default_factory=list,
        description="Repositories ('owner/name' globs) that stay on the old provider: `legacy:` patterns.")

    @model_validator(mode="before")
    @classmethod
    def _seed_shape(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "phase" in data and "name" not in data:
                data["name"] = data.pop("phase")
            if "routing" in data and "rules" not in data:
                data["rules"] = data.pop("routing")
            if isinstance(data.get("name"), int) and not isinstance(data.get("name"), bool):
                data["name"] = str(data["name"])
        return data

    @field_validator("legacy")
    @classmethod
    def _legacy(cls, v: list[str]) -> list[str]:
        from mosaic.routing.patterns import check_glob

        for g in v:
            check_glob(g)
        return v


class RoutingConfig(BaseModel):
    model_config = _STRICT

    rules: list[RuleSpec] = Field(default_factory=list, description="Rules active in every phase.")
    phases: list[PhaseSpec] = Field(default_factory=list)
    active_phase: str | None = Field(default=None, alias="activePhase")
    legacy: list[str] = Field(default_factory=list, description="Legacy repositories for every phase.")
    load_balancing: LoadBalancingSpec = Field(default_factory=LoadBalancingSpec, alias="loadBalancing")
    failover: FailoverSpec = Field(default_factory=FailoverSpec)
    decision_cache_size: int = Field(default=4096, ge=0, alias="decisionCacheSize")
    state_dir: Path | None = Field(default=None, alias="stateDir",
                                   description="Where the active phase and switch log are kept.")
    phase_watch_interval: int = Field(default=1000, ge=50, alias="phaseWatchInterval",
                                      description="Milliseconds between checks for a phase switched "
                                                  "by another process (`mosaic route phase`).")

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        phases = data.get("phases")
        if isinstance(phases, dict):  # {name: {rules: [...]}} as well as a list
            data["phases"] = [{**(v if isinstance(v, dict) else {"rules": v}), "name": str(k)}
                              for k, v in phases.items()]
        ap = data.get("activePhase", data.get("active_phase"))
        if isinstance(ap, int) and not isinstance(ap, bool):
            data["activePhase" if "activePhase" in data else "active_phase"] = str(ap)
        return data

    @field_validator("legacy")
    @classmethod
    def _legacy(cls, v: list[str]) -> list[str]:
        from mosaic.routing.patterns import check_glob

        for g in v:
            check_glob(g)
        return v

    @model_validator(mode="after")
    def _phases(self) -> RoutingConfig:
        names = [p.name for p in self.phases]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"phase {dup[0]!r} is defined twice")
        if self.active_phase is not None and self.active_phase not in names:
            known = ", ".join(names) or "none are defined"
            raise ValueError(f"activePhase {self.active_phase!r} is not a phase (phases: {known})")
        if self.active_phase is None and self.phases:
            self.active_phase = self.phases[0].name
        return self

    def phase(self, name: str | None) -> PhaseSpec | None:
        for p in self.phases:
            if p.name == name:
                return p
        return None
