"""Golden normalization: GitLab payloads from ``testdata/`` (shaped like the REST reference's
examples) → the plugin's normalized results, compared with ``golden/*.golden.json``.

The canned answers go through ``SpecValidatingTransport`` like everything else, so the testdata
must match GitLab's description too, and each case pins the exact requests the plugin sends.
Regenerate the golden files after an intended change with ``MOSAIC_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.providers.gitlab.spec import gitlab_spec
from tests.support.conformance import shutdown, started
from tests.support.fake_upstream import json_response
from tests.support.golden import check_golden as shared_check_golden
from tests.support.spec_validation import validating

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import RequestContext
from mosaic.providers.gitlab.git import GitLabGitPlugin

HERE = Path(__file__).parent
BASE = "https://gitlab.example.com"
P = "/api/v4/projects/acme%2Fplatform%2Fbilling-api"
REPO = "acme/platform/billing-api"
HEAD = "7b5c3cc8be40ee161ae89a06bba6229da1032a0c"
NEXT = {"X-Page": "1", "X-Per-Page": "2", "X-Next-Page": "2", "X-Total": "5", "X-Total-Pages": "3"}


@dataclass
class Case:
    name: str
    operation: str
    params: dict[str, Any]
    # "METHOD raw-path-with-query" → testdata file (and extra response headers)
    answers: dict[str, str | tuple[str, dict[str, str]]]
    raw_is_payload: bool = field(default=False)


CASES = [
    Case("project", "get_repository", {"repo": REPO}, {f"GET {P}": "project.json"}, raw_is_payload=True),
    Case("branches", "list_branches", {"repo": REPO, "limit": 2},
         {f"GET {P}/repository/branches?per_page=2": ("branches.json", NEXT)}),
    Case("commits", "list_commits", {"repo": REPO, "ref": "feature/retries", "limit": 2},
         {f"GET {P}/repository/commits?ref_name=feature%2Fretries&per_page=2": "commits.json"}),
    Case("commit", "get_commit", {"repo": REPO, "sha": HEAD}, {f"GET {P}/repository/commits/{HEAD}": "commit.json"},
         raw_is_payload=True),
    Case("file", "get_file", {"repo": REPO, "path": "app/models/key.rb", "ref": "main"},
         {f"GET {P}/repository/files/app%2Fmodels%2Fkey.rb?ref=main": "file.json"}, raw_is_payload=True),
    Case("compare", "compare_commits", {"repo": REPO, "base": "main", "head": "feature/retries"},
         {f"GET {P}/repository/compare?from=main&to=feature%2Fretries": "compare.json",
          f"GET {P}/repository/compare?from=feature%2Fretries&to=main": "compare_behind.json"}),
    Case("merge_request", "get_pull_request", {"repo": REPO, "number": 31},
         {f"GET {P}/merge_requests/31": "merge_request.json"}, raw_is_payload=True),
    Case("merge_requests", "list_pull_requests", {"repo": REPO, "state": "all"},
         {f"GET {P}/merge_requests?state=all&per_page=30": "merge_requests.json"}),
    Case("diffs", "list_pull_request_files", {"repo": REPO, "number": 31},
         {f"GET {P}/merge_requests/31/diffs?per_page=100": "diffs.json"}),
    Case("reviews", "list_reviews", {"repo": REPO, "number": 31},
         {f"GET {P}/merge_requests/31": "merge_request.json",
          "GET /api/v4/projects/3/merge_requests/31/approvals": "approvals.json",
          f"GET {P}/merge_requests/31/reviewers": "reviewers.json"}),
    Case("statuses", "list_commit_statuses", {"repo": REPO, "ref": HEAD},
         {f"GET {P}/repository/commits/{HEAD}/statuses?per_page=30": "statuses.json"}),
]


def load(name: str) -> Any:
    return json.loads((HERE / "testdata" / name).read_text())


def without_raw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_raw(v) for k, v in value.items() if k != "raw"}
    if isinstance(value, list):
        return [without_raw(v) for v in value]
    return value


def check_golden(name: str, actual: Any) -> None:
    shared_check_golden(HERE / "golden" / f"{name}.golden.json", actual)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_golden(case: Case) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.raw_path.decode()}"
        seen.append(key)
        found = case.answers.get(key)
        if found is None:
            raise AssertionError(f"unexpected request {key}; expected one of {sorted(case.answers)}")
        name, headers = found if isinstance(found, tuple) else (found, {})
        return json_response(200, load(name), headers)

    transport = validating(gitlab_spec(), answer)
    plugin = await started(GitLabGitPlugin("gitlab", transport=transport),
                           {"baseUrl": BASE, "auth": {"type": "token", "token": "glpat-test"}})
    try:
        op = CATALOG[f"git.{case.operation}"]
        result = await plugin.call(op, op.params(**case.params), RequestContext())
    finally:
        await shutdown(plugin)
    transport.assert_clean()
    assert sorted(seen) == sorted(case.answers)
    dumped = result.model_dump(mode="json")
    if case.raw_is_payload:
        assert dumped["raw"] == load(next(iter(case.answers.values())))  # type: ignore[arg-type]
    check_golden(case.name, without_raw(dumped))
