"""Bearer API keys at the edge: 401 problem bodies, health probes open, constant-time checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.interfaces.conftest import running

from mosaic.api import Orchestrator
from mosaic.config.schema import MosaicConfig, Settings
from mosaic.interfaces.auth import ApiKeys
from mosaic.interfaces.http_app import create_app

KEY = "s3cret-key-123"


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    orch = Orchestrator.embedded(tmp_path / "data")
    app: FastAPI = create_app(orch, settings=Settings(api_keys=f"other-key, {KEY}"))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            yield c


@pytest.mark.parametrize("path", ["/v1/git/repositories", "/openapi.json", "/graphql", "/mcp"])
async def test_requests_without_a_key_get_401_problem(secured: httpx.AsyncClient, path: str) -> None:
    r = await secured.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = r.json()
    assert body["code"] == "unauthorized" and body["status"] == 401
    r = await secured.get(path, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["detail"] == "the bearer key is not valid"
    assert KEY not in r.text


async def test_valid_key_is_accepted_and_health_is_open(secured: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    r = await secured.get("/v1/git/repositories", headers=auth)
    assert r.status_code == 200, r.text
    r = await secured.get("/v1/git/repositories", headers={"Authorization": "Bearer other-key"})
    assert r.status_code == 200
    for path in ("/healthz", "/readyz"):
        r = await secured.get(path)
        assert r.status_code == 200, (path, r.text)


def test_keys_come_from_config_and_env_and_are_kept_as_digests() -> None:
    cfg = MosaicConfig.model_validate({"server": {"apiKeys": ["from-config"]}})
    keys = ApiKeys.from_config(cfg, Settings(api_keys="from-env,  ,from-env"))
    assert len(keys.digests) == 2
    assert keys.check("from-config") is not None and keys.check("from-env") is not None
    assert keys.check("from-conf") is None and keys.check("") is None
    principal = keys.check("from-env")
    assert principal is not None and principal.id.startswith("apikey:") and "from-env" not in principal.id
    assert not ApiKeys.from_config(MosaicConfig(), Settings(api_keys=None)).enabled
