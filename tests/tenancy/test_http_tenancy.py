"""`mosaic serve --tenancy` over real HTTP: each tenant's key reaches only its own tenant,
on every interface (REST, GraphQL, MCP), and RBAC is applied before any provider call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.interfaces.iface_support import LiveServer, server_env, start_server
from tests.tenancy.cli_support import admin, new_key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[LiveServer, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("tenancy-http")
    data = tmp / "data"
    admin(data, "db", "upgrade")
    for tenant in ("alpha", "beta"):
        admin(data, "tenants", "create", tenant)
    keys = {"alpha": new_key(data, "alpha", "developer"), "beta": new_key(data, "beta", "developer"),
            "alpha-reader": new_key(data, "alpha", "reader")}
    server = start_server(tmp, "--tenancy", "--data-dir", str(data))
    yield server, keys
    server.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "mosaic.interfaces.cli", "serve", "--tenancy", "--data-dir",
                          str(tmp_path / "fresh"), "--port", "0"], capture_output=True, text=True,
                         env=server_env(), timeout=60)
    assert res.returncode != 0
    assert "mosaic db upgrade" in res.stderr


def test_tenants_are_isolated_on_every_interface(stack: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = stack
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/v1/git/repositories/acme/api").status_code == 401
        for tenant in ("alpha", "beta"):
            r = http.post("/v1/git/repositories", headers=auth(keys[tenant]),
                          json={"owner": "acme", "name": "api", "description": f"of {tenant}"})
            assert r.status_code == 201, r.text
        only_alpha = http.post("/v1/git/repositories", headers=auth(keys["alpha"]),
                               json={"owner": "acme", "name": "secret-alpha"})
        assert only_alpha.status_code == 201
        for tenant in ("alpha", "beta"):
            got = http.get("/v1/git/repositories/acme/api", headers=auth(keys[tenant]))
            assert got.status_code == 200 and got.json()["description"] == f"of {tenant}"
        hidden = http.get("/v1/git/repositories/acme/secret-alpha", headers=auth(keys["beta"]))
        assert hidden.status_code == 404 and "alpha" not in hidden.text.replace("secret-alpha", "")
        listing = http.get("/v1/git/repositories?owner=acme", headers=auth(keys["beta"])).json()
        assert [r["name"] for r in listing["items"]] == ["api"]

        q = {"query": '{ gitGetRepository(repo: "acme/api") { description } }'}
        gql = http.post("/graphql", json=q, headers=auth(keys["beta"])).json()
        assert gql["data"]["gitGetRepository"]["description"] == "of beta"

        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        mcp_headers = {**auth(keys["beta"]), "Accept": "application/json, text/event-stream"}
        r = http.post("/mcp", json=init, headers=mcp_headers)
        assert r.status_code == 200, r.text
        session = r.headers.get("mcp-session-id")
        if session:
            mcp_headers["Mcp-Session-Id"] = session
        http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=mcp_headers)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "git_get_repository", "arguments": {"repo": "acme/secret-alpha"}}}
        res = http.post("/mcp", json=call, headers=mcp_headers).json()["result"]
        assert res["isError"] is True
        assert json.loads(res["content"][0]["text"])["error"]["code"] == "not_found"


def test_reader_cannot_write(stack: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = stack
    with httpx.Client(base_url=server.url, timeout=30) as http:
        denied = http.post("/v1/git/repositories", headers=auth(keys["alpha-reader"]),
                           json={"owner": "acme", "name": "nope"})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
        assert http.get("/v1/git/repositories/acme/nope", headers=auth(keys["alpha"])).status_code == 404
        assert http.get("/v1/git/repositories/acme/api", headers=auth(keys["alpha-reader"])).status_code == 200


def test_mcp_tool_list_shows_only_what_the_caller_may_call(stack: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = stack
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    names: dict[str, set[str]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for who in ("alpha", "alpha-reader"):
            headers = {**auth(keys[who]), "Accept": "application/json, text/event-stream"}
            r = http.post("/mcp", json=init, headers=headers)
            if r.headers.get("mcp-session-id"):
                headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
            http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
            listed = http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                               headers=headers).json()["result"]["tools"]
            names[who] = {t["name"] for t in listed}
    assert "git_create_repository" in names["alpha"]
    assert "git_get_repository" in names["alpha-reader"]
    assert "git_create_repository" not in names["alpha-reader"]
    assert names["alpha-reader"] < names["alpha"]


def test_openapi_and_graphql_show_only_what_the_caller_may_call(stack: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = stack
    introspect = {"query": "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"}
    seen: dict[str, tuple[set[str], set[str], set[str]]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for who in ("alpha", "alpha-reader"):
            doc = http.get("/openapi.json", headers=auth(keys[who]))
            assert doc.status_code == 200
            operation_ids = {op["operationId"] for item in doc.json()["paths"].values() for op in item.values()}
            schema = http.post("/graphql", json=introspect, headers=auth(keys[who])).json()["data"]["__schema"]
            queries = {f["name"] for f in schema["queryType"]["fields"]}
            mutations = {f["name"] for f in (schema["mutationType"] or {"fields": []})["fields"]}
            seen[who] = operation_ids, queries, mutations
        # A mutation the reader cannot see is not even valid GraphQL for it: refused before running.
        create = {"query": 'mutation { gitCreateRepository(owner: "acme", name: "x") { name } }'}
        refused = http.post("/graphql", json=create, headers=auth(keys["alpha-reader"])).json()
        assert refused["data"] is None and "not supported by the schema" in refused["errors"][0]["message"]
        assert http.get("/v1/git/repositories/acme/x", headers=auth(keys["alpha"])).status_code == 404
    dev_ids, dev_queries, dev_mutations = seen["alpha"]
    reader_ids, reader_queries, reader_mutations = seen["alpha-reader"]
    assert "git_create_repository" in dev_ids and "git_create_repository" not in reader_ids
    assert "git_get_repository" in reader_ids and reader_ids < dev_ids
    assert "gitCreateRepository" in dev_mutations and not reader_mutations
    assert reader_queries == dev_queries and "gitGetRepository" in reader_queries
