"""GraphQL: a schema of real types generated from the catalog, typed errors, limits, and `gql` over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from gql import Client as GqlClient
from gql import gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLScalarType
from tests.interfaces.iface_support import LiveServer

from mosaic.catalog.registry import CATALOG
from mosaic.interfaces.graphql import build_schema

SCHEMA = build_schema(tuple(CATALOG.values()))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def test_reads_are_queries_and_writes_are_mutations_with_real_types() -> None:
    gs = SCHEMA._schema
    query, mutation = gs.query_type, gs.mutation_type
    assert query is not None and mutation is not None
    for op in CATALOG.values():
        root = query if op.is_read else mutation
        assert _camel(op.tool_name) in root.fields, op.qualified_name
    repo = gs.get_type("Repository")
    assert isinstance(repo, GraphQLObjectType)
    assert str(repo.fields["fullName"].type) == "String!"
    assert str(repo.fields["createdAt"].type) == "DateTime"
    assert isinstance(gs.get_type("JSON"), GraphQLScalarType) and str(repo.fields["raw"].type) == "JSON!"
    pr = gs.get_type("PullRequest")
    assert isinstance(pr, GraphQLObjectType)
    state = pr.fields["state"].type.of_type  # type: ignore[attr-defined]
    assert isinstance(state, GraphQLEnumType) and set(state.values) == {"OPEN", "CLOSED", "MERGED"}
    page = gs.get_type("BranchPage")
    assert isinstance(page, GraphQLObjectType) and str(page.fields["items"].type) == "[Branch!]!"
    args = query.fields["gitGetFile"].args
    assert str(args["repo"].type) == "String!" and str(args["ref"].type) == "String"


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    return r.json()


async def test_mutation_query_and_typed_errors(client: httpx.AsyncClient) -> None:
    body = await _post(client, 'mutation { gitCreateRepository(name: "api", owner: "acme") { fullName private } }')
    assert body["data"]["gitCreateRepository"] == {"fullName": "acme/api", "private": False}
    body = await _post(client, 'mutation { gitCreateBranch(repo: "acme/api", branch: "f1") { name sha } }')
    assert body["data"]["gitCreateBranch"]["name"] == "f1"
    body = await _post(client, '{ gitListBranches(repo: "acme/api", limit: 10) { items { name } nextCursor } }')
    assert {b["name"] for b in body["data"]["gitListBranches"]["items"]} >= {"main", "f1"}

    body = await _post(client, '{ gitGetRepository(repo: "acme/missing") { name } }')
    err = body["errors"][0]
    assert err["extensions"]["code"] == "not_found" and err["extensions"]["status"] == 404
    body = await _post(client, 'mutation { gitCreateRepository(name: "bad name") { name } }')
    assert body["errors"][0]["extensions"]["code"] == "invalid_request"
    body = await _post(client, '{ gitListPullRequests(repo: "acme/api", state: MERGED) { items { number } } }')
    assert body["data"]["gitListPullRequests"]["items"] == []


async def test_depth_token_and_alias_limits() -> None:
    shallow = build_schema(tuple(CATALOG.values()), max_depth=1)
    deep = '{ gitCompareCommits(repo: "a/b", base: "a", head: "b") { commits { sha } } }'
    r = await shallow.execute(deep)
    assert r.errors and "exceeds maximum operation depth" in r.errors[0].message
    many = "{ " + " ".join(f'a{i}: gitGetRepository(repo: "a/b") {{ name }}' for i in range(40)) + " }"
    r = await SCHEMA.execute(many)
    assert r.errors and "aliases" in r.errors[0].message
    huge = "{ " + " ".join("__typename" for _ in range(6000)) + " }"
    r = await SCHEMA.execute(huge)
    assert r.errors and "token" in r.errors[0].message.lower()


async def test_gql_client_over_http(live_server: LiveServer) -> None:
    owner = f"g{uuid.uuid4().hex[:8]}"
    transport = HTTPXAsyncTransport(url=live_server.url + "/graphql")
    async with GqlClient(transport=transport, fetch_schema_from_transport=True) as session:
        create = gql("mutation($name: String!, $owner: String) { gitCreateRepository(name: $name, owner: $owner) "
                     "{ fullName defaultBranch } }")
        create.variable_values = {"name": "api", "owner": owner}
        created = await session.execute(create)
        assert created["gitCreateRepository"] == {"fullName": f"{owner}/api", "defaultBranch": "main"}
        get = gql("query($repo: String!) { gitGetRepository(repo: $repo) { name owner } }")
        get.variable_values = {"repo": f"{owner}/api"}
        got = await session.execute(get)
        assert got["gitGetRepository"] == {"name": "api", "owner": owner}
        with pytest.raises(TransportQueryError) as info:
            await session.execute(gql('{ gitGetRepository(repo: "nobody/none") { name } }'))
        assert info.value.errors and info.value.errors[0]["extensions"]["code"] == "not_found"
