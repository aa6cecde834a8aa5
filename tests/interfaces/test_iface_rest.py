"""REST: routes generated from the catalog, problem+json errors, pagination, Idempotency-Key."""

from __future__ import annotations

import base64
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from mosaic.catalog.base import Deleted, Effect, Operation, Params, Rest
from mosaic.catalog.registry import CATALOG
from mosaic.errors import InvalidRequest
from mosaic.gateway.pipeline import Call, Next
from mosaic.interfaces.rest import RouteTable
from mosaic.interfaces.rest.app import decode_query
from mosaic.interfaces.rest.routes import compile_route

PROBLEM = "application/problem+json"


def capture(app: FastAPI) -> list[Call]:
    """Record every call that reaches the gateway (params after validation, context)."""
    seen: list[Call] = []

    async def layer(call: Call, nxt: Next) -> BaseModel:
        seen.append(call)
        return await nxt(call)

    gateway = app.state.gateway
    gateway.rebuild([layer, *gateway.layers])
    return seen


def test_every_catalog_operation_has_exactly_one_route() -> None:
    table = RouteTable(CATALOG.values())
    assert {r.op.qualified_name for r in table.routes} == set(CATALOG)
    assert len(table.routes) == len(CATALOG)


def test_repo_spans_two_segments_and_subgroups_travel_encoded() -> None:
    table = RouteTable(CATALOG.values())
    found = table.match("GET", "/git/repositories/acme/api")
    assert found is not None
    route, m = found
    assert route.op.name == "get_repository"
    assert route.path_params(m) == {"repo": "acme/api"}
    found = table.match("GET", "/git/repositories/group%2Fsub/api/contents/docs/guide%20v1.md")
    assert found is not None
    route, m = found
    assert route.op.name == "get_file"
    assert route.path_params(m) == {"repo": "group/sub/api", "path": "docs/guide v1.md"}
    # Sub-resources are more specific than the repository itself.
    found = table.match("GET", "/git/repositories/acme/api/branches")
    assert found is not None and found[0].op.name == "list_branches"


async def test_repository_lifecycle(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/git/repositories", json={"name": "api", "owner": "acme", "description": "d"})
    assert r.status_code == 201, r.text
    repo = r.json()
    assert repo["full_name"] == "acme/api" and repo["provider"] == "local-git"
    assert r.headers["x-mosaic-provider"] == "local-git"

    r = await client.get("/v1/git/repositories/acme/api")
    assert r.status_code == 200 and r.json()["description"] == "d"

    r = await client.patch("/v1/git/repositories/acme/api", json={"description": "new"})
    assert r.status_code == 200 and r.json()["description"] == "new"

    r = await client.post("/v1/git/repositories/acme/api/branches", json={"branch": "feature"})
    assert r.status_code == 201 and r.json()["name"] == "feature"

    content = "# Guide\n"
    r = await client.put("/v1/git/repositories/acme/api/contents/docs/guide.md",
                         json={"content": content, "message": "add guide", "branch": "feature"})
    assert r.status_code == 200, r.text
    r = await client.get("/v1/git/repositories/acme/api/contents/docs/guide.md", params={"ref": "feature"})
    assert r.status_code == 200
    body = r.json()
    text = body["content"] if body["encoding"] == "utf-8" else base64.b64decode(body["content"]).decode()
    assert text == content and body["path"] == "docs/guide.md"

    r = await client.delete("/v1/git/repositories/acme/api")
    assert r.status_code == 200 and r.json()["deleted"] is True
    r = await client.get("/v1/git/repositories/acme/api")
    assert r.status_code == 404


async def test_errors_are_problem_json_with_stable_codes(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/git/repositories/acme/missing")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    p = r.json()
    assert p["code"] == "not_found" and p["status"] == 404 and p["type"] == "urn:mosaic:problem:not_found"
    assert p["title"] == "Not Found" and "acme/missing" in p["detail"]
    assert p["instance"] == "/v1/git/repositories/acme/missing"

    r = await client.post("/v1/git/repositories", json={"name": "bad name!", "colour": "red"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    p = r.json()
    assert p["code"] == "invalid_request"
    fields = {f["field"]: f["problem"] for f in p["details"]["fields"]}
    assert fields["colour"] == "unknown parameter" and "name" in fields

    r = await client.post("/v1/git/repositories", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = await client.post("/v1/git/repositories", content=b"[1]", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON object" in r.json()["detail"]
    r = await client.post("/v1/git/repositories", content=b"name=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"

    r = await client.delete("/v1/git/repositories")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    assert r.json()["code"] == "method_not_allowed"
    r = await client.get("/v1/nowhere/at/all")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.get("/not-an-api-path")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


async def test_path_params_cannot_be_overridden(client: httpx.AsyncClient) -> None:
    await client.post("/v1/git/repositories", json={"name": "api", "owner": "acme"})
    r = await client.post("/v1/git/repositories/acme/api/branches", json={"branch": "x", "repo": "evil/repo"})
    assert r.status_code == 422 and "path" in r.json()["detail"]
    r = await client.get("/v1/git/repositories/acme/api/branches", params={"repo": "evil/repo"})
    assert r.status_code == 422
    r = await client.post("/v1/git/repositories/acme/api/branches?branch=x", json={})
    assert r.status_code == 422 and "JSON body" in r.json()["detail"]


async def test_pagination_cursor_and_link_header(client: httpx.AsyncClient) -> None:
    for name in ("a1", "a2", "a3"):
        r = await client.post("/v1/git/repositories", json={"name": name, "owner": "pager"})
        assert r.status_code == 201
    seen: list[str] = []
    url: str | None = "/v1/git/repositories?owner=pager&limit=2"
    pages = 0
    while url:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [item["full_name"] for item in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            assert "link" not in r.headers
            url = None
        else:
            link = r.headers["link"]
            assert link.endswith('>; rel="next"')
            url = link[1:link.index(">")]
            assert "owner=pager" in url and "limit=2" in url
    assert pages == 2
    assert sorted(seen) == ["pager/a1", "pager/a2", "pager/a3"]
    r = await client.get("/v1/git/repositories", params={"limit": "0"})
    assert r.status_code == 422 and r.json()["details"]["fields"][0]["field"] == "limit"


async def test_idempotency_key_reaches_the_request_context(app: FastAPI, client: httpx.AsyncClient) -> None:
    calls = capture(app)
    r = await client.post("/v1/git/repositories", json={"name": "idem", "owner": "acme"},
                          headers={"Idempotency-Key": "create-idem-1"})
    assert r.status_code == 201
    assert calls[-1].ctx.idempotency_key == "create-idem-1"
    r = await client.get("/v1/git/repositories/acme/idem", headers={"Idempotency-Key": "ignored"})
    assert r.status_code == 200 and calls[-1].ctx.idempotency_key is None
    r = await client.post("/v1/git/repositories", json={"name": "idem2"},
                          headers={"Idempotency-Key": "has space"})
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]


async def test_subgroup_owner_is_decoded_into_repo(app: FastAPI, client: httpx.AsyncClient) -> None:
    calls = capture(app)
    r = await client.get("/v1/git/repositories/group%2Fsub/api")
    # The local provider has no subgroups and says so; the gateway was asked for the subgroup path.
    assert r.status_code in (404, 422) and r.headers["content-type"] == PROBLEM
    params: Any = calls[-1].params
    assert params.repo == "group/sub/api"
    r = await client.get("/v1/git/repositories/acme/api/contents/a%2Fb/c%20d.txt")
    params = calls[-1].params
    assert params.repo == "acme/api" and params.path == "a/b/c d.txt"


def test_query_values_are_decoded_by_field_type() -> None:
    class ThingParams(Params):
        labels: list[str] = []
        meta: dict[str, str] = {}
        limit: int = 30
        state: Literal["open", "closed"] | None = None

    op = Operation("project", "list_things", ThingParams, Deleted, Effect.READ,
                   Rest("GET", "/project/things"), "List things.")
    route = compile_route(op)
    assert route.query_fields == {"labels": "list", "meta": "json", "limit": "scalar", "state": "scalar"}
    got = decode_query(route, b"labels=a&labels=b&meta=%7B%22k%22%3A%22v%22%7D&limit=5&state=open")
    assert got == {"labels": ["a", "b"], "meta": {"k": "v"}, "limit": "5", "state": "open"}
    assert decode_query(route, b"labels=%5B%22c%22%2C%22d%22%5D") == {"labels": ["c", "d"]}
    params = ThingParams.model_validate(got)
    assert params.labels == ["a", "b"] and params.limit == 5
    with pytest.raises(InvalidRequest, match="meta"):
        decode_query(route, b"meta=%7Bbroken")


async def test_head_is_get_without_body(client: httpx.AsyncClient) -> None:
    await client.post("/v1/git/repositories", json={"name": "api", "owner": "acme"})
    r = await client.head("/v1/git/repositories/acme/api")
    assert r.status_code == 200 and r.content == b""
