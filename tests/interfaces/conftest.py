"""Fixtures for the interface tests: an in-process app and one real `mosaic serve` per session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.interfaces.iface_support import LiveServer, start_server

from mosaic.api import Orchestrator
from mosaic.interfaces.http_app import create_app


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan in one task of its own, as a server would.

    (The MCP session manager's task group must be entered and exited by the same task,
    and pytest-asyncio may set a fixture up and tear it down in different tasks.)
    """
    started = asyncio.Event()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def host() -> None:
        try:
            async with application.router.lifespan_context(application):
                started.set()
                await stop.wait()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            raise

    task = asyncio.create_task(host())
    await started.wait()
    if failure:
        raise failure[0]
    try:
        yield application
    finally:
        stop.set()
        await task


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The full ASGI app on the embedded local providers, lifespan started."""
    async with running(create_app(Orchestrator.embedded(tmp_path / "data"))) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`mosaic serve` (uvicorn, one worker) on a free loopback port, embedded local providers."""
    server = start_server(tmp_path_factory.mktemp("live"), ready_path="/readyz")
    try:
        yield server
    finally:
        server.stop()
