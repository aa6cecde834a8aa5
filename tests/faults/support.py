"""Helpers shared by the resilience, cache and fault-injection tests.

They run against the machine's real Redis (``MOSAIC_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``), each test under its own key prefix whose keys are deleted at the
end — never a flush. A test that must kill Redis starts its own ``redis-server`` (no
persistence) on a free port in a temporary directory and stops it by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from tests.faults.upstream import FakeGitea

from mosaic.config.schema import CacheConfig, MosaicConfig, Orchestration, PluginSpec
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.manager import PluginManager

REDIS_URL = os.environ.get("MOSAIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
GITEA = "mosaic.providers.gitea.git:GiteaGitPlugin"


def unique_prefix() -> str:
    return f"mosaic-test:{uuid.uuid4().hex[:12]}:"


async def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete only the keys of one test run."""
    client = Redis.from_url(url, socket_timeout=2)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private ``redis-server`` that a test may kill, pause and restart (by PID)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.1):
                return self
            time.sleep(0.02)
        pytest.fail(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def gitea_spec(pid: str, upstream: FakeGitea, *, default: bool = True, **shared: Any) -> PluginSpec:
    return PluginSpec(id=pid, type="git", provider="gitea", module=GITEA, default=default,
                      config={"baseUrl": upstream.base_url, "auth": {"type": "token", "token": "t0k3n"},
                              **shared})


def make_gateway(*specs: PluginSpec, cache: dict[str, Any] | None = None) -> Gateway:
    cfg = MosaicConfig(orchestration=Orchestration(
        plugins=list(specs), cache=CacheConfig.model_validate(cache) if cache else CacheConfig()))
    return Gateway(cfg, PluginManager())


@contextlib.asynccontextmanager
async def running(*gateways: Gateway) -> AsyncIterator[tuple[Gateway, ...]]:
    for g in gateways:
        await g.start()
    try:
        yield gateways
    finally:
        for g in gateways:
            await g.stop()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    asyncio.run(delete_prefix(prefix))


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch, redis_prefix: str) -> str:
    """Gateways built in this test share the machine's Redis under a private prefix."""
    monkeypatch.setenv("MOSAIC_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("MOSAIC_REDIS_PREFIX", redis_prefix)
    return redis_prefix


@pytest.fixture
async def upstream() -> AsyncIterator[FakeGitea]:
    server = await FakeGitea().start()
    server.add_repo("acme", "api", description="the API")
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateways built in this test run embedded: no Redis at all."""
    monkeypatch.delenv("MOSAIC_REDIS_URL", raising=False)
