"""Prometheus metrics of the resilience and cache layers, on the gateway's registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from mosaic.gateway.layers import REGISTRY

BREAKER_STATE = Gauge("mosaic_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
                      ["provider"], registry=REGISTRY)
BREAKER_TRANSITIONS = Counter("mosaic_breaker_transitions", "Circuit breaker transitions, by target state.",
                              ["provider", "state"], registry=REGISTRY)
BREAKER_REJECTED = Counter("mosaic_breaker_rejected",
                           "Calls rejected by an open or saturated half-open breaker.",
                           ["provider"], registry=REGISTRY)
RETRIES = Counter("mosaic_retries", "Attempts made after the first one.", ["provider", "operation"],
                  registry=REGISTRY)
RETRY_GAVE_UP = Counter("mosaic_retry_gave_up", "Retries abandoned, by reason.", ["provider", "reason"],
                        registry=REGISTRY)
RATELIMIT_WAIT = Histogram("mosaic_ratelimit_wait_seconds", "Time calls queued for a rate-limit slot.",
                           ["provider"], registry=REGISTRY,
                           buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RATELIMIT_REJECTED = Counter("mosaic_ratelimit_rejected", "Calls refused by the client-side rate limit.",
                             ["provider"], registry=REGISTRY)
RATELIMIT_REMAINING = Gauge("mosaic_ratelimit_remaining", "Calls left in the current window (client side).",
                            ["provider"], registry=REGISTRY)
RATELIMIT_MODE = Gauge("mosaic_ratelimit_global",
                       "1 when the limit is enforced globally on Redis, 0 locally.",
                       ["provider"], registry=REGISTRY)
BULKHEAD_INFLIGHT = Gauge("mosaic_bulkhead_inflight", "Calls inside a provider's bulkhead.", ["provider"],
                          registry=REGISTRY)
BULKHEAD_REJECTED = Counter("mosaic_bulkhead_rejected", "Calls refused by a full bulkhead.", ["provider"],
                            registry=REGISTRY)
CACHE_REQUESTS = Counter("mosaic_cache_requests", "Cache lookups, by level and result.", ["level", "result"],
                         registry=REGISTRY)
CACHE_INVALIDATIONS = Counter("mosaic_cache_invalidations", "Tags invalidated, by origin.", ["origin"],
                              registry=REGISTRY)
CACHE_L1_ENTRIES = Gauge("mosaic_cache_l1_entries", "Entries in the in-process cache.", registry=REGISTRY)
CACHE_WRITEBACK_PENDING = Gauge("mosaic_cache_writeback_pending", "Write-back entries not yet in Redis.",
                                registry=REGISTRY)
IDEMPOTENCY = Counter("mosaic_idempotency", "Writes seen by the idempotency layer, by outcome.", ["outcome"],
                      registry=REGISTRY)
REDIS_UP = Gauge("mosaic_redis_up", "1 when Redis is reachable, 0 when degraded, -1 when not configured.",
                 registry=REGISTRY)
