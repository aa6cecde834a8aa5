"""The shared resilience keys of a plugin's config: parsed, and reported with file:line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mosaic.config.loader import load_config
from mosaic.errors import ConfigError
from mosaic.resilience.config import parse_shared

YAML = """\
orchestration:
  plugins:
    - id: gitea
      type: git
      provider: gitea
      config:
        baseUrl: https://git.example.com
        rateLimit:
          maxRequests: 0
          windowMs: 3600000
        retry:
          attempts: 3
          backoff: fibonacci
        circuitBreaker:
          recordErrors: [not_found]
        bulkhead:
          maxConcurrentCalls: 10
          operationTimeoutsMs: {create_repository: 0}
"""


def test_bad_blocks_are_reported_with_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("mosaic.yaml", text=YAML, env={})
    problems = "\n".join(info.value.problems)
    assert "mosaic.yaml:9: orchestration.plugins[0].config.rateLimit.maxRequests" in problems
    assert "mosaic.yaml:13: orchestration.plugins[0].config.retry.backoff" in problems
    assert "config.circuitBreaker.recordErrors" in problems and "caused by the caller" in problems
    assert "config.bulkhead.operationTimeoutsMs" in problems


def test_the_seeds_shape_parses() -> None:
    shared = parse_shared({"baseUrl": "ignored", "rateLimit": {"maxRequests": 5000, "windowMs": 3600000},
                           "retry": {"attempts": 3, "backoff": "exponential"}})
    assert shared.rate_limit is not None and shared.rate_limit.max_requests == 5000
    assert shared.retry.attempts == 3 and shared.circuit_breaker.enabled
    with pytest.raises(ValidationError) as info:
        parse_shared({"retry": {"attempts": 3, "unknown": 1}})
    assert info.value.errors()[0]["loc"] == ("retry", "unknown")
