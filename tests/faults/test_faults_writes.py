"""A write is never duplicated: connection resets, retries, replays, and a crashed gateway."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from tests.faults.support import REDIS_URL, gitea_spec, make_gateway, running
from tests.faults.upstream import FakeGitea, Fault

from mosaic.errors import Conflict, MosaicError, ProviderUnavailable
from mosaic.gateway.context import RequestContext

CREATE = "git.create_repository"
ROOT = str(Path(__file__).resolve().parents[2])
RETRYING = {"retry": {"attempts": 5, "initialDelayMs": 1, "jitterMs": 1}, "circuitBreaker": {"enabled": False}}

pytestmark = pytest.mark.usefixtures("redis_env")


def keyed(key: str, timeout: float = 2.0) -> RequestContext:
    ctx = RequestContext.with_timeout(timeout)
    ctx.idempotency_key = key
    return ctx


async def test_reset_after_the_write_is_not_retried_and_replays_do_not_write_again(
        upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, **RETRYING))
    async with running(g):
        upstream.script(Fault.reset_after(), method="POST")
        with pytest.raises(ProviderUnavailable) as info:
            await g.execute(CREATE, {"name": "svc", "owner": "acme"}, keyed("create-svc"))
        assert info.value.sent is True
        assert upstream.count("POST") == 1 and "acme/svc" in upstream.repos  # it did happen
        for _ in range(3):  # the client replays with its key
            with pytest.raises(Conflict, match="may or may not have been applied"):
                await g.execute(CREATE, {"name": "svc", "owner": "acme"}, keyed("create-svc"))
        assert upstream.count("POST") == 1


async def test_idempotent_writes_are_retried_through_resets(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, **RETRYING))
    async with running(g):
        upstream.script(Fault.reset_before(), Fault.reset_after(), method="PATCH")
        repo = await g.execute("git.update_repository", {"repo": "acme/api", "description": "x"})
        assert repo.description == "x" and upstream.count("PATCH") == 3


async def test_no_duplicate_under_a_storm_of_resets_retries_and_replays(upstream: FakeGitea) -> None:
    rng = random.Random(7)
    g = make_gateway(gitea_spec("gitea", upstream, **RETRYING))
    async with running(g):
        faults = [rng.choice([Fault.reset_before(), Fault.reset_after(), Fault.error(503), Fault.ok(0.01),
                              Fault.error(502)]) for _ in range(200)]
        upstream.script(*faults, method="POST")

        async def client(i: int) -> str:
            """Retries on its own, like any HTTP client, always with the same key."""
            for _ in range(20):
                try:
                    await g.execute(CREATE, {"name": f"r{i}", "owner": "acme"}, keyed(f"key-{i}"))
                    return "created"
                except Conflict:
                    return "unknown"
                except MosaicError:
                    await asyncio.sleep(0.005)
            return "gave up"

        outcomes = await asyncio.gather(*(client(i) for i in range(30)))
    posts: dict[str, int] = {}
    for r in upstream.log:
        if r.method == "POST":
            name = orjson.loads(r.body)["name"]
            posts[name] = posts.get(name, 0) + 1
    # Each client replayed up to 20 times, yet each write reached the upstream exactly once:
    # either it succeeded, or its outcome was unknown and every replay got 409 instead.
    assert posts == {f"r{i}": 1 for i in range(30)}
    assert set(outcomes) <= {"created", "unknown"} and outcomes.count("created") >= 1
    for i, outcome in enumerate(outcomes):
        if outcome == "created":
            assert f"acme/r{i}" in upstream.repos


CHILD = textwrap.dedent("""
    import asyncio, os, sys
    sys.path.insert(0, os.environ["ROOT"])
    from mosaic.gateway.context import RequestContext
    from tests.faults.support import make_gateway
    from mosaic.config.schema import PluginSpec

    async def main():
        spec = PluginSpec(id="gitea", type="git", provider="gitea", default=True,
                          module="mosaic.providers.gitea.git:GiteaGitPlugin",
                          config={"baseUrl": os.environ["UPSTREAM"], "retry": {"attempts": 1}})
        g = make_gateway(spec)
        await g.start()
        ctx = RequestContext.with_timeout(30)
        ctx.idempotency_key = "crash-key"
        print("calling", flush=True)
        await g.execute("git.create_repository", {"name": "crash", "owner": "acme"}, ctx)

    asyncio.run(main())
""")


async def test_a_gateway_killed_mid_write_leaves_no_duplicate(upstream: FakeGitea, redis_env: str) -> None:
    """kill -9 between the provider call and the record: the reservation made before the call
    makes every replay wait or answer 409 — the write is never sent twice."""
    upstream.script(Fault.hang_after(), method="POST")
    env = {**os.environ, "ROOT": ROOT, "UPSTREAM": upstream.base_url,
           "MOSAIC_REDIS_URL": REDIS_URL, "MOSAIC_REDIS_PREFIX": redis_env}
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, env=env,
                                                 stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(20):
            while upstream.count("POST") == 0:  # noqa: ASYNC110 - the child's write, in another process
                await asyncio.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert "acme/crash" in upstream.repos  # applied upstream, never recorded by the dead gateway
    g = make_gateway(gitea_spec("gitea", upstream, retry={"attempts": 1}))
    async with running(g):
        with pytest.raises(Conflict):
            await g.execute(CREATE, {"name": "crash", "owner": "acme"}, keyed("crash-key", timeout=0.3))
    assert upstream.count("POST") == 1
