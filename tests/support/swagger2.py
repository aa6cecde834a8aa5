"""Swagger 2.0 → OpenAPI 3.0, for what the vendor descriptions here use (Gitea, Forgejo, Woodpecker).

Covered: ``basePath`` → ``servers``; parameters in ``path``/``query``/``header`` (type, format,
items, enum, default, bounds, ``collectionFormat`` → style/explode), ``body`` → ``requestBody``,
``formData`` → a form ``requestBody`` (multipart when a field is a file); path-level parameters
(merged into each operation, operation wins); ``consumes``/``produces`` → content maps;
``definitions``/``responses``/``parameters`` → ``components`` with every ``$ref`` rewritten;
``securityDefinitions`` → ``securitySchemes``; schema keywords that differ (``type: file``,
``x-nullable``, string ``discriminator``).

Headers named Accept, Content-Type or Authorization are dropped as parameters: OpenAPI 3 says
such definitions SHALL be ignored (they are content negotiation or security, not parameters).
"""

from __future__ import annotations

import copy
from typing import Any

_REF_PREFIXES = {
    "#/definitions/": "#/components/schemas/",
    "#/responses/": "#/components/responses/",
    "#/parameters/": "#/components/parameters/",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
)
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _ref(ref: str) -> str:
    for old, new in _REF_PREFIXES.items():
        if ref.startswith(old):
            return new + ref[len(old) :]
    return ref


def convert_schema(schema: Any) -> Any:
    """A Swagger 2 schema object as an OpenAPI 3.0 schema object."""
    if isinstance(schema, list):
        return [convert_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out["$ref"] = _ref(value)
        elif key == "x-nullable":
            if value:
                out["nullable"] = True
        elif key == "discriminator" and isinstance(value, str):
            out["discriminator"] = {"propertyName": value}
        elif key == "type" and value == "file":
            out["type"], out["format"] = "string", "binary"
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: convert_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = convert_schema(value)
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    return out


def _param_schema(param: dict[str, Any]) -> dict[str, Any]:
    schema = {k: param[k] for k in _PARAM_SCHEMA_KEYS if k in param}
    if schema.get("type") == "file":
        schema["type"], schema["format"] = "string", "binary"
    if "items" in schema:
        items = dict(schema["items"])
        items.pop("collectionFormat", None)
        schema["items"] = convert_schema(items)
    if schema.get("type") == "array" and "items" not in schema:
        schema["items"] = {}
    return schema


def _style(param: dict[str, Any]) -> dict[str, Any]:
    if param.get("type") != "array":
        return {}
    fmt = param.get("collectionFormat", "csv")
    where = param["in"]
    if fmt == "multi":
        return {"style": "form", "explode": True}
    if fmt == "ssv" and where == "query":
        return {"style": "spaceDelimited", "explode": False}
    if fmt == "pipes" and where == "query":
        return {"style": "pipeDelimited", "explode": False}
    return {"style": "form" if where == "query" else "simple", "explode": False}


def convert_parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A non-body Swagger 2 parameter as an OpenAPI 3 parameter."""
    out: dict[str, Any] = {"name": param["name"], "in": param["in"]}
    for key in ("description", "deprecated", "allowEmptyValue"):
        if key in param:
            out[key] = param[key]
    if param["in"] == "path" or param.get("required"):
        out["required"] = True
    out["schema"] = _param_schema(param)
    out.update(_style(param))
    return out


def _json_like(types: list[str]) -> list[str]:
    return [t for t in types if t not in _FORM_TYPES] or ["application/json"]


class _Converter:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.consumes: list[str] = doc.get("consumes") or ["application/json"]
        self.produces: list[str] = doc.get("produces") or ["application/json"]

    def resolve_param(self, param: dict[str, Any]) -> dict[str, Any]:
        ref = param.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/parameters/"):
            resolved: dict[str, Any] = self.doc["parameters"][ref[len("#/parameters/") :]]
            return resolved
        return param

    def response(self, resp: dict[str, Any], produces: list[str]) -> dict[str, Any]:
        if "$ref" in resp:
            return {"$ref": _ref(resp["$ref"])}
        out: dict[str, Any] = {"description": resp.get("description", "")}
        if "schema" in resp:
            schema = convert_schema(resp["schema"])
            out["content"] = {ct: {"schema": schema} for ct in produces}
        if "headers" in resp:
            out["headers"] = {
                name: {"description": h.get("description", ""), "schema": _param_schema(h)}
                for name, h in resp["headers"].items()
            }
        return out

    def operation(self, op: dict[str, Any], path_params: list[dict[str, Any]]) -> dict[str, Any]:
        out = {
            k: copy.deepcopy(v)
            for k, v in op.items()
            if k not in ("parameters", "responses", "consumes", "produces", "schemes")
        }
        consumes = op.get("consumes") or self.consumes
        produces = op.get("produces") or self.produces
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*path_params, *op.get("parameters", [])]:
            param = self.resolve_param(raw)
            merged[(param["name"], param["in"])] = param
        params: list[dict[str, Any]] = []
        form: list[dict[str, Any]] = []
        for param in merged.values():
            where = param["in"]
            if where == "body":
                out["requestBody"] = {
                    "content": {
                        ct: {"schema": convert_schema(param.get("schema", {}))} for ct in _json_like(consumes)
                    },
                    "required": bool(param.get("required")),
                }
                if "description" in param:
                    out["requestBody"]["description"] = param["description"]
            elif where == "formData":
                form.append(param)
            elif where == "header" and param["name"].lower() in _IGNORED_HEADERS:
                continue
            else:
                params.append(convert_parameter(param))
        if form:
            multipart = any(p.get("type") == "file" for p in form) or "multipart/form-data" in consumes
            schema: dict[str, Any] = {
                "type": "object",
                "properties": {
                    p["name"]: {
                        **_param_schema(p),
                        **({"description": p["description"]} if "description" in p else {}),
                    }
                    for p in form
                },
            }
            required = [p["name"] for p in form if p.get("required")]
            if required:
                schema["required"] = required
            ctype = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
            out["requestBody"] = {"content": {ctype: {"schema": schema}}, "required": bool(required)}
        if params:
            out["parameters"] = params
        out["responses"] = {
            str(code): self.response(resp, produces) for code, resp in op.get("responses", {}).items()
        }
        return out

    def security_scheme(self, scheme: dict[str, Any]) -> dict[str, Any]:
        kind = scheme.get("type")
        desc = {"description": scheme["description"]} if "description" in scheme else {}
        if kind == "basic":
            return {"type": "http", "scheme": "basic", **desc}
        if kind == "apiKey":
            return {"type": "apiKey", "name": scheme["name"], "in": scheme["in"], **desc}
        flow_name = {
            "implicit": "implicit",
            "password": "password",
            "application": "clientCredentials",
            "accessCode": "authorizationCode",
        }[scheme["flow"]]
        flow: dict[str, Any] = {"scopes": scheme.get("scopes", {})}
        for key, new in (("authorizationUrl", "authorizationUrl"), ("tokenUrl", "tokenUrl")):
            if key in scheme:
                flow[new] = scheme[key]
        return {"type": "oauth2", "flows": {flow_name: flow}, **desc}

    def convert(self) -> dict[str, Any]:
        doc = self.doc
        base_path = doc.get("basePath") or "/"
        out: dict[str, Any] = {
            "openapi": "3.0.3",
            "info": copy.deepcopy(doc.get("info", {"title": "", "version": ""})),
            "servers": [{"url": base_path}],
            "paths": {},
            "components": {
                "schemas": {name: convert_schema(s) for name, s in doc.get("definitions", {}).items()},
                "responses": {
                    name: self.response(r, self.produces) for name, r in doc.get("responses", {}).items()
                },
                "parameters": {
                    name: convert_parameter(p)
                    for name, p in doc.get("parameters", {}).items()
                    if p.get("in") not in ("body", "formData")
                },
                "securitySchemes": {
                    name: self.security_scheme(s) for name, s in doc.get("securityDefinitions", {}).items()
                },
            },
        }
        for key in ("security", "tags", "externalDocs"):
            if key in doc:
                out[key] = copy.deepcopy(doc[key])
        for path, item in doc.get("paths", {}).items():
            path_params = item.get("parameters", [])
            out["paths"][path] = {
                m: self.operation(op, path_params) for m, op in item.items() if m in _METHODS
            }
        return out


def swagger2_to_openapi3(doc: dict[str, Any]) -> dict[str, Any]:
    """Convert a parsed Swagger 2.0 document; the input is left untouched."""
    if doc.get("swagger") != "2.0":
        raise ValueError("not a Swagger 2.0 document")
    return _Converter(doc).convert()
