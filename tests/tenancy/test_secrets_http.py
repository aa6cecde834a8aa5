"""Secrets suite over the wire: `mosaic serve --tenancy` (a real process, DEBUG logs) with a real
Gitea provider talking to a local Gitea-shaped upstream, driven only through HTTP — admin API,
REST, GraphQL, MCP, metrics, audit and usage exports. Then the recognizable fake provider token
and the API keys' secrets are searched for in every response (bodies and headers) and in
everything the server logged. 0 allowed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.interfaces.iface_support import ROOT, LiveServer, server_env, start_server
from tests.tenancy.cli_support import admin, new_key

GITEA_TOKEN = "gtok-FAKEsecretsOverHttp0042xyzzy"
MASTER_KEY = "kseca0000001:0uILrLMU/lOh6Xxps64pIOLUrQ+LidRVDjJt7F6KxJc="


def cli(data: Path, *args: str) -> str:
    return admin(data, *args, MOSAIC_MASTER_KEY=MASTER_KEY)


@pytest.fixture
def upstream() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.upstream", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}/api/v1"
    proc.terminate()
    proc.wait(10)


class Recorder:
    """Keeps every response it sees, headers included."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append(f"{response.request.method} {response.request.url.path} -> {response.status_code}\n"
                         f"{dict(response.headers)}\n{response.text}")


def test_no_secret_leaves_the_server(tmp_path: Path, upstream: str) -> None:
    data = tmp_path / "data"
    cli(data, "db", "upgrade")
    for tenant in ("default", "acme"):  # an admin of the default tenant is a platform admin
        cli(data, "tenants", "create", tenant)
    platform = new_key(data, "default", "admin", MOSAIC_MASTER_KEY=MASTER_KEY)
    acme = new_key(data, "acme", "admin", MOSAIC_MASTER_KEY=MASTER_KEY)
    server: LiveServer = start_server(tmp_path, "--tenancy", "--data-dir", str(data), "--log-level", "debug",
                                      env=server_env(MOSAIC_MASTER_KEY=MASTER_KEY))
    record = Recorder()
    try:
        hooks = {"response": [record]}
        with httpx.Client(base_url=server.url, timeout=30, event_hooks=hooks,
                          headers={"Authorization": f"Bearer {platform}"}) as op, \
             httpx.Client(base_url=server.url, timeout=30, event_hooks=hooks,
                          headers={"Authorization": f"Bearer {acme}"}) as http:
            allow = op.patch("/admin/v1/tenants/acme/settings", json={"network": {"allowPrivate": ["127.0.0.1/32"]}})
            assert allow.status_code == 200, allow.text
            config = {"plugins": [{"id": "forge", "type": "git", "provider": "gitea", "default": True, "config": {
                "baseUrl": upstream, "auth": {"type": "token", "token": GITEA_TOKEN}}}]}
            stored = http.put("/admin/v1/tenants/acme/config", json=config)
            assert stored.status_code == 200, stored.text
            assert http.get("/admin/v1/tenants/acme/config").status_code == 200

            got = http.get("/v1/git/repositories/acme/repo1")
            assert got.status_code == 200 and got.json()["full_name"] == "acme/repo1", got.text
            created = http.post("/v1/git/repositories", json={"owner": "acme", "name": "fresh"})
            assert created.status_code == 201, created.text
            assert http.post("/v1/git/repositories", json={"owner": "acme", "name": "fresh"}).status_code == 409
            gql = http.post("/graphql", json={"query": '{ gitGetRepository(repo: "acme/repo2") { fullName } }'})
            assert gql.json()["data"]["gitGetRepository"]["fullName"] == "acme/repo2"
            mcp_headers = {"Accept": "application/json, text/event-stream"}
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            r = http.post("/mcp", json=init, headers=mcp_headers)
            if r.headers.get("mcp-session-id"):
                mcp_headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
            http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=mcp_headers)
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "git_get_repository", "arguments": {"repo": "acme/repo3"}}}
            assert http.post("/mcp", json=call, headers=mcp_headers).json()["result"]["isError"] is False
            for wrong in (GITEA_TOKEN, acme + "x"):
                assert http.get("/v1/git/repositories/acme/repo1",
                                headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
            assert http.get("/admin/v1/tenants/acme/keys").status_code == 200
            assert http.get("/admin/v1/audit/export", params={"tenant": "acme"}).status_code == 200
            usage = http.get("/admin/v1/usage", params={"tenant": "acme", "from": "2020-01-01T00:00:00Z",
                                                        "to": "2100-01-01T00:00:00Z", "format": "csv"})
            assert usage.status_code == 200, usage.text
            assert http.get("/metrics").status_code == 403  # a tenant admin is not a platform admin
            metrics = op.get("/metrics")
            assert metrics.status_code == 200 and "forge" in metrics.text
    finally:
        server.stop()
    logged = server.log.read_text(errors="replace")
    assert "forge POST /orgs/acme/repos -> 201" in logged, "DEBUG logging of the provider calls really ran"
    everything = "\n".join([*record.seen, logged])
    for secret in (GITEA_TOKEN, platform.split("_", 2)[2], acme.split("_", 2)[2], MASTER_KEY.split(":")[1]):
        at = everything.find(secret)
        assert at < 0, f"{secret[:6]}... leaked: {everything[max(0, at - 300):at + 60]!r}"
