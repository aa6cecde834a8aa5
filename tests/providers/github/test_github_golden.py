"""Normalization of GitHub payloads, drone/go-scm style.

Each case serves payloads from ``testdata/`` — GitHub's own documented examples from
``github.json`` (see ``testdata/README.md``) — through the plugin, with every request and answer
checked against the description, and compares the normalized result, minus the ``raw`` payloads,
with ``<case>.golden.json``. Set ``MOSAIC_UPDATE_GOLDEN=1`` to rewrite the golden files after a
deliberate change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.providers.github.spec import github_spec
from tests.support.fake_upstream import FakeRequest, HttpError, Router, json_response
from tests.support.golden import check_golden
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin
from mosaic.providers.github.actions import GitHubActionsPlugin
from mosaic.providers.github.git import GitHubGitPlugin

HERE = Path(__file__).parent
TESTDATA = HERE / "testdata"
SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"

Serve = str | Callable[[FakeRequest], str]


@dataclass(frozen=True)
class Case:
    name: str
    operation: str
    params: dict[str, Any]
    # (method, template) → testdata file, or a function of the request choosing one (or raising)
    routes: dict[tuple[str, str], Serve]
    status: int = 200
    # raw of the result must be this testdata file (single objects)
    raw: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)


R = "/repos/{owner}/{repo}"
A = R + "/actions"


def _workflow_by_file(req: FakeRequest) -> str:
    if req.params["workflow_id"] != "blank.yaml":
        raise HttpError(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
    return "workflow.json"


CASES = [
    Case(
        "repository",
        "git.get_repository",
        {"repo": "octocat/Hello-World"},
        {("GET", R): "full-repository.json"},
        raw="full-repository.json",
    ),
    Case(
        "repositories",
        "git.list_repositories",
        {"limit": 10},
        {("GET", "/user/repos"): "repository-items.json"},
    ),
    Case(
        "repositories_of_a_user",
        "git.list_repositories",
        {"owner": "hubot", "limit": 10},
        {
            ("GET", "/user"): "user.json",
            ("GET", "/users/{username}"): "public-user.json",
            ("GET", "/users/{username}/repos"): "minimal-repository-items.json",
        },
    ),
    Case(
        "branch",
        "git.get_branch",
        {"repo": "octocat/Hello-World", "branch": "main"},
        {("GET", R + "/branches/{branch}"): "branch.json"},
        raw="branch.json",
    ),
    Case(
        "branches",
        "git.list_branches",
        {"repo": "octocat/Hello-World"},
        {("GET", R + "/branches"): "short-branch-items.json"},
    ),
    Case(
        "branch_created",
        "git.create_branch",
        {
            "repo": "octocat/Hello-World",
            "branch": "featureA",
            "from_ref": "aa218f56b14c9653891f9e74264a383fa43fefbd",
        },
        {("POST", R + "/git/refs"): "git-ref.json"},
        status=201,
        raw="git-ref.json",
    ),
    Case(
        "commit",
        "git.get_commit",
        {"repo": "octocat/Hello-World", "sha": SHA},
        {("GET", R + "/commits/{ref}"): "commit.json"},
        raw="commit.json",
    ),
    Case(
        "commits",
        "git.list_commits",
        {"repo": "octocat/Hello-World", "ref": "main"},
        {("GET", R + "/commits"): "commit-items.json"},
    ),
    Case(
        "compare",
        "git.compare_commits",
        {"repo": "octocat/Hello-World", "base": "master", "head": "topic"},
        {("GET", R + "/compare/{basehead}"): "commit-comparison.json"},
        raw="commit-comparison.json",
        # github.json also describes this path as /compare/{base}...{head}, the more literal match
        calls=[("GET", R + "/compare/{base}...{head}")],
    ),
    Case(
        "contents",
        "git.get_file",
        {"repo": "octocat/Hello-World", "path": "README.md", "ref": "main"},
        {("GET", R + "/contents/{path}"): "content-file.json"},
        raw="content-file.json",
    ),
    Case(
        "file_created",
        "git.put_file",
        {
            "repo": "octocat/Hello-World",
            "path": "notes/hello.txt",
            "content": "my new file contents",
            "message": "my commit message",
        },
        {("PUT", R + "/contents/{path}"): "file-commit-create.json"},
        status=201,
        raw="file-commit-create.json",
    ),
    Case(
        "file_updated",
        "git.put_file",
        {
            "repo": "octocat/Hello-World",
            "path": "notes/hello.txt",
            "content": "my updated file contents",
            "message": "a new commit message",
            "sha": "95b966ae1c166bd92f8ae7d1c313e738c731dfc3",
            "author_name": "Monalisa Octocat",
            "author_email": "octocat@github.com",
        },
        {("PUT", R + "/contents/{path}"): "file-commit-update.json"},
        raw="file-commit-update.json",
    ),
    Case(
        "pull_request",
        "git.get_pull_request",
        {"repo": "octocat/Hello-World", "number": 1347},
        {("GET", R + "/pulls/{pull_number}"): "pull-request.json"},
        raw="pull-request.json",
    ),
    Case(
        "pull_requests",
        "git.list_pull_requests",
        {"repo": "octocat/Hello-World", "state": "all"},
        {("GET", R + "/pulls"): "pull-request-simple-items.json"},
    ),
    Case(
        "pull_merged",
        "git.merge_pull_request",
        {"repo": "octocat/Hello-World", "number": 1347, "strategy": "squash"},
        {("PUT", R + "/pulls/{pull_number}/merge"): "pull-request-merge-result.json"},
        raw="pull-request-merge-result.json",
    ),
    Case(
        "pull_files",
        "git.list_pull_request_files",
        {"repo": "octocat/Hello-World", "number": 1347},
        {("GET", R + "/pulls/{pull_number}/files"): "diff-entry-items.json"},
    ),
    Case(
        "review",
        "git.review_pull_request",
        {
            "repo": "octocat/Hello-World",
            "number": 12,
            "event": "approve",
            "body": "Here is the body for the review.",
        },
        {("POST", R + "/pulls/{pull_number}/reviews"): "pull-request-review.json"},
        raw="pull-request-review.json",
    ),
    Case(
        "reviews",
        "git.list_reviews",
        {"repo": "octocat/Hello-World", "number": 12},
        {("GET", R + "/pulls/{pull_number}/reviews"): "pull-request-review-items.json"},
    ),
    Case(
        "status",
        "git.set_commit_status",
        {
            "repo": "octocat/Hello-World",
            "sha": SHA,
            "state": "success",
            "context": "continuous-integration/jenkins",
            "description": "Build has completed successfully",
            "target_url": "https://ci.example.com/1000/output",
        },
        {("POST", R + "/statuses/{sha}"): "status.json"},
        status=201,
        raw="status.json",
    ),
    Case(
        "statuses",
        "git.list_commit_statuses",
        {"repo": "octocat/Hello-World", "ref": SHA},
        {("GET", R + "/commits/{ref}/statuses"): "status-items.json"},
    ),
    # -- Actions
    Case(
        "workflow",
        "cicd.get_pipeline",
        {"repo": "octo-org/octo-repo", "pipeline": "blank"},
        {
            ("GET", A + "/workflows/{workflow_id}"): _workflow_by_file,
            ("GET", R + "/contents/{path}"): "content-workflow.json",
        },
        raw="workflow.json",
        calls=[
            ("GET", A + "/workflows/{workflow_id}"),
            ("GET", A + "/workflows/{workflow_id}"),
            ("GET", R + "/contents/{path}"),
        ],
    ),
    Case(
        "workflows",
        "cicd.list_pipelines",
        {"repo": "octo-org/octo-repo"},
        {("GET", A + "/workflows"): "workflow-paginated.json"},
    ),
    Case(
        "run",
        "cicd.get_pipeline_status",
        {"run_id": "octo-org:octo-repo:30433642"},
        {
            ("GET", A + "/runs/{run_id}"): "workflow-run.json",
            ("GET", A + "/runs/{run_id}/jobs"): "job-paginated.json",
        },
        raw="workflow-run.json",
    ),
    Case(
        "runs",
        "cicd.list_runs",
        {"repo": "octo-org/octo-repo"},
        {("GET", A + "/runs"): "workflow-run-paginated.json"},
    ),
    Case(
        "jobs",
        "cicd.list_jobs",
        {"run_id": "29679449", "repo": "octo-org/octo-repo"},
        {("GET", A + "/runs/{run_id}/jobs"): "job-paginated.json"},
    ),
    Case(
        "artifacts",
        "cicd.list_artifacts",
        {"run_id": "octo-org:octo-repo:2"},
        {("GET", A + "/runs/{run_id}/artifacts"): "artifact-paginated.json"},
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
    router = Router(greedy=("path", "basehead"))
    for (method, template), source in case.routes.items():

        def handler(req: FakeRequest, source: Serve = source) -> httpx.Response:
            name = source(req) if callable(source) else source
            assert req.headers["authorization"] == "Bearer ghp_s3cret"
            assert req.headers["x-github-api-version"] == "2022-11-28"
            assert req.headers["accept"] == "application/vnd.github+json"
            return json_response(case.status if req.method != "GET" else 200, load(name))

        router.add(method, template, handler)
    return router


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_golden(case: Case, spec_transport: Callable[..., SpecValidatingTransport]) -> None:
    transport = spec_transport(github_spec(), serve(case).transport())
    service = case.operation.split(".")[0]
    cls: type[ProviderPlugin] = GitHubGitPlugin if service == "git" else GitHubActionsPlugin
    plugin = cls(f"github-{service}", transport=transport)  # type: ignore[call-arg]
    await plugin.initialize(cls.Config.model_validate({"auth": {"type": "token", "token": "ghp_s3cret"}}))
    await plugin.start()
    try:
        op = CATALOG[case.operation]
        result = await plugin.call(op, op.params(**case.params), RequestContext())
    finally:
        await plugin.dispose()

    dumped = result.model_dump(mode="json")
    check_golden(TESTDATA / f"{case.name}.golden.json", strip_raw(dumped))
    if case.raw:
        assert dumped["raw"] == load(case.raw)
    assert transport.calls() == (case.calls or list(case.routes))
