"""The shared resilience keys of a plugin's config: parsed, and reported with file:line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mosaic.config.loader import load_config
from mosaic.errors import ConfigError
from mosaic.resilience.config import parse_shared
from mosaic.state.redis import RedisState

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


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("MOSAIC_REDIS_TIMEOUT_MS", "abc", "MOSAIC_REDIS_TIMEOUT_MS: expected a number of milliseconds"),
    ("MOSAIC_REDIS_TIMEOUT_MS", "0", "from 1 to 60000, got '0'"),
    ("MOSAIC_REDIS_URL", "42", "MOSAIC_REDIS_URL: Redis URL must specify one of the following schemes"),
])
def test_bad_redis_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                 expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        RedisState.from_env()
    assert expected in str(info.value)


def test_serve_refuses_a_bad_redis_environment(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")},
           "MOSAIC_REDIS_TIMEOUT_MS": "soon", "MOSAIC_DATA_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "mosaic.interfaces.cli", "serve", "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2
    assert "MOSAIC_REDIS_TIMEOUT_MS: expected a number of milliseconds" in res.stderr
    assert "Traceback" not in res.stderr
