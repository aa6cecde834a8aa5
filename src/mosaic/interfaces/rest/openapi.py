"""The OpenAPI 3.1 document, derived from the catalog's REST routes and pydantic models.

Every params and result model is a component schema (pydantic generates JSON Schema
2020-12, which OpenAPI 3.1 uses as is). Path and query parameters are the params
fields that travel there; the request body is the params model less its path fields.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

import mosaic
from mosaic.catalog.base import Operation
from mosaic.interfaces.rest.problems import PROBLEM_SCHEMA
from mosaic.interfaces.rest.routes import Route, RouteTable

REF = "#/components/schemas/{model}"
# '.' and '..' are excluded: clients normalize them away before they reach the server.
_SEGMENT = r"^(?!\.\.?$)[A-Za-z0-9_.-]+$"
_OWNER = r"^(?!\.\.?$)[A-Za-z0-9_.-]+(/(?!\.\.?(/|$))[A-Za-z0-9_.-]+)*$"
_PROBLEM_RESPONSE = {
    "description": "An error, as an RFC 9457 problem with a stable `code`.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or path value is never JSON null: drop the null branch of ``X | None``."""
    any_of = schema.get("anyOf")
    if not isinstance(any_of, list):
        return schema
    rest = [s for s in any_of if s != {"type": "null"}]
    if len(rest) == len(any_of):
        return schema
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if out.get("default", 0) is None:
        del out["default"]
    if len(rest) == 1:
        out.update(rest[0])
    else:
        out["anyOf"] = rest
    return out


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return dict(defs[ref.rsplit("/", 1)[1]])
    return schema


def _component_name(mapping: Mapping[tuple[Any, JsonSchemaMode], Any],
                    model: type[BaseModel], mode: JsonSchemaMode) -> str:
    ref: str = mapping[(model, mode)]["$ref"]
    return ref.rsplit("/", 1)[1]


def _parameters(route: Route, params_def: dict[str, Any]) -> list[dict[str, Any]]:
    props: dict[str, Any] = params_def.get("properties", {})
    required = set(params_def.get("required", []))
    out: list[dict[str, Any]] = []
    for name in route.path_fields:
        if name == "repo":
            out.append({"name": "owner", "in": "path", "required": True,
                        "description": "Repository owner (user, organization or group). A GitLab "
                                       "subgroup path is one segment with '/' encoded: 'group%2Fsub'.",
                        "schema": {"type": "string", "pattern": _OWNER}})
            out.append({"name": "name", "in": "path", "required": True,
                        "description": "Repository name.",
                        "schema": {"type": "string", "pattern": _SEGMENT}})
            continue
        schema = _without_null(copy.deepcopy(props.get(name, {"type": "string"})))
        schema.pop("title", None)
        if schema.get("type") == "string" and "pattern" not in schema:
            # A path segment is never empty, '.' or '..'.
            schema["pattern"] = r"^(?!\.\.?$).+$" if name == "path" else _SEGMENT.replace(
                "[A-Za-z0-9_.-]+", "[^/]+")
        param: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": schema}
        if "description" in schema:
            param["description"] = schema.pop("description")
        out.append(param)
    for name, kind in route.query_fields.items():
        schema = _without_null(copy.deepcopy(props.get(name, {})))
        schema.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        if kind == "json":
            param["content"] = {"application/json": {"schema": schema}}
        else:
            param["schema"] = schema
            if kind == "list":
                param["style"] = "form"
                param["explode"] = True
        out.append(param)
    if route.method != "GET":
        out.append({"name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Makes a retried write safe: the key is passed to the provider "
                                   "pipeline with the request.",
                    "schema": {"type": "string", "pattern": r"^[!-~]{1,255}$"}})
    return out


def build_openapi(table: RouteTable, *, auth: bool, title: str = "MosAIc") -> dict[str, Any]:
    """The document (a fresh copy; building it is cached per set of routes)."""
    return copy.deepcopy(_build(tuple(r.op for r in table.routes), auth, title))


@functools.lru_cache(maxsize=8)
def _build(operations: tuple[Operation, ...], auth: bool, title: str) -> dict[str, Any]:
    table = RouteTable(operations)
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for r in table.routes:
        keys.append((r.op.params, "validation"))
        keys.append((r.op.result, "serialization"))
    mapping, top = models_json_schema(list(dict.fromkeys(keys)), ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for r in sorted(table.routes, key=lambda r: (r.openapi_path, r.method)):
        op = r.op
        params_name = _component_name(mapping, op.params, "validation")
        params_def = schemas[params_name]
        result_ref = {"$ref": REF.format(model=_component_name(mapping, op.result, "serialization"))}
        operation: dict[str, Any] = {
            "operationId": op.tool_name,
            "summary": op.summary,
            "tags": [op.service],
            "parameters": _parameters(r, params_def),
            "responses": {
                str(op.rest.status): {"description": op.summary,
                                      "content": {"application/json": {"schema": result_ref}}},
                "default": _PROBLEM_RESPONSE,
            },
            "x-mosaic-operation": op.qualified_name,
            "x-mosaic-effect": op.effect.value,
            "x-mosaic-idempotent": op.safe_to_repeat,
        }
        if r.body_fields:
            body_schema: dict[str, Any]
            if r.path_fields:
                body_schema = copy.deepcopy(params_def)
                body_schema["title"] = f"{params_def.get('title', params_name)}Body"
                body_schema["properties"] = {k: v for k, v in params_def.get("properties", {}).items()
                                             if k not in r.path_fields}
                req = [k for k in params_def.get("required", []) if k not in r.path_fields]
                if req:
                    body_schema["required"] = req
                else:
                    body_schema.pop("required", None)
                body_name = f"{params_name}Body"
                schemas[body_name] = body_schema
            else:
                body_schema = params_def
                body_name = params_name
            operation["requestBody"] = {
                "required": bool(body_schema.get("required")),
                "content": {"application/json": {"schema": {"$ref": REF.format(model=body_name)}}},
            }
        paths.setdefault(r.openapi_path, {})[r.method.lower()] = operation

    health = {
        "type": "object",
        "properties": {"status": {"type": "string"}, "plugins": {"type": "object"}},
        "required": ["status"],
    }
    for path, summary in (("/healthz", "Liveness: the process serves HTTP."),
                          ("/readyz", "Readiness: every configured plugin started and is healthy.")):
        paths[path] = {"get": {
            "operationId": path.strip("/"), "summary": summary, "tags": ["health"], "security": [],
            "responses": {
                "200": {"description": summary, "content": {"application/json": {"schema": health}}},
                "503": {"description": "Not ready.", "content": {"application/json": {"schema": health}}},
            },
        }}

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": mosaic.__version__,
            "description": "One interface over git forges, CI/CD, docs and project-management services. "
                           "Every route is generated from the operation catalog. Errors are "
                           "`application/problem+json` with a stable `code`; lists return "
                           "`{items, next_cursor}` (pass `next_cursor` back as `cursor`).",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if auth:
        doc["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearerAuth": []}]
    return doc

