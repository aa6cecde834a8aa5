"""The ASGI app: health and readiness, the routing admin router, the serve command."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from tests.interfaces.conftest import running
from tests.interfaces.iface_support import server_env, start_server

from mosaic.api import Orchestrator
from mosaic.config.schema import MosaicConfig, Orchestration, PluginSpec
from mosaic.interfaces import http_app
from mosaic.interfaces.http_app import create_app

# After a graceful shutdown uvicorn re-raises the signal it caught, so SIGTERM shows as -15.
CLEAN_EXIT = (0, -signal.SIGTERM)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["plugins"]["local-git"]["status"] == "healthy"


async def test_not_ready_when_a_plugin_failed_to_start(tmp_path: Path) -> None:
    cfg = MosaicConfig(orchestration=Orchestration(plugins=[
        PluginSpec(id="local-git", type="git", provider="local", default=True,
                   config={"dataDir": str(tmp_path)}),
        PluginSpec(id="broken", type="docs", provider="local", module="no_such_module:Nope"),
    ]))
    app = create_app(Orchestrator(cfg))
    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        r = await c.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not_ready"
        assert body["plugins"]["broken"]["status"] == "failed"
        assert body["plugins"]["local-git"]["status"] == "healthy"
        assert (await c.get("/healthz")).status_code == 200


async def test_state_exposes_the_gateway(tmp_path: Path) -> None:
    orch = Orchestrator.embedded(tmp_path)
    app = create_app(orch)
    assert app.state.gateway is orch.gateway and app.state.orchestrator is orch


async def test_routing_admin_router_is_mounted_when_present(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/v1/routing/probe")
    def probe() -> dict[str, bool]:
        return {"ok": True}

    module = types.ModuleType(http_app.ROUTING_ADMIN)
    module.router = router  # type: ignore[attr-defined]
    module.__spec__ = types.SimpleNamespace(name=http_app.ROUTING_ADMIN)  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, http_app.ROUTING_ADMIN, module)
    app = create_app(Orchestrator.embedded(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        r = await c.get("/v1/routing/probe")
    assert r.status_code == 200 and r.json() == {"ok": True}


def test_serve_without_keys_refuses_non_loopback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mosaic.interfaces.cli.serve", "serve", "--host", "0.0.0.0",
         "--port", "1", "--data-dir", str(tmp_path)],
        env=server_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "without an API key" in proc.stderr and "0.0.0.0" in proc.stderr


def test_serve_banner_says_loopback_only_and_shuts_down_cleanly(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        banner = server.banner()
        assert f"http://127.0.0.1:{server.port}" in banner
        assert "no API key configured, so listening on loopback only" in banner
        assert "embedded local providers" in banner
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        assert server.stop() in CLEAN_EXIT


def test_graceful_shutdown_drains_in_flight_requests(tmp_path: Path) -> None:
    config = tmp_path / "slow.yaml"
    config.write_text(
        "orchestration:\n"
        "  plugins:\n"
        "    - id: slow-git\n"
        "      type: git\n"
        "      provider: slow\n"
        "      module: slow_plugin:SlowGit\n"
        "      default: true\n")
    server = start_server(tmp_path, "--config", str(config))
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            r = httpx.get(server.url + "/v1/git/repositories/acme/api", timeout=30)
            result["status"] = r.status_code
            result["body"] = r.json()
        except Exception as exc:
            result["error"] = exc

    t = threading.Thread(target=slow_request)
    started = time.monotonic()
    t.start()
    time.sleep(0.5)  # the request is now inside the slow provider
    code = server.stop()
    t.join(timeout=30)
    assert result.get("status") == 200, result
    assert result["body"]["full_name"] == "acme/api"  # type: ignore[index]
    assert time.monotonic() - started >= 1.4
    assert code in CLEAN_EXIT
