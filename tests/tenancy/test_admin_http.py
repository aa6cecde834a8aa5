"""The admin HTTP API on a real server (uvicorn on 127.0.0.1, both databases): behaviour, then
schemathesis fuzzing — no 5xx with a valid credential, nothing but 401 without one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.store.dbfixtures import FAST_HASH, _empty_pg, _run

from mosaic.interfaces.auth import ApiKeys as StaticKeys
from mosaic.security.crypto import Keyring, generate_key_line
from mosaic.store.engine import Database
from mosaic.tenancy.http import PREFIX, build_admin_router
from mosaic.tenancy.runtime import Tenancy

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "static-platform-admin-key-0001"


@dataclass
class Server:
    url: str
    tenancy: Tenancy

    def client(self, key: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url + PREFIX, headers=headers, timeout=30)


@pytest.fixture
def server(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if backend == "sqlite":
        target = tmp_path / "admin.sqlite3"
        target.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_database")
    db = Database(url)
    tenancy = Tenancy(db, data_dir=tmp_path / "data", keyring=Keyring.parse(generate_key_line("http"), "t"),
                      static_keys=StaticKeys.of([ADMIN]), hash_params=FAST_HASH, env={})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tenancy.start()
        try:
            yield
        finally:
            await tenancy.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(build_admin_router(tenancy))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the admin server did not start"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", tenancy)
    finally:
        srv.should_exit = True
        thread.join(20)
        if backend == "postgresql":
            async def empty() -> None:
                database = await Database.open(url)
                try:
                    await _empty_pg(database)
                finally:
                    await database.dispose()
            _run(empty())


def test_admin_api_behaviour(server: Server) -> None:
    with server.client() as op, server.client(None) as anon:
        r = anon.get("/whoami")
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="mosaic"'
        assert anon.post("/tenants", json={"nonsense": True}).status_code == 401, "auth before validation"
        assert op.get("/whoami").json()["tenant"] == "default"
        assert op.post("/tenants", json={"name": "acme"}).status_code == 201
        assert op.post("/tenants", json={"name": "acme"}).json()["code"] == "conflict"
        created = op.post("/tenants/acme/keys", json={"name": "acme-admin", "roles": ["admin"]})
        assert created.status_code == 201
        token = created.json()["key"]
        listing = op.get("/tenants/acme/keys").text
        assert token.split("_", 2)[2] not in listing
    with server.client(token) as acme:
        assert acme.get("/whoami").json()["roles"] == ["admin"]
        assert [t["name"] for t in acme.get("/tenants").json()] == ["acme"]
        dev = acme.post("/tenants/acme/keys", json={"name": "dev", "roles": ["developer"]}).json()
        assert acme.post("/tenants", json={"name": "evil"}).status_code == 403
        assert acme.get("/tenants/default/keys").status_code == 403
        assert acme.get("/audit/verify").json()["ok"] is True
        lines = acme.get("/audit/export").text.splitlines()
        assert lines and all('"tenant":"acme"' in line for line in lines)
        usage = acme.get("/usage", params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z",
                                           "format": "csv"})
        assert usage.text.startswith("tenant,bucket,")
        assert acme.put("/tenants/acme/rbac", json={"rules": [{"role": "ci-bot", "inherits": "reader"}]}) \
            .status_code == 200
        config = {"plugins": [{"id": "forge", "type": "git", "provider": "gitea", "default": True,
                               "config": {"baseUrl": "https://gitea.example.test/api/v1",
                                          "auth": {"type": "token", "token": "glpat-HTTPsecret00001"}}},
                              {"id": "git-b", "type": "git", "provider": "local"}],
                  "routing": {"rules": [{"pattern": "org:legacy", "provider": "git-b", "priority": 5}]},
                  "cache": {"enabled": True, "ttl": 60}}
        put = acme.put("/tenants/acme/config", json=config)
        assert put.status_code == 200, put.text
        shown = acme.get("/tenants/acme/config").json()["config"]
        assert shown["plugins"][0]["config"]["auth"]["token"] == {"$credential": "forge/auth.token"}
        assert shown["routing"]["rules"][0]["pattern"] == "org:legacy" and shown["cache"]["ttl"] == 60
        assert acme.put("/tenants/acme/config", json={"plugins": [{"id": "x", "type": "git", "provider": "local",
                                                                   "module": "os:system"}]}).status_code == 422
        assert acme.patch("/tenants/acme/settings", json={"residency": {"regions": ["eu"]}}).status_code == 200
        raised = acme.patch("/tenants/acme/settings", json={"quotas": {"requestsPerMinute": 100000}})
        assert raised.status_code == 403 and raised.json()["code"] == "forbidden"
        assert acme.delete(f"/tenants/acme/keys/{dev['id']}").json()["status"] == "revoked"
    with server.client(dev["key"]) as revoked:
        assert revoked.get("/whoami").status_code == 401


def _schemathesis(server: Server, workdir: Path, *extra: str,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # schemathesis keeps a cache in its working directory: never the repository.
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
           "--phases", "examples,fuzzing", "--max-examples", "20", "--seed", "20260101",
           "--no-shrink", "--max-failures", "10", "--request-timeout", "20", "--max-time", "20", *extra]
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(workdir), env=environment)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error_with_a_valid_credential(server: Server, tmp_path: Path) -> None:
    run = _schemathesis(server, tmp_path, "-H", f"Authorization: Bearer {ADMIN}", "--checks", "not_a_server_error")
    report = run.stdout[-5000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "Server error" not in run.stdout, report


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_schemathesis_without_a_credential_gets_nothing_but_401(server: Server, tmp_path: Path) -> None:
    run = _schemathesis(server, tmp_path, "--checks", "refused_without_credentials",
                        env={"SCHEMATHESIS_HOOKS": "tests.tenancy.st_hooks"})
    report = run.stdout[-5000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "generated" in run.stdout and "failed" not in run.stdout.split("Test cases:")[-1], report
