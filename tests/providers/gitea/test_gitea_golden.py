"""Normalization of Gitea/Forgejo payloads, drone/go-scm style.

Each case serves payloads from ``testdata/`` (shaped as the vendor's description says — the
validating transport checks every answer against it, and every request the plugin sends) and
compares the plugin's normalized result, minus the ``raw`` payloads, with ``<case>.golden.json``.
Set ``MOSAIC_UPDATE_GOLDEN=1`` to rewrite the golden files after a deliberate change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.support.fake_upstream import FakeRequest, Router, json_response
from tests.support.golden import check_golden
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import RequestContext
from mosaic.providers.gitea.git import ForgejoGitPlugin, GiteaGitPlugin

HERE = Path(__file__).parent
TESTDATA = HERE / "testdata"
BASE_URL = "https://git.example.com"
S1 = "5e3f0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
SM = "9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5"

Serve = str | Callable[[FakeRequest], str]


@dataclass(frozen=True)
class Case:
    name: str
    operation: str
    params: dict[str, Any]
    # (method, template) → testdata file, or a function of the request choosing one
    routes: dict[tuple[str, str], Serve]
    status: int = 200
    flavour: str = "gitea"
    # raw of the result must be this testdata file (single objects)
    raw: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)


R = "/repos/{owner}/{repo}"
CASES = [
    Case(
        "repository",
        "get_repository",
        {"repo": "acme/api"},
        {("GET", R): "repository.json"},
        raw="repository.json",
    ),
    Case(
        "repositories",
        "list_repositories",
        {"owner": "acme", "limit": 10},
        {("GET", "/users/{username}/repos"): "repositories.json"},
    ),
    Case(
        "branch",
        "get_branch",
        {"repo": "acme/api", "branch": "feature/login"},
        {("GET", R + "/branches/{branch}"): "branch.json"},
        raw="branch.json",
    ),
    Case(
        "commits",
        "list_commits",
        {"repo": "acme/api", "ref": "main"},
        {("GET", R + "/commits"): "commits.json"},
    ),
    Case(
        "commit",
        "get_commit",
        {"repo": "acme/api", "sha": SM},
        {("GET", R + "/git/commits/{sha}"): "commit.json"},
        raw="commit.json",
    ),
    Case(
        "contents",
        "get_file",
        {"repo": "acme/api", "path": "docs/README.md", "ref": "main"},
        {("GET", R + "/contents/{filepath}"): "contents.json"},
        raw="contents.json",
    ),
    Case(
        "contents_binary",
        "get_file",
        {"repo": "acme/api", "path": "img/logo.png"},
        {("GET", R + "/contents/{filepath}"): "contents_binary.json"},
    ),
    Case(
        "file_response",
        "put_file",
        {
            "repo": "acme/api",
            "path": "docs/README.md",
            "content": "# Acme API\n",
            "message": "Update docs",
            "branch": "feature/login",
            "sha": "b1946ac92492d2347c6235b4d2611184a9a8c3f5",
            "author_name": "Alice Liddell",
            "author_email": "alice@example.com",
        },
        {("PUT", R + "/contents/{filepath}"): "file_response.json"},
        raw="file_response.json",
    ),
    Case(
        "pull_request",
        "get_pull_request",
        {"repo": "acme/api", "number": 12},
        {("GET", R + "/pulls/{index}"): "pull_request.json"},
        raw="pull_request.json",
    ),
    Case(
        "pull_request_merged",
        "get_pull_request",
        {"repo": "acme/api", "number": 12},
        {("GET", R + "/pulls/{index}"): "pull_request_merged.json"},
    ),
    Case(
        "pull_files",
        "list_pull_request_files",
        {"repo": "acme/api", "number": 12},
        {("GET", R + "/pulls/{index}/files"): "pull_files.json"},
    ),
    Case(
        "pull_review",
        "review_pull_request",
        {"repo": "acme/api", "number": 12, "event": "approve", "body": "Looks good to me."},
        {("POST", R + "/pulls/{index}/reviews"): "pull_review.json"},
        raw="pull_review.json",
    ),
    Case(
        "pull_reviews",
        "list_reviews",
        {"repo": "acme/api", "number": 12},
        {("GET", R + "/pulls/{index}/reviews"): "pull_reviews.json"},
    ),
    Case(
        "commit_status",
        "set_commit_status",
        {
            "repo": "acme/api",
            "sha": S1,
            "state": "success",
            "context": "ci/woodpecker",
            "description": "Pipeline #77 passed",
            "target_url": "https://ci.example.com/acme/api/pipeline/77",
        },
        {("POST", R + "/statuses/{sha}"): "commit_status.json"},
        status=201,
        raw="commit_status.json",
    ),
    Case(
        "commit_statuses",
        "list_commit_statuses",
        {"repo": "acme/api", "ref": "feature/login"},
        {("GET", R + "/commits/{ref}/statuses"): "commit_statuses.json"},
    ),
    Case(
        "compare",
        "compare_commits",
        {"repo": "acme/api", "base": "main", "head": "feature/login"},
        {
            ("GET", R + "/compare/{basehead}"): lambda req: (
                "compare.json" if req.params["basehead"] == "main...feature/login" else "compare_behind.json"
            )
        },
        calls=[("GET", R + "/compare/{basehead}")] * 2,
    ),
    Case(
        "compare_forgejo",
        "compare_commits",
        {"repo": "acme/api", "base": "main", "head": "feature/login"},
        {
            ("GET", R + "/compare/{basehead}"): lambda req: (
                "compare_forgejo.json"
                if req.params["basehead"] == "main...feature/login"
                else "compare_behind.json"
            )
        },
        flavour="forgejo",
        calls=[("GET", R + "/compare/{basehead}")] * 2,
    ),
]


def load(name: str) -> Any:
    return orjson.loads((TESTDATA / name).read_bytes())


def strip_raw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_raw(v) for k, v in value.items() if k != "raw"}
    if isinstance(value, list):
        return [strip_raw(v) for v in value]
    return value


def serve(case: Case) -> Router:
    router = Router(prefix="/api/v1", greedy=("filepath", "basehead"))
    for (method, template), source in case.routes.items():

        def handler(req: FakeRequest, source: Serve = source) -> httpx.Response:
            name = source(req) if callable(source) else source
            assert req.headers["authorization"] == "token s3cret"
            return json_response(case.status if req.method != "GET" else 200, load(name))

        router.add(method, template, handler)
    return router


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_golden(case: Case, spec_transport: Callable[..., SpecValidatingTransport]) -> None:
    transport = spec_transport(case.flavour, serve(case).transport())
    cls = ForgejoGitPlugin if case.flavour == "forgejo" else GiteaGitPlugin
    plugin = cls(case.flavour, transport=transport)
    await plugin.initialize(
        cls.Config.model_validate({"baseUrl": BASE_URL, "auth": {"type": "token", "token": "s3cret"}})
    )
    await plugin.start()
    try:
        op = CATALOG[f"git.{case.operation}"]
        result = await plugin.call(op, op.params(**case.params), RequestContext())
    finally:
        await plugin.dispose()

    dumped = result.model_dump(mode="json")
    check_golden(HERE / "testdata" / f"{case.name}.golden.json", strip_raw(dumped))
    if case.raw:
        assert dumped["raw"] == load(case.raw)
    expected_calls = case.calls or list(case.routes)
    assert transport.calls() == expected_calls
