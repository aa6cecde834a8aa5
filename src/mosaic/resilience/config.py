"""The per-plugin resilience keys of the configuration, in the seed's camelCase YAML shape.

A plugin's ``config`` carries its own keys (validated by the plugin's ``Config``) and these
shared keys, owned by the gateway's layers::

    config:
      baseUrl: https://git.example.com/api/v1
      rateLimit: {maxRequests: 5000, windowMs: 3600000}
      retry: {attempts: 3, backoff: exponential}
      circuitBreaker: {failureRateThreshold: 50, slidingWindowSize: 20, waitDurationInOpenStateMs: 30000}
      bulkhead: {maxConcurrentCalls: 20, timeoutMs: 10000, operationTimeoutsMs: {create_repository: 60000}}
      cache: {ttl: 120, negativeTtl: 5}

Durations are milliseconds (``...Ms``) like the seed's ``windowMs``; the circuit-breaker
names follow Resilience4j so that its documentation applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

# Error codes a caller causes: they prove the provider is healthy, so they never trip a breaker
# and are never retried.
CALLER_ERRORS = frozenset({"invalid_request", "unknown_operation", "operation_not_supported", "not_found",
                           "conflict", "unauthorized", "forbidden"})
# Error codes the provider or the network causes.
PROVIDER_ERRORS = frozenset({"provider_unavailable", "timeout", "rate_limited", "internal_error",
                             "plugin_error"})


class RateLimitConfig(BaseModel):
    """``rateLimit``: at most ``maxRequests`` calls in any ``windowMs`` (a moving window), summed
    over every replica that shares the Redis."""

    model_config = _STRICT

    max_requests: int = Field(alias="maxRequests", ge=1)
    window_ms: int = Field(alias="windowMs", ge=1)
    max_wait_ms: int = Field(
        default=10_000, alias="maxWaitMs", ge=0,
        description="How long a call may queue for a slot when it has no deadline of its own.")
    fallback_max_requests: int | None = Field(
        default=None, alias="fallbackMaxRequests", ge=1,
        description="Per-replica limit while Redis is unreachable (default maxRequests). With N "
                    "replicas, maxRequests/N keeps the sum under the provider's limit.")
    adaptive: bool = Field(
        default=True, description="Also obey the provider's remaining/reset and Retry-After headers.")
    lease_ms: int | None = Field(
        default=None, alias="leaseMs", ge=0, le=1000,
        description="How long a replica may hold slots taken from the shared window in a batch (one "
                    "Redis round trip for many calls). Default: 100 ms (at most windowMs/20) when "
                    "the limit allows 20 calls/s or more, else 0 (one round trip per call).")

    @property
    def lease_s(self) -> float:
        if self.lease_ms is not None:
            return min(self.lease_ms, self.window_ms / 20) / 1000
        if self.max_requests * 1000 / self.window_ms < 20:
            return 0.0
        return min(100.0, self.window_ms / 20) / 1000


class RetryConfig(BaseModel):
    """``retry``: exponential backoff with jitter, bounded by attempts, a total time and the
    request's deadline; only for reads, idempotent writes and calls that provably never left."""

    model_config = _STRICT

    attempts: int = Field(default=3, ge=1, le=100, description="Total attempts, the first included.")
    backoff: Literal["exponential", "constant", "none"] = "exponential"
    initial_delay_ms: int = Field(default=100, alias="initialDelayMs", ge=0)
    max_delay_ms: int = Field(default=5_000, alias="maxDelayMs", ge=0)
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    jitter_ms: int = Field(default=100, alias="jitterMs", ge=0)
    timeout_ms: int | None = Field(default=None, alias="timeoutMs", ge=1,
                                   description="Total time for all attempts (the deadline still wins).")
    respect_retry_after: bool = Field(default=True, alias="respectRetryAfter")
    max_retry_after_ms: int = Field(default=60_000, alias="maxRetryAfterMs", ge=0,
                                    description="A longer Retry-After fails at once instead of waiting.")

    @model_validator(mode="after")
    def _delays(self) -> RetryConfig:
        if self.max_delay_ms < self.initial_delay_ms:
            raise ValueError("maxDelayMs must be >= initialDelayMs")
        return self


class CircuitBreakerConfig(BaseModel):
    """``circuitBreaker``: Resilience4j's state machine (closed → open → half-open → closed)."""

    model_config = _STRICT

    enabled: bool = True
    sliding_window_type: Literal["count", "time"] = Field(default="count", alias="slidingWindowType")
    sliding_window_size: int = Field(default=50, alias="slidingWindowSize", ge=1, le=10_000,
                                     description="Count-based window: the last N calls.")
    sliding_window_ms: int = Field(default=60_000, alias="slidingWindowMs", ge=10,
                                   description="Time-based window: the calls of the last N ms.")
    minimum_number_of_calls: int = Field(default=10, alias="minimumNumberOfCalls", ge=1)
    failure_rate_threshold: float = Field(default=50.0, alias="failureRateThreshold", gt=0, le=100)
    slow_call_rate_threshold: float = Field(default=100.0, alias="slowCallRateThreshold", gt=0, le=100)
    slow_call_duration_ms: int = Field(default=10_000, alias="slowCallDurationThresholdMs", ge=1)
    wait_duration_in_open_state_ms: int = Field(default=30_000, alias="waitDurationInOpenStateMs", ge=1)
    open_backoff_multiplier: float = Field(
        default=1.0, alias="waitDurationBackoffMultiplier", ge=1.0, le=10.0,
        description="Each re-open without a close in between multiplies the open wait.")
    max_wait_duration_in_open_state_ms: int = Field(default=600_000, alias="maxWaitDurationInOpenStateMs",
                                                    ge=1)
    permitted_calls_in_half_open_state: int = Field(default=5, alias="permittedNumberOfCallsInHalfOpenState",
                                                    ge=1, le=1000)
    max_wait_duration_in_half_open_state_ms: int = Field(
        default=60_000, alias="maxWaitDurationInHalfOpenStateMs", ge=0,
        description="Re-open when the trial calls have not all completed after this long. Finite by "
                    "default (Resilience4j: 0 = forever) because a replica may die holding a shared "
                    "trial permit; 0 = wait forever.")
    record_errors: frozenset[str] = Field(
        default=frozenset({"provider_unavailable", "timeout", "internal_error", "plugin_error"}),
        alias="recordErrors", description="Error codes that count as failures.")
    ignore_errors: frozenset[str] = Field(
        default=frozenset({"rate_limited"}), alias="ignoreErrors",
        description="Error codes that count neither as failure nor as success.")
    shared: bool = Field(default=True, description="Share the state through Redis when it is configured.")

    @field_validator("sliding_window_type", mode="before")
    @classmethod
    def _window_type(cls, v: Any) -> Any:
        # Accept Resilience4j's spelling too.
        if isinstance(v, str):
            return {"count_based": "count", "time_based": "time"}.get(v.lower(), v.lower())
        return v

    @field_validator("record_errors", "ignore_errors")
    @classmethod
    def _codes(cls, v: frozenset[str]) -> frozenset[str]:
        caller = sorted(v & CALLER_ERRORS)
        if caller:
            raise ValueError(f"{', '.join(caller)} {'is' if len(caller) == 1 else 'are'} caused by the "
                             "caller and never counts for a circuit breaker")
        unknown = sorted(v - PROVIDER_ERRORS)
        if unknown:
            raise ValueError(f"unknown error code(s) {', '.join(unknown)}; "
                             f"use {', '.join(sorted(PROVIDER_ERRORS))}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CircuitBreakerConfig:
        both = sorted(self.record_errors & self.ignore_errors)
        if both:
            raise ValueError(f"{', '.join(both)} is both in recordErrors and ignoreErrors")
        if self.max_wait_duration_in_open_state_ms < self.wait_duration_in_open_state_ms:
            raise ValueError("maxWaitDurationInOpenStateMs must be >= waitDurationInOpenStateMs")
        return self


class BulkheadConfig(BaseModel):
    """``bulkhead``: concurrent calls into one provider instance, and per-operation timeouts."""

    model_config = _STRICT

    max_concurrent_calls: int | None = Field(default=None, alias="maxConcurrentCalls", ge=1,
                                             description="None = unbounded.")
    max_wait_ms: int = Field(default=0, alias="maxWaitMs", ge=0,
                             description="How long a call may wait for a free slot (0 = fail at once).")
    timeout_ms: int | None = Field(default=None, alias="timeoutMs", ge=1,
                                   description="Timeout of one attempt of any operation.")
    operation_timeouts_ms: dict[str, int] = Field(default_factory=dict, alias="operationTimeoutsMs",
                                                  description="Per operation name, e.g. create_repository.")

    @field_validator("operation_timeouts_ms")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        bad = sorted(k for k, ms in v.items() if ms < 1)
        if bad:
            raise ValueError(f"timeouts must be >= 1 ms ({', '.join(bad)})")
        return v

    def timeout_for(self, operation: str) -> float | None:
        ms = self.operation_timeouts_ms.get(operation, self.timeout_ms)
        return ms / 1000 if ms else None


class PluginCacheConfig(BaseModel):
    """``cache`` of one plugin: overrides of the global ``orchestration.cache``."""

    model_config = _STRICT

    enabled: bool | None = None
    ttl: float | None = Field(default=None, ge=0, description="Seconds; caps the operation's own TTL.")
    negative_ttl: float | None = Field(default=None, alias="negativeTtl", ge=0,
                                       description="Seconds a NotFound is remembered (0 = never).")


class SharedConfig(BaseModel):
    """All the shared keys of one plugin's ``config``."""

    model_config = _STRICT

    rate_limit: RateLimitConfig | None = Field(default=None, alias="rateLimit")
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig,
                                                  alias="circuitBreaker")
    bulkhead: BulkheadConfig = Field(default_factory=BulkheadConfig)
    cache: PluginCacheConfig = Field(default_factory=PluginCacheConfig)


SHARED_KEYS = frozenset({"rateLimit", "retry", "circuitBreaker", "bulkhead", "cache"})


def parse_shared(plugin_config: Mapping[str, Any]) -> SharedConfig:
    """Validate the shared keys of a plugin's ``config`` (other keys are ignored).

    Raises pydantic's ValidationError whose locations start with the key, e.g.
    ``("rateLimit", "maxRequests")``, so that config validation can report ``file:line``.
    """
    return SharedConfig.model_validate({k: v for k, v in plugin_config.items() if k in SHARED_KEYS})
