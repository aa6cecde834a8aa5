"""The OpenAPI 3.1 document: valid, complete, and derived from the catalog."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts

from mosaic.catalog.registry import CATALOG
from mosaic.interfaces.rest import RouteTable, build_openapi


async def test_served_document_is_valid_openapi_31(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any schema violation
    assert consts.OPENAPIV31 is not None


def test_every_operation_and_model_is_documented() -> None:
    doc = build_openapi(RouteTable(CATALOG.values()), auth=False)
    ops = {o["operationId"]: (path, method, o) for path, item in doc["paths"].items()
           for method, o in item.items()}
    schemas = doc["components"]["schemas"]
    for op in CATALOG.values():
        path, method, o = ops[op.tool_name]
        assert method == op.rest.method.lower()
        assert o["x-mosaic-operation"] == op.qualified_name
        ok = o["responses"][str(op.rest.status)]["content"]["application/json"]["schema"]["$ref"]
        assert ok.rsplit("/", 1)[1] in schemas
        assert o["responses"]["default"]["content"]["application/problem+json"]
        documented = {p["name"] for p in o["parameters"] if p["in"] in ("path", "query")}
        body = o.get("requestBody")
        if body is not None:
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            documented |= set(schemas[ref].get("properties", {}))
        fields = set(op.params.model_fields)
        if "repo" in fields and "{owner}/{name}" in path:
            fields = (fields - {"repo"}) | {"owner", "name"}
        assert fields <= documented, (op.qualified_name, fields - documented)
    assert "Problem" in schemas
    assert "security" not in doc


def test_bearer_security_is_declared_when_keys_are_configured() -> None:
    doc = build_openapi(RouteTable(CATALOG.values()), auth=True)
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_repository_path_uses_owner_and_name_segments() -> None:
    doc = build_openapi(RouteTable(CATALOG.values()), auth=False)
    get = doc["paths"]["/v1/git/repositories/{owner}/{name}"]["get"]
    names = [(p["name"], p["in"]) for p in get["parameters"]]
    assert names == [("owner", "path"), ("name", "path")]
    put = doc["paths"]["/v1/git/repositories/{owner}/{name}/contents/{path}"]["put"]
    assert "Idempotency-Key" in {p["name"] for p in put["parameters"]}
    body_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    body = doc["components"]["schemas"][body_ref]
    assert "repo" not in body["properties"] and "path" not in body["properties"]
    assert set(body["required"]) == {"content", "message"}
