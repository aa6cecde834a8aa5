"""``mosaic status`` and the resilience metrics."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.faults.support import REDIS_URL
from tests.resilience.fakes import plugin_of, scripted_gateway
from typer.testing import CliRunner

from mosaic.errors import ProviderUnavailable
from mosaic.gateway.layers import REGISTRY
from mosaic.interfaces.cli.status import app


@pytest.mark.usefixtures("redis_env")
async def test_status_shows_the_shared_state_of_every_replica(redis_prefix: str) -> None:
    g = scripted_gateway(cache={"enabled": True, "provider": "redis"}, retry={"attempts": 1},
                         rateLimit={"maxRequests": 50, "windowMs": 60000},
                         circuitBreaker={"slidingWindowSize": 2, "minimumNumberOfCalls": 2})
    await g.start()
    try:
        plugin_of(g).push(ProviderUnavailable("down"), ProviderUnavailable("down"))
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await g.execute("git.get_repository", {"repo": "acme/api"})
        await g.resilience.heartbeat()
        runner = CliRunner()
        result = await asyncio.to_thread(runner.invoke, app, ["--json", "--redis-url", REDIS_URL,
                                                              "--prefix", redis_prefix])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["redis"]["status"] == "up"
        assert data["breakers"]["scripted"]["state"] == "open"
        (replica,) = data["replicas"]
        provider = replica["providers"]["scripted"]
        assert provider["breaker"]["state"] == "open"
        assert provider["rate_limit"]["remaining"] == 48 and provider["rate_limit"]["scope"] == "global"
        assert replica["cache"]["l2"] == "redis" and replica["ready"]["status"] == "ok"
        human = await asyncio.to_thread(runner.invoke, app, ["--redis-url", REDIS_URL, "--prefix", redis_prefix])
        assert human.exit_code == 0 and "scripted" in human.output and "open" in human.output
    finally:
        await g.stop()


def test_status_reports_an_unreachable_redis() -> None:
    result = CliRunner().invoke(app, ["--json", "--redis-url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 1
    assert json.loads(result.output)["redis"]["status"] == "down"


@pytest.mark.usefixtures("no_redis")
async def test_metrics_are_exported_on_the_gateway_registry() -> None:
    g = scripted_gateway(retry={"attempts": 1}, circuitBreaker={"slidingWindowSize": 2, "minimumNumberOfCalls": 2})
    await g.start()
    try:
        plugin_of(g).push(ProviderUnavailable("down"), ProviderUnavailable("down"))
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await g.execute("git.get_repository", {"repo": "acme/api"})
        assert REGISTRY.get_sample_value("mosaic_breaker_state", {"provider": "scripted"}) == 1
        assert REGISTRY.get_sample_value("mosaic_breaker_transitions_total",
                                         {"provider": "scripted", "state": "open"}) >= 1
        assert REGISTRY.get_sample_value("mosaic_redis_up") == -1  # not configured
    finally:
        await g.stop()
