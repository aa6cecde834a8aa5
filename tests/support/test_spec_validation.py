"""The spec validator itself: what it accepts, what it rejects, and the Swagger 2 converter."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator.validation.validators import OpenAPIV30SpecValidator
from tests.support.fake_upstream import json_response
from tests.support.spec_validation import SpecViolation, load_spec, specs_dir, validating
from tests.support.swagger2 import swagger2_to_openapi3

GITEA = "https://gitea.test/api/v1"
AUTH = {"Authorization": "token abc"}


def check(
    method: str, url: str, spec: str = "gitea", headers: dict[str, str] | None = None, **kw: Any
) -> str:
    request = httpx.Request(method, url, headers=AUTH if headers is None else headers, **kw)
    return load_spec(spec).check_request(request).template.template


@pytest.mark.parametrize(
    ("method", "url", "kw", "template"),
    [
        ("GET", f"{GITEA}/repos/acme/api", {}, "/repos/{owner}/{repo}"),
        ("POST", f"{GITEA}/user/repos", {"json": {"name": "x", "private": True}}, "/user/repos"),
        (
            "GET",
            f"{GITEA}/repos/a/b/contents/docs/guide/intro.md",
            {"params": {"ref": "main"}},
            "/repos/{owner}/{repo}/contents/{filepath}",
        ),
        ("GET", f"{GITEA}/repos/a/b/compare/main...feat/x", {}, "/repos/{owner}/{repo}/compare/{basehead}"),
        ("GET", f"{GITEA}/repos/a/b/branches/feat%2Fx", {}, "/repos/{owner}/{repo}/branches/{branch}"),
        ("GET", f"{GITEA}/repos/a/b/pulls/pinned", {}, "/repos/{owner}/{repo}/pulls/pinned"),
        (
            "GET",
            f"{GITEA}/repos/a/b/pulls/7/files",
            {"params": {"limit": 5}},
            "/repos/{owner}/{repo}/pulls/{index}/files",
        ),
        ("GET", f"{GITEA}/repos/a/b/pulls/7.diff", {}, "/repos/{owner}/{repo}/pulls/{index}.{diffType}"),
        (
            "POST",
            f"{GITEA}/repos/a/b/pulls/7/merge",
            {"json": {"Do": "squash"}},
            "/repos/{owner}/{repo}/pulls/{index}/merge",
        ),
    ],
)
def test_good_requests_pass(method: str, url: str, kw: dict[str, Any], template: str) -> None:
    assert check(method, url, **kw) == template


@pytest.mark.parametrize(
    ("method", "url", "kw", "reason"),
    [
        ("GET", f"{GITEA}/repos/acme", {}, "no such path"),
        ("GET", "https://gitea.test/v1/repos/a/b", {}, "not under the API root"),
        ("PUT", f"{GITEA}/repos/a/b", {"json": {}}, "allows only DELETE, GET, PATCH"),
        (
            "POST",
            f"{GITEA}/repos/a/b/contents/x.md",
            {"json": {"message": "no content"}},
            "'content' is a required",
        ),
        (
            "POST",
            f"{GITEA}/user/repos",
            {"json": {"name": "x", "private": "yes"}},
            "'yes' is not of type 'boolean'",
        ),
        ("POST", f"{GITEA}/repos/a/b/pulls/1/merge", {"json": {"Do": "fast-forward"}}, "is not one of"),
        ("GET", f"{GITEA}/repos/a/b/commits", {"params": {"limit": "ten"}}, "limit"),
        ("GET", f"{GITEA}/repos/a/b/commits", {"params": {"per_page": 5}}, "per_page not declared"),
        ("GET", f"{GITEA}/repos/a/b/pulls/x/files", {}, "index"),
        ("GET", f"{GITEA}/repos/a/b", {"json": {"a": 1}}, "takes none"),
        ("PUT", f"{GITEA}/repos/a/b/contents/x.md", {}, "request body is required"),
    ],
)
def test_bad_requests_fail(method: str, url: str, kw: dict[str, Any], reason: str) -> None:
    with pytest.raises(SpecViolation, match=reason):
        check(method, url, **kw)


def test_credentials_are_required_where_the_spec_says() -> None:
    with pytest.raises(SpecViolation, match="Security"):
        check("GET", f"{GITEA}/user", headers={})


def test_openapi3_descriptions_too() -> None:
    assert (
        check(
            "POST",
            "https://api.github.com/repos/o/r/pulls",
            "github",
            json={"title": "t", "head": "f", "base": "main"},
        )
        == "/repos/{owner}/{repo}/pulls"
    )
    with pytest.raises(SpecViolation, match="'head' is a required"):
        check("POST", "https://api.github.com/repos/o/r/pulls", "github", json={"title": "t", "base": "main"})
    assert (
        check("GET", "https://api.github.com/repos/o/r/contents/a/b.txt", "github")
        == "/repos/{owner}/{repo}/contents/{path}"
    )


def test_loading_is_lazy_cached_and_timed() -> None:
    started = time.perf_counter()
    spec = load_spec("github")
    assert load_spec("github") is spec
    assert time.perf_counter() - started < 10
    assert {"read"} <= set(spec.timings)
    assert spec.base_path == "" and load_spec("gitea").base_path == "/api/v1"


def test_specs_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (specs_dir() / "SOURCES.md").is_file()
    doc = {
        "swagger": "2.0",
        "info": {"title": "tiny", "version": "1"},
        "basePath": "/api",
        "paths": {
            "/ping": {
                "get": {
                    "parameters": [{"name": "n", "in": "query", "type": "integer"}],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    (tmp_path / "tiny-override.json").write_text(json.dumps(doc))
    monkeypatch.setenv("MOSAIC_SPECS_DIR", str(tmp_path))
    spec = load_spec("tiny-override.json")
    assert spec.check_request(httpx.Request("GET", "http://h/api/ping?n=3")).template.template == "/ping"
    with pytest.raises(SpecViolation, match="n"):
        spec.check_request(httpx.Request("GET", "http://h/api/ping?n=three"))


# -- responses and the transport ------------------------------------------------------------------------


async def _exchange(spec: str, url: str, answer: httpx.Response, method: str = "GET") -> None:
    transport = validating(spec, lambda request: answer)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.request(method, url, headers=AUTH)


async def test_responses_are_checked() -> None:
    await _exchange("gitea", f"{GITEA}/repos/a/b", json_response(200, {"id": 1, "name": "b", "parent": None}))
    await _exchange(
        "gitea", f"{GITEA}/repos/a/b", json_response(401, {"message": "who?"})
    )  # any path may 401
    with pytest.raises(SpecViolation, match="'one' is not of type 'integer'"):
        await _exchange("gitea", f"{GITEA}/repos/a/b", json_response(200, {"id": "one"}))
    with pytest.raises(SpecViolation, match="status not documented"):
        await _exchange("gitea", f"{GITEA}/user/repos", json_response(200, {"id": 1}), method="POST")


async def test_nulls_are_kept_where_the_description_marks_nullable() -> None:
    url = "https://api.github.com/installation/repositories"
    with pytest.raises(SpecViolation, match="None is not of type 'integer'"):
        await _exchange("github", url, json_response(200, {"total_count": None, "repositories": []}))
    assert load_spec("github").keep_nulls and not load_spec("gitea").keep_nulls


async def test_a_directory_listing_is_checked_item_by_item() -> None:
    url = f"{GITEA}/repos/a/b/contents/docs"
    await _exchange("gitea", url, json_response(200, [{"name": "a.md", "type": "file", "size": 3}]))
    with pytest.raises(SpecViolation, match="not of type 'integer'"):
        await _exchange("gitea", url, json_response(200, [{"name": "a.md", "size": "big"}]))


async def test_swallowed_violations_still_fail() -> None:
    transport = validating("gitea", lambda request: json_response(200, {}))
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            await client.get(f"{GITEA}/nowhere", headers=AUTH)
        except SpecViolation:
            pass  # code under test that catches everything
    assert transport.calls() == [("GET", "?")]
    with pytest.raises(SpecViolation, match="1 request"):
        transport.assert_clean()


# -- the Swagger 2 converter -------------------------------------------------------------------------------


def test_converter_covers_what_the_descriptions_use() -> None:
    doc = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "basePath": "/api",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "basic": {"type": "basic"},
            "key": {"type": "apiKey", "name": "X-Key", "in": "header"},
        },
        "parameters": {"page": {"name": "page", "in": "query", "type": "integer"}},
        "definitions": {
            "Thing": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "owner": {"$ref": "#/definitions/User", "x-nullable": True},
                    "tags": {"type": "array"},
                },
            },
            "User": {"type": "object", "properties": {"login": {"type": "string"}}},
        },
        "responses": {"ThingResponse": {"description": "a thing", "schema": {"$ref": "#/definitions/Thing"}}},
        "paths": {
            "/things/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "type": "integer"}],
                "put": {
                    "parameters": [
                        {
                            "name": "body",
                            "in": "body",
                            "required": True,
                            "schema": {"$ref": "#/definitions/Thing"},
                        },
                        {"name": "Authorization", "in": "header", "type": "string"},
                        {
                            "name": "ids",
                            "in": "query",
                            "type": "array",
                            "items": {"type": "integer"},
                            "collectionFormat": "multi",
                        },
                        {"$ref": "#/parameters/page"},
                    ],
                    "responses": {"200": {"$ref": "#/responses/ThingResponse"}},
                },
                "post": {
                    "consumes": ["multipart/form-data"],
                    "parameters": [
                        {"name": "file", "in": "formData", "type": "file", "required": True},
                        {"name": "note", "in": "formData", "type": "string"},
                    ],
                    "responses": {"201": {"description": "made", "headers": {"X-Id": {"type": "integer"}}}},
                },
            }
        },
    }
    out = swagger2_to_openapi3(doc)
    assert out["servers"] == [{"url": "/api"}]
    put = out["paths"]["/things/{id}"]["put"]
    assert put["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
    }
    names = {p["name"]: p for p in put["parameters"]}
    assert set(names) == {"id", "ids", "page"}  # Authorization is not a parameter in OpenAPI 3
    assert names["ids"]["style"] == "form" and names["ids"]["explode"] is True
    assert names["id"]["required"] is True and names["id"]["schema"] == {"type": "integer"}
    assert put["responses"]["200"] == {"$ref": "#/components/responses/ThingResponse"}
    post = out["paths"]["/things/{id}"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary"} and form["required"] == [
        "file"
    ]
    assert post["responses"]["201"]["headers"]["X-Id"]["schema"] == {"type": "integer"}
    thing = out["components"]["schemas"]["Thing"]
    assert thing["properties"]["owner"] == {"$ref": "#/components/schemas/User", "nullable": True}
    assert thing["properties"]["tags"] == {"type": "array", "items": {}}
    assert out["components"]["securitySchemes"]["basic"] == {"type": "http", "scheme": "basic"}
    assert not list(OpenAPIV30SpecValidator(out).iter_errors())


@pytest.mark.parametrize("name", ["woodpecker.json", "gitea.json"])
def test_converted_vendor_descriptions_are_valid_openapi3(name: str) -> None:
    doc = json.loads((specs_dir() / name).read_text())
    errors = [str(e)[:200] for e in OpenAPIV30SpecValidator(swagger2_to_openapi3(doc)).iter_errors()]
    assert errors == []
