"""Golden normalization: Bitbucket Cloud payloads from ``testdata/`` (shaped like the API
reference's examples) → the plugin's normalized results, compared with ``golden/*.golden.json``.

The canned answers go through ``SpecValidatingTransport``, so the testdata must match
``bitbucket.yaml`` (with its errata) too, and each case pins the exact requests the plugin sends.
Regenerate the golden files after an intended change with ``MOSAIC_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.providers.bitbucket.spec import bitbucket_spec
from tests.support.conformance import shutdown, started
from tests.support.fake_upstream import json_response
from tests.support.golden import check_golden as shared_check_golden
from tests.support.spec_validation import validating

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import RequestContext
from mosaic.providers.bitbucket.git import BitbucketGitPlugin

HERE = Path(__file__).parent
API = "https://api.bitbucket.org/2.0"
R = "/2.0/repositories/acme/billing-api"
REPO = "acme/billing-api"
H1 = "7b5c3cc8be40ee161ae89a06bba6229da1032a0c"
H0 = "4ad91d3c1144c406e50c7b33bae684bd6837faf8"


@dataclass
class Case:
    name: str
    operation: str
    params: dict[str, Any]
    # "METHOD raw-path-with-query" → testdata file (JSON unless it ends in .rb: raw bytes)
    answers: dict[str, str]
    raw_is: str | None = None


CASES = [
    Case("repository", "get_repository", {"repo": REPO}, {f"GET {R}": "repository.json"}, "repository.json"),
    Case("branches", "list_branches", {"repo": REPO, "limit": 2},
         {f"GET {R}/refs/branches?pagelen=2": "branches.json"}),
    Case("commits", "list_commits", {"repo": REPO, "ref": "feature/retries", "limit": 2},
         {f"GET {R}/commits/feature%2Fretries?pagelen=2": "commits.json"}),
    Case("commit", "get_commit", {"repo": REPO, "sha": H1}, {f"GET {R}/commit/{H1}": "commit.json"}, "commit.json"),
    Case("file", "get_file", {"repo": REPO, "path": "app/models/key.rb", "ref": "main"},
         {f"GET {R}/src/main/app/models/key.rb?format=meta": "src_meta.json",
          f"GET {R}/src/{H0}/app/models/key.rb": "key.rb"}, "src_meta.json"),
    Case("pullrequest", "get_pull_request", {"repo": REPO, "number": 31},
         {f"GET {R}/pullrequests/31": "pullrequest.json", f"GET {R}/commit/{H1[:12]}": "commit.json"},
         "pullrequest.json"),
    Case("pullrequests", "list_pull_requests", {"repo": REPO, "state": "all"},
         {f"GET {R}/pullrequests?q=state%3D%22OPEN%22+OR+state%3D%22MERGED%22+OR+state%3D%22DECLINED%22+OR"
          "+state%3D%22SUPERSEDED%22&pagelen=30": "pullrequests.json"}),
    Case("diffstat", "list_pull_request_files", {"repo": REPO, "number": 31},
         {f"GET {R}/pullrequests/31": "pullrequest.json",
          f"GET {R}/diffstat/{H1[:12]}..{H0[:12]}?pagelen=100": "diffstat.json"}),
    Case("reviews", "list_reviews", {"repo": REPO, "number": 31}, {f"GET {R}/pullrequests/31": "pullrequest.json"}),
    Case("statuses", "list_commit_statuses", {"repo": REPO, "ref": H1},
         {f"GET {R}/commit/{H1}/statuses?pagelen=30": "statuses.json"}),
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
        name = case.answers.get(key)
        if name is None:
            raise AssertionError(f"unexpected request {key}; expected one of {sorted(case.answers)}")
        if name.endswith(".json"):
            return json_response(200, load(name))
        return httpx.Response(200, content=(HERE / "testdata" / name).read_bytes(),
                              headers={"content-type": "text/plain"})

    transport = validating(bitbucket_spec(), answer)
    plugin = await started(BitbucketGitPlugin("bitbucket", transport=transport),
                           {"baseUrl": API, "auth": {"type": "bearer", "token": "test-token"}})
    try:
        op = CATALOG[f"git.{case.operation}"]
        result = await plugin.call(op, op.params(**case.params), RequestContext())
    finally:
        await shutdown(plugin)
    transport.assert_clean()
    assert sorted(seen) == sorted(case.answers)
    dumped = result.model_dump(mode="json")
    if case.raw_is:
        assert dumped["raw"] == load(case.raw_is)
    check_golden(case.name, without_raw(dumped))
