"""Bitbucket Cloud's API description as the tests validate against: ``bitbucket.yaml`` plus errata.

SOURCES.md: ``bitbucket.yaml`` is *not* Atlassian's file but a 2022 community conversion of
Atlassian's Swagger 2.0 (which Atlassian itself publishes as invalid). Where it is silent or wrong
about what Bitbucket's server does, the tests follow Atlassian's REST reference
(developer.atlassian.com/cloud/bitbucket/rest) instead. Each erratum names the reference section;
nothing else is relaxed. ``test_bitbucket_spec.py`` checks that every erratum is still needed.

Built once per test session (``functools.cache``); only the touched entries are copied.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from tests.support.spec_validation import ApiSpec, load_spec

REPO = "/repositories/{workspace}/{repo_slug}"
_METHODS = ("get", "put", "post", "delete", "patch")


def _query(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"in": "query", "name": name, "schema": schema or {"type": "string"}}


def _path(name: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


# "Pagination" / "Filtering and sorting" / "Partial responses" in the reference's introduction:
# every collection takes these, but the conversion declares them on almost none.
_COLLECTION_QUERY = [_query("page"), _query("pagelen", {"type": "integer", "minimum": 1, "maximum": 100}),
                     _query("q"), _query("sort"), _query("fields")]

# "List commits" (GET .../commits/{revision}): include/exclude revisions and a path filter; the
# conversion documents no parameters and only an error response.
_CHANGESETS = {"type": "object", "properties": {
    "pagelen": {"type": "integer"}, "page": {"type": "integer"}, "size": {"type": "integer"},
    "next": {"type": "string", "format": "uri"}, "previous": {"type": "string", "format": "uri"},
    "values": {"type": "array", "items": _ref("commit")}}}

# "Create a branch": {"name": ..., "target": {"hash": ...}}.
_CREATE_BRANCH = {"type": "object", "required": ["name", "target"], "properties": {
    "name": {"type": "string", "minLength": 1},
    "target": {"type": "object", "required": ["hash"], "properties": {"hash": {"type": "string"}}}}}

# "Create a commit by uploading a file": the conversion turned the form fields into query
# parameters; Bitbucket reads them from the multipart (or urlencoded) body only. File fields are
# named by their path in the repository.
_UPLOAD = {"type": "object", "properties": {
    "message": {"type": "string"}, "author": {"type": "string"}, "parents": {"type": "string"},
    "files": {"type": "string"}, "branch": {"type": "string"}},
    "additionalProperties": {"type": "string", "format": "binary"}}

# "Request changes for a pull request" / "Remove change request for a pull request".
_REQUEST_CHANGES = {
    "parameters": [_path("workspace"), _path("repo_slug"), _path("pull_request_id")],
    "post": {"operationId": "errataRequestChanges", "responses": {"200": _json(_ref("participant")),
                                                                  "400": _json(_ref("error"))}},
    "delete": {"operationId": "errataRemoveChangeRequest", "responses": {"204": {"description": "removed"}}},
}


_MERGE_TASK = {"type": "object", "properties": {
    "task_status": {"type": "string", "enum": ["PENDING", "SUCCESS"]},
    "links": {"type": "object", "properties": {"self": {"type": "object", "properties": {
        "href": {"type": "string"}}}}}}}


def _bodiless(response: Any) -> Any:
    if isinstance(response, dict) and response.get("content") == {}:
        return {k: v for k, v in response.items() if k != "content"}
    return response


def _patched(document: dict[str, Any]) -> dict[str, Any]:
    doc = dict(document)
    paths: dict[str, Any] = {}
    # Two artefacts of the conversion, undone everywhere: YAML reads unquoted status codes as
    # integers (OpenAPI, and the validator, key them by string), and a Swagger 2.0 response without
    # a schema became `content: {}` — which says "a body of no known type", not "no body".
    for template, item in document["paths"].items():
        item = dict(item)
        for method in _METHODS:
            if isinstance(item.get(method), dict):
                op = dict(item[method])
                op["responses"] = {str(k): _bodiless(v) for k, v in op.get("responses", {}).items()}
                item[method] = op
        paths[template] = item
    schemas = dict(doc["components"]["schemas"])
    doc.update(paths=paths, components={**doc["components"], "schemas": schemas})
    schemas["errata_paginated_changesets"] = _CHANGESETS
    # The conversion nested `type`/`required` inside `properties` of two comment schemas, which makes
    # them invalid JSON Schema; hoisted back out, as in Atlassian's original.
    for name in ("comment_content", "comment_inline"):
        broken = copy.deepcopy(schemas[name])
        props = broken["properties"]
        for keyword in ("type", "required"):
            if not isinstance(props.get(keyword), dict) and keyword in props:
                broken[keyword] = props.pop(keyword)
        schemas[name] = broken

    for item in paths.values():
        get = item.get("get")
        schema = (((get or {}).get("responses", {}).get("200") or {}).get("content", {})
                  .get("application/json", {}).get("schema", {}))
        if str(schema.get("$ref", "")).rsplit("/", 1)[-1].startswith("paginated_"):
            declared = {p.get("name") for p in get.get("parameters", [])}
            get["parameters"] = [*get.get("parameters", []),
                                 *(copy.deepcopy(q) for q in _COLLECTION_QUERY if q["name"] not in declared)]

    # "List public repositories": `role` (and filtering) are documented, `after` alone is declared.
    listing = paths["/repositories"]["get"]
    listing["parameters"] = [*listing.get("parameters", []),
                             _query("role", {"type": "string", "enum": ["member", "contributor", "admin", "owner"]}),
                             *(copy.deepcopy(q) for q in _COLLECTION_QUERY)]

    for template in (REPO + "/commits", REPO + "/commits/{revision}"):
        get = paths[template]["get"]
        get["parameters"] = [*get.get("parameters", []), _query("include"), _query("exclude"), _query("path"),
                             *(copy.deepcopy(q) for q in _COLLECTION_QUERY)]
        get["responses"] = {**get["responses"], "200": _json(_ref("errata_paginated_changesets"))}

    paths[REPO + "/refs/branches"]["post"]["requestBody"] = {"required": True, **_json(_CREATE_BRANCH)}

    upload = paths[REPO + "/src"]["post"]
    upload["parameters"] = [p for p in upload.get("parameters", []) if p.get("in") == "path"]
    upload["requestBody"] = {"required": True, "content": {
        "multipart/form-data": {"schema": _UPLOAD}, "application/x-www-form-urlencoded": {"schema": _UPLOAD}}}

    # "Get file or directory contents": a file's raw bytes come with a Content-Type derived from its
    # name; only directory listings (and `format=meta`) are JSON.
    raw = paths[REPO + "/src/{node}/{path}"]["get"]
    raw["responses"] = copy.deepcopy(raw["responses"])
    raw["responses"]["200"]["content"]["*/*"] = {"schema": {"type": "string", "format": "binary"}}

    paths[REPO + "/pullrequests/{pull_request_id}/request-changes"] = _REQUEST_CHANGES

    # "Merge a pull request": a merge that takes long is finished in the background; Bitbucket then
    # answers 202 with a link to poll (the pull request itself shows MERGED once it is done).
    merge = paths[REPO + "/pullrequests/{pull_request_id}/merge"]["post"]
    merge["parameters"] = [*merge.get("parameters", []), _query("async", {"type": "boolean"})]
    merge["responses"] = {**merge["responses"], "202": _json(_MERGE_TASK)}
    return doc


@cache
def bitbucket_spec() -> ApiSpec:
    """``bitbucket.yaml`` with the errata above (built once per session)."""
    original = load_spec("bitbucket")
    return ApiSpec(name="bitbucket", source=original.source, document=_patched(original.document),
                   base_path=original.base_path, greedy=original.greedy)
